"""Edge cases found in review: cancellation, odd values, ordering, stuck producers, bad spill files, lag."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.storage.engine import make_engine
from collectors.storage.records import RawMessage
from collectors.storage.schema import CandleRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import BASE_TS, FakeClock, candle, trade
from tests.storage.helpers import stored_trades


async def test_a_cancelled_flush_loses_nothing(pg_engine: Engine) -> None:
    url = pg_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    locker = psycopg.connect(url)
    locker.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
    options = WriterOptions(max_batch_rows=100, max_pending_rows=1_000, flush_interval_s=60)
    async with BatchWriter(open_sink(pg_engine), options=options) as writer:
        await writer.put_many(trade(i) for i in range(1, 251))
        flushing = asyncio.create_task(writer.flush())
        await asyncio.sleep(0.3)  # the first batch is now blocked on the lock
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        assert writer.stats().pending_rows == 250
        locker.rollback()
        await writer.drain(timeout_s=30)
    locker.close()
    assert [t.trade_id for t in stored_trades(pg_engine)] == list(range(1, 251))


@pytest.mark.parametrize(
    "bad",
    [
        dataclasses.replace(trade(900), trade_id=2**63),  # too big for BIGINT
        dataclasses.replace(trade(901), price=Decimal("NaN")),
        dataclasses.replace(trade(902), size=Decimal("Infinity")),
        dataclasses.replace(trade(903), inst_id="BTC-USDT\udcff"),  # not encodable
    ],
    ids=["bigint-overflow", "nan", "infinity", "surrogate"],
)
async def test_values_no_database_can_store_are_dead_lettered(engine: Engine, bad: object) -> None:
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many([*(trade(i) for i in range(1, 50)), bad, *(trade(i) for i in range(50, 100))])
        await writer.flush()
        stats = writer.stats()
        assert (stats.written_rows, stats.dead_rows, stats.pending_rows) == (99, 1, 0)
        ((table, row, error),) = writer.dead_letters
    assert table == "trades" and row[2] == bad.trade_id  # type: ignore[attr-defined]
    assert error
    assert [t.trade_id for t in stored_trades(engine)] == list(range(1, 100))


async def test_a_counter_beyond_32_bits_is_refused_not_wrapped(engine: Engine) -> None:
    huge = candle(trade_count=2**31)
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put(huge)
        await writer.flush()
        assert writer.stats().dead_rows == 1
        assert "does not fit a 32-bit integer" in writer.dead_letters[0][2]


def test_a_closed_candle_wins_over_a_stale_forming_state_in_the_same_batch(engine: Engine) -> None:
    closed = candle(open=Decimal("1"), high=Decimal("6"), low=Decimal("1"), close=Decimal("6"), trade_count=5,
                    is_closed=True)  # fmt: skip
    stale = candle(open=Decimal("1"), high=Decimal("5"), low=Decimal("1"), close=Decimal("5"))
    spec = spec_for(closed)
    sink = open_sink(engine)
    sink.write(spec, [spec.to_row(closed, 1), spec.to_row(stale, 2)])
    sink.close()
    with Session(engine) as session:
        row = session.scalars(select(CandleRow)).one()
    assert (row.is_closed, row.trade_count, row.close) == (True, 5, Decimal("6"))


async def test_a_producer_blocked_before_the_outage_is_noticed_spills(tmp_path: Path) -> None:
    down = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    options = WriterOptions(
        max_batch_rows=50, max_pending_rows=100, flush_interval_s=0.01, spill_dir=tmp_path / "spill",
        retry_initial_s=0.01, retry_max_s=0.05, close_timeout_s=0.1,
    )  # fmt: skip
    async with BatchWriter(open_sink(down), options=options) as writer:
        # no waiting for the first failure: the producer blocks at once, and must be released to spill
        await asyncio.wait_for(writer.put_many(trade(i) for i in range(1, 501)), timeout=10)
        assert writer.stats().spilled_rows >= 400
    down.dispose()
    lines = [json.loads(line) for f in sorted((tmp_path / "spill").glob("*.jsonl")) for line in f.open()]
    assert sorted(item["r"][2] for item in lines) == list(range(1, 501))


def test_options_leave_room_for_a_batch_in_flight() -> None:
    with pytest.raises(ValueError, match="max_pending_rows >= 2"):
        WriterOptions(max_batch_rows=100, max_pending_rows=100)


async def test_an_unreadable_spill_file_is_quarantined_and_the_rest_replayed(
    engine: Engine, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    good = {"t": "trades", "r": ["okx", "BTC-USDT", 7, BASE_TS, "63707.3", "0.1", "buy", "0", None]}
    (spill / "000000000001.jsonl").write_text('{"t": "trades", "r": [1, 2]}\n')  # a row from another schema
    (spill / "000000000002.jsonl").write_text(json.dumps(good) + "\n")
    (spill / "000000000003.partial").write_text(json.dumps({**good, "r": [*good["r"][:2], 8, *good["r"][3:]]})
                                                + "\n" + '{"t": "tra')  # fmt: skip
    async with BatchWriter(open_sink(engine), options=WriterOptions(spill_dir=spill)) as writer:
        await writer.flush()
        assert writer.stats().spilled_rows == 0
        assert "unreadable spill file" in (writer.stats().last_error or "")
    assert [t.trade_id for t in stored_trades(engine)] == [7, 8]
    assert (spill / "000000000001.bad").exists()
    assert not list(spill.glob("*.jsonl")) and not list(spill.glob("*.partial"))


async def test_lag_is_the_age_of_the_oldest_unwritten_row(tmp_path: Path) -> None:
    clock = FakeClock()
    down = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    options = WriterOptions(max_batch_rows=10, max_pending_rows=1_000, flush_interval_s=30, close_timeout_s=0.1,
                            spill_dir=tmp_path / "spill")  # fmt: skip
    async with BatchWriter(open_sink(down), options=options, clock=clock) as writer:
        assert writer.stats().lag_ms == 0
        await writer.put_many(trade(i) for i in range(1, 4))
        clock.now_ms += 7_000
        raw = RawMessage(collector_id="c", seq=1, exchange="okx", channel="trades", inst_id=None, recv_ms=1,
                         payload="{}")  # fmt: skip
        await writer.put(raw)
        clock.now_ms += 1_000
        assert writer.stats().lag_ms == 8_000
        assert writer.stats().pending_rows == 4
    down.dispose()
