"""Spill and failure defects found from outside (issue 8): each is a regression test on both databases."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.errors import StorageError
from collectors.storage.engine import make_engine
from collectors.storage.schema import CandleRow
from collectors.storage.sinks import Sink, WriteResult, open_sink
from collectors.storage.spill import SpillDir
from collectors.storage.tables import Row, TableSpec, spec_for
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import BASE_TS, candle, trade
from tests.storage.helpers import stored_trades

GOOD = {"t": "trades", "r": ["okx", "BTC-USDT", 7, BASE_TS, "63707.3", "0.1", "buy", "0", None]}
UNDECODABLE = {
    "decimal-holding-buy": json.dumps({**GOOD, "r": [*GOOD["r"][:4], "buy", *GOOD["r"][5:]]}),  # type: ignore[misc]
    "list-not-object": json.dumps(GOOD["r"]),
    "string-not-object": json.dumps("trades"),
    "number-not-object": "3",
    "other-schema-table": json.dumps({**GOOD, "t": "trades_v0"}),
    "other-schema-columns": json.dumps({**GOOD, "r": GOOD["r"][:5]}),  # type: ignore[misc]
    "rows-not-a-list": json.dumps({**GOOD, "r": 5}),
    "not-utf8": "\udcff",
}


def _stored_candle(engine: Engine) -> CandleRow:
    with Session(engine) as session:
        return session.scalars(select(CandleRow)).one()


@pytest.mark.parametrize("case", list(UNDECODABLE), ids=list(UNDECODABLE))
async def test_an_undecodable_spill_file_is_quarantined_and_replay_goes_on(
    engine: Engine, tmp_path: Path, case: str
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "000000000001.jsonl").write_text(json.dumps(GOOD) + "\n" + UNDECODABLE[case] + "\n",
                                              errors="surrogateescape")  # fmt: skip
    (spill / "000000000002.jsonl").write_text(
        json.dumps({**GOOD, "r": [*GOOD["r"][:2], 8, *GOOD["r"][3:]]}) + "\n"
    )  # type: ignore[misc]
    async with BatchWriter(open_sink(engine), options=WriterOptions(spill_dir=spill)) as writer:
        await writer.flush()
        stats = writer.stats()
        assert (stats.spilled_rows, stats.dead_rows, stats.healthy) == (0, 2, True)
        assert "unreadable spill file" in (stats.last_error or "")
        await writer.put(trade(9))
        await writer.flush()
    assert [t.trade_id for t in stored_trades(engine)] == [8, 9]
    assert (spill / "000000000001.bad").exists()
    assert [p.name for p in spill.iterdir() if p.suffix != ".bad"] == []


# The file size limit applies to every file the process writes, pytest's own output included when it goes to a
# file (as in CI), so the spill runs in a child process that sets the limit for itself alone.
_HALF_WAY_SPILL = """
import json, resource, signal, sys
from pathlib import Path
from collectors.storage.spill import SpillDir
from collectors.storage.tables import spec_for
from tests.builders import trade

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
spill = SpillDir(Path(sys.argv[1]))
spec = spec_for(trade(1))
rows = [spec.to_row(trade(i), 0) for i in range(1, 101)]  # about 10 kB: more than the limit
try:
    spill.write([(spec, rows)])
    error = None
except OSError as exc:
    error = exc.strerror
print(json.dumps({"error": error, "left": sorted(p.name for p in spill.path.iterdir())}))
"""


def test_a_spill_that_fails_half_way_leaves_nothing_to_replay(tmp_path: Path) -> None:
    """A real EFBIG from the kernel (like ENOSPC, a write that stops half way): RLIMIT_FSIZE in a child."""
    spill_path = tmp_path / "spill"
    child = subprocess.run(
        [sys.executable, "-c", _HALF_WAY_SPILL, str(spill_path)],
        capture_output=True, text=True, timeout=120, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    result = json.loads(child.stdout)
    assert result == {"error": "File too large", "left": []}  # no .partial a later start would "recover"
    assert SpillDir(spill_path).recover_partials() == []


async def test_no_replay_regresses_a_closed_candle(engine: Engine, tmp_path: Path) -> None:
    """An older state from a spill file (or a recovered .partial) never overwrites a newer stored one."""
    first = {"trade_count": 1, "volume": Decimal("0.1"), "quote_volume": Decimal("6370.73")}
    older = candle(is_closed=True, **first)
    newer = candle(is_closed=True, trade_count=2, volume=Decimal("0.2"), quote_volume=Decimal("12741.46"))
    spec = spec_for(older)
    spill = SpillDir(tmp_path / "spill")
    spill.write([(spec, [spec.to_row(older, 1_000)])])
    (spill.path / "000000000009.partial").write_text(
        json.dumps(
            {"t": "candles", "r": [_json(v) for v in spec.to_row(candle(is_closed=False, **first), 1_500)]}
        )
        + "\n"
    )
    sink = open_sink(engine)
    assert sink.write(spec, [spec.to_row(newer, 2_000)]).written == 1
    sink.close()
    async with BatchWriter(open_sink(engine), options=WriterOptions(spill_dir=spill.path)) as writer:
        await writer.flush()
        assert writer.stats().spilled_rows == 0
    row = _stored_candle(engine)
    assert (row.trade_count, row.volume, row.revision, row.updated_at, row.is_closed) == (
        2, Decimal("0.2"), 0, 2_000, True
    )  # fmt: skip


def _json(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


class _BuggySink:
    """A real sink whose ``write`` has a bug (the writer must surface it, not retry it forever)."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.calls = 0

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        self.calls += 1
        raise RuntimeError("a bug in the sink")

    def close(self) -> None:
        self._inner.close()


