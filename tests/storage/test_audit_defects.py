"""Defects found by a second audit from outside (issue 8): each is a regression test on both databases.

* a key value SQLite cannot hash (a dict in a candle's ``inst_id``) failed the SQLite writer as a bug, where
  PostgreSQL dead-lettered the row;
* a wrong-typed value pending during an outage: bytes or a set lost every pending row at the spill (the JSON
  encoder raised); ``"buy"`` as a price made the whole spill file ``.bad``; a str, float, int or bool price was
  turned into a ``Decimal`` on replay and stored instead of being dead-lettered;
* a producer cancelled while its spill ran in the thread left the rows counted as pending: once the database
  was back every ``put`` waited forever;
* a dead-letter file that cannot be written failed the writer for good;
* the wall clock stepping back made the ``updated_at`` guard refuse the newer state of a candle;
* a second undecodable spill file of the same name replaced the first one's ``.bad``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.errors import StorageError
from collectors.storage.records import RawMessage, RejectedMessage
from collectors.storage.schema import CandleRow, RawMessageRow, RejectedMessageRow
from collectors.storage.sinks import Sink, WriteResult, open_sink
from collectors.storage.spill import SpillDir
from collectors.storage.tables import Row, TableSpec
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import BASE_TS, FakeClock, candle, trade
from tests.storage.helpers import stored_trades


class SwitchedSink:
    """A real sink behind a switch: while ``down``, every write fails as an unreachable database does."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.down = False

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        if self.down:
            raise StorageError("writing: the database is down (test switch)", transient=True)
        return self._inner.write(spec, rows)

    def close(self) -> None:
        self._inner.close()


def _stored_candles(engine: Engine) -> list[CandleRow]:
    with Session(engine) as session:
        return list(session.scalars(select(CandleRow).order_by(CandleRow.inst_id)))


@pytest.mark.parametrize(
    "bad_key", [{"a": 1}, ["BTC-USDT"], Decimal("sNaN")], ids=["dict", "list", "signaling-nan"]
)
async def test_an_unhashable_key_value_is_dead_lettered_not_a_bug(engine: Engine, bad_key: Any) -> None:
    good = [candle(inst_id=name) for name in ("BTC-USDT", "ETH-USDT")]
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many([good[0], candle(inst_id=bad_key), good[1]])
        await writer.flush()
        stats = writer.stats()
        assert (stats.written_rows, stats.dead_rows, stats.healthy, stats.failed) == (2, 1, True, False)
        ((table, _, error),) = writer.dead_letters
        assert table == "candles" and "candles.inst_id: expected str" in error
    assert [c.inst_id for c in _stored_candles(engine)] == ["BTC-USDT", "ETH-USDT"]


# (changes to trade 2, column named in its dead letter)
SPILLED_HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "bytes-price": ({"price": b"63707.3"}, "trades.price"),
    "bytes-text": ({"source": b"0"}, "trades.source"),
    "set-in-text": ({"inst_id": {"BTC-USDT"}}, "trades.inst_id"),
    "buy-price": ({"price": "buy"}, "trades.price"),
    "str-price": ({"price": "63707.3"}, "trades.price"),
    "float-price": ({"price": 63707.3}, "trades.price"),
    "int-price": ({"price": 63707}, "trades.price"),
    "bool-price": ({"price": True}, "trades.price"),
    "decimal-id": ({"trade_id": Decimal(2)}, "trades.trade_id"),
}


@pytest.mark.parametrize("case", list(SPILLED_HOSTILE), ids=list(SPILLED_HOSTILE))
async def test_a_wrong_typed_value_gets_the_same_verdict_through_a_spill(
    engine: Engine, tmp_path: Path, case: str
) -> None:
    """The bad row is dead-lettered at the spill with its column; the others are spilled and replayed exactly."""
    changes, column = SPILLED_HOSTILE[case]
    spill = tmp_path / "spill"
    sink = SwitchedSink(open_sink(engine))
    sink.down = True
    options = WriterOptions(flush_interval_s=60, spill_dir=spill, close_timeout_s=0.05)
    writer = BatchWriter(sink, options=options)
    await writer.start()
    await writer.put_many([trade(1), dataclasses.replace(trade(2), **changes), trade(3)])
    await writer.aclose()  # the database stays away: everything pending is kept
    stats = writer.stats()
    assert (stats.pending_rows, stats.spilled_rows, stats.dead_rows) == (0, 2, 1)
    (dead,) = [json.loads(line) for line in (spill / "dead-letters.jsonl").open()]
    assert dead["t"] == "trades" and column in dead["error"]
    sink.down = False
    async with BatchWriter(sink, options=WriterOptions(spill_dir=spill)) as replayer:
        await replayer.flush()
        replayed = replayer.stats()
    assert (replayed.written_rows, replayed.dead_rows, replayed.spilled_rows) == (2, 0, 0)
    assert [(t.trade_id, t.price) for t in stored_trades(engine)] == [
        (1, Decimal("63707.3")), (3, Decimal("63707.3"))
    ]  # fmt: skip
    assert sorted(p.name for p in spill.iterdir()) == ["dead-letters.jsonl"]