async def test_a_bug_is_surfaced_once_and_the_pending_rows_are_spilled(
    engine: Engine, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    options = WriterOptions(flush_interval_s=0.01, spill_dir=spill, retry_initial_s=0.01, retry_max_s=0.02)
    sink = _BuggySink(open_sink(engine))
    writer = BatchWriter(sink, options=options)
    await writer.start()
    await writer.put_many(trade(i) for i in range(1, 101))
    for _ in range(3_000):  # up to 30 s (was 5 s)
        if writer.stats().failed:
            break
        await asyncio.sleep(0.01)
    stats = writer.stats()
    assert (stats.failed, stats.healthy, stats.pending_rows, stats.spilled_rows) == (True, False, 0, 100)
    assert "RuntimeError: a bug in the sink" in (stats.last_error or "")
    await asyncio.sleep(0.05)
    assert sink.calls == 1  # not retried
    with pytest.raises(StorageError, match="flush task stopped"):
        await writer.put(trade(101))
    with pytest.raises(StorageError, match="the writer failed"):
        await writer.aclose()
    async with BatchWriter(open_sink(engine), options=WriterOptions(spill_dir=spill)) as replayer:
        await replayer.flush()
    assert [t.trade_id for t in stored_trades(engine)] == list(range(1, 101))


async def test_a_missing_table_fails_the_writer_and_loses_nothing(db_url: str, tmp_path: Path) -> None:
    """A non-transient database error (no schema yet) is not retried forever; the rows go to the spill dir."""
    spill = tmp_path / "spill"
    bare = make_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")
    options = WriterOptions(flush_interval_s=0.01, spill_dir=spill, retry_initial_s=0.01, retry_max_s=0.02)
    writer = BatchWriter(open_sink(bare), options=options)
    await writer.start()
    await writer.put_many(trade(i) for i in range(1, 51))
    for _ in range(3_000):  # up to 30 s (was 5 s)
        if writer.stats().failed:
            break
        await asyncio.sleep(0.01)
    assert "no such table" in (writer.stats().last_error or "")
    with pytest.raises(StorageError, match="the writer failed"):
        await writer.aclose()
    bare.dispose()
    up = make_engine(db_url)
    async with BatchWriter(open_sink(up), options=WriterOptions(spill_dir=spill)) as replayer:
        await replayer.flush()
    assert [t.trade_id for t in stored_trades(up)] == list(range(1, 51))
    up.dispose()


async def test_aclose_without_a_spill_dir_says_how_many_rows_it_could_not_keep(engine: Engine) -> None:
    writer = BatchWriter(_BuggySink(open_sink(engine)), options=WriterOptions(flush_interval_s=60))
    await writer.start()
    await writer.put_many(trade(i) for i in range(1, 11))
    with pytest.raises(StorageError, match="10 rows unwritten and no spill_dir"):
        await writer.aclose()


async def test_while_the_database_is_away_rows_spill_every_flush_interval(tmp_path: Path) -> None:
    """Memory is far from full, yet the rows reach the disk within a flush interval: a crash loses at most that."""
    down = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    options = WriterOptions(flush_interval_s=0.02, spill_dir=tmp_path / "spill", retry_initial_s=5,
                            retry_max_s=5, close_timeout_s=0.1)  # fmt: skip
    async with BatchWriter(open_sink(down), options=options) as writer:
        await writer.put_many(trade(i) for i in range(1, 101))
        for _ in range(3_000):  # up to 30 s (was 5 s)
            if writer.stats().spilled_rows == 100:
                break
            await asyncio.sleep(0.01)
        assert (writer.stats().spilled_rows, writer.stats().pending_rows) == (100, 0)
        await writer.put_many(trade(i) for i in range(101, 151))  # still within the 5 s backoff
        for _ in range(3_000):  # up to 30 s (was 5 s)
            if writer.stats().spilled_rows == 150:
                break
            await asyncio.sleep(0.01)
        assert (writer.stats().spilled_rows, writer.stats().pending_rows) == (150, 0)
    down.dispose()