async def test_a_producer_cancelled_during_its_spill_leaves_no_phantom_rows(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spilling, release = threading.Event(), threading.Event()
    real_write = SpillDir.write

    def held_write(self: SpillDir, batches: Sequence[tuple[TableSpec, Sequence[Row]]]) -> tuple[Path, int]:
        spilling.set()
        release.wait(30)
        return real_write(self, batches)

    sink = SwitchedSink(open_sink(engine))
    sink.down = True
    options = WriterOptions(max_batch_rows=50, max_pending_rows=100, flush_interval_s=60,
                            spill_dir=tmp_path / "spill", retry_initial_s=0.01, retry_max_s=0.02)  # fmt: skip
    async with BatchWriter(sink, options=options) as writer:
        await writer.put_many(trade(i) for i in range(1, 51))  # a full batch wakes the flusher: it fails
        for _ in range(1_000):
            if writer.stats().spilled_rows == 50:
                break
            await asyncio.sleep(0.01)
        assert (writer.stats().healthy, writer.stats().spilled_rows) == (False, 50)
        # memory full, no table at a full batch: the flusher sleeps, only the producer spills
        await writer.put_many([*(trade(i) for i in range(51, 85)), *_raw(33), *_rejected(33)])
        monkeypatch.setattr(SpillDir, "write", held_write)
        producer = asyncio.create_task(writer.put(trade(85)))
        assert await asyncio.to_thread(spilling.wait, 30)
        producer.cancel()
        await asyncio.sleep(0.05)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await producer
        stats = writer.stats()
        assert (stats.pending_rows, stats.spilled_rows) == (0, 150)
        monkeypatch.setattr(SpillDir, "write", real_write)
        sink.down = False
        await asyncio.wait_for(writer.put_many(trade(i) for i in range(85, 301)), timeout=30)
        await writer.drain(timeout_s=30)
        assert (writer.stats().pending_rows, writer.stats().spilled_rows) == (0, 0)
    assert [t.trade_id for t in stored_trades(engine)] == list(range(1, 301))
    with Session(engine) as session:
        counts = [
            session.scalar(select(func.count()).select_from(t)) for t in (RawMessageRow, RejectedMessageRow)
        ]
    assert counts == [33, 33]


def _raw(n: int) -> list[RawMessage]:
    return [RawMessage(collector_id="c", seq=i, exchange="okx", channel="trades", inst_id="BTC-USDT",
                       recv_ms=BASE_TS + i, payload="{}") for i in range(1, n + 1)]  # fmt: skip


def _rejected(n: int) -> list[RejectedMessage]:
    return [RejectedMessage(collector_id="c", seq=i, exchange="okx", channel="trades", inst_id="BTC-USDT",
                            recv_ms=BASE_TS + i, reason="test", payload="{}") for i in range(1, n + 1)]  # fmt: skip


async def test_an_unwritable_dead_letter_file_keeps_the_writer_running(
    engine: Engine, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    (spill / "dead-letters.jsonl").mkdir(parents=True)  # cannot be opened for appending
    bad = dataclasses.replace(trade(2), price=Decimal("NaN"))
    async with BatchWriter(open_sink(engine), options=WriterOptions(spill_dir=spill)) as writer:
        await writer.put_many([trade(1), bad, trade(3)])
        await writer.flush()
        stats = writer.stats()
        assert (stats.written_rows, stats.dead_rows, stats.healthy, stats.failed) == (2, 1, True, False)
        ((table, row, error),) = writer.dead_letters  # kept in memory (and logged) instead
        assert table == "trades" and row[2] == 2 and "trades.price" in error
        await writer.put(trade(4))
        await writer.flush()
    assert [t.trade_id for t in stored_trades(engine)] == [1, 3, 4]


async def test_a_clock_stepping_back_never_makes_a_newer_state_look_older(engine: Engine) -> None:
    clock = FakeClock(2_000)
    first = candle(is_closed=True)
    revised = candle(is_closed=True, trade_count=5, close=Decimal("63710"), last_trade_id=5)
    async with BatchWriter(open_sink(engine), clock=clock) as writer:
        await writer.put(first)
        await writer.flush()
        clock.advance(-1_000)  # NTP steps the wall clock back
        await writer.put(revised)
        await writer.flush()
    (row,) = _stored_candles(engine)
    assert (row.trade_count, row.close, row.revision, row.updated_at) == (5, Decimal("63710"), 1, 2_000)


async def test_a_second_bad_file_of_the_same_name_keeps_the_first(engine: Engine, tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "000000000001.bad").write_text("an earlier quarantined file\n")
    (spill / "000000000001.jsonl").write_text('{"t": "trades", "r": [1, 2]}\n')
    async with BatchWriter(open_sink(engine), options=WriterOptions(spill_dir=spill)) as writer:
        await writer.flush()
        assert writer.stats().dead_rows == 1
    bad = sorted(p.name for p in spill.iterdir())
    assert bad == ["000000000001.1.bad", "000000000001.bad"]
    assert (spill / "000000000001.bad").read_text() == "an earlier quarantined file\n"
    assert (spill / "000000000001.1.bad").read_text() == '{"t": "trades", "r": [1, 2]}\n'
