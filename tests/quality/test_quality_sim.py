"""Validation and re-aggregation of what the live collectors stored from the simulator (real sockets, PostgreSQL).

1. A clean live-collected range: re-aggregation changes nothing and validation finds nothing.
2. A hole made by a simulator fault (REST failing while the collector starts, so its catch-up cannot fill the
   span since the stored resume point) and the collector then stopped (off): validation reports exactly that
   hole. The fill here re-inserts the true ``/sim/tape`` rows with a ``backfilled`` coverage span and
   re-aggregates the range (what the backfill does); validation then finds nothing.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, func, select

from collectors.model import DataType, Timeframe
from collectors.quality.findings import FindingKind
from collectors.quality.reaggregate import reaggregate_chunk
from collectors.quality.validate import PairCheck, validate_pair
from collectors.storage.records import CoverageSpan, CoverageStatus
from collectors.storage.schema import CandleRow, CoverageRow

sys.path.insert(0, str(Path(__file__).parents[1] / "live"))
from quality_helpers import store
from sim_run import (
    PAIRS,
    add_fault,
    caught_up_to,
    live_config,
    simulator,
    start,
    store_resume_points,
    stored,
    true_tape,
)

MINUTE = Timeframe.parse("1m")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check(inst_id: str, start_ms: int, end_ms: int) -> PairCheck:
    return PairCheck(exchange="okx", inst_id=inst_id, start_ms=start_ms, end_ms=end_ms, now_ms=_now_ms(),
                     timeframes=("1m",))  # fmt: skip


async def _just_after_a_minute_boundary(after_s: float) -> int:
    """Sleep until ``after_s`` past the next minute boundary of the wall clock; that boundary (UTC ms)."""
    boundary = MINUTE.bucket_end_ms(_now_ms())
    await asyncio.sleep(max(0.0, (boundary + after_s * 1000 - _now_ms()) / 1000))
    return boundary


def _ledger_end(engine: Engine, inst_id: str) -> int:
    with engine.connect() as conn:
        end = conn.execute(
            select(func.max(CoverageRow.end_time)).where(
                CoverageRow.inst_id == inst_id, CoverageRow.status == CoverageStatus.COLLECTED.value
            )
        ).scalar_one()
    return int(end)


async def test_a_live_collected_range_reaggregates_to_itself_and_validates_clean(pg_engine: Engine) -> None:
    """The collector stops 0.5 s after a minute's end, inside the allowed lateness (2 s): that minute's candle
    is closed at the clean stop, re-aggregation up to the stop's minute changes nothing, and validation right
    up to the ledger's end (the stop) finds nothing."""
    async with simulator() as sim:
        resume = await store_resume_points(sim, pg_engine, _now_ms())
        run = start(sim, pg_engine, live_config())
        try:
            tapes = {p: await true_tape(sim, p) for p in PAIRS}
            await run.until(caught_up_to({p: tapes[p][-1].trade_id for p in PAIRS}))
            boundary = await _just_after_a_minute_boundary(0.5)
        finally:
            await run.stop()
    for inst_id in PAIRS:
        first = MINUTE.bucket_end_ms(resume[inst_id].ts_ms)  # the resume point's minute is partial
        stop = _ledger_end(pg_engine, inst_id)
        assert boundary < stop < boundary + live_config().candles.allowed_lateness_ms, (boundary, stop)
        assert boundary - first >= 60_000
        [(closed,)] = candle_flags(pg_engine, inst_id, boundary - 60_000)
        assert closed, inst_id  # the minute ended before the stop: closed by the clean stop
        result = await reaggregate_chunk(
            pg_engine, exchange="okx", inst_id=inst_id, timeframes=["1m"], start_ms=first, end_ms=boundary,
            now_ms=_now_ms(),
        )  # fmt: skip
        assert (result.candles > 0, result.changes, result.written) == (True, (), 0), inst_id
        assert validate_pair(pg_engine, _check(inst_id, first, stop)) == [], inst_id


def candle_flags(engine: Engine, inst_id: str, open_ms: int) -> list[tuple[bool]]:
    """``is_closed`` of the stored 1m candle opening at ``open_ms``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(CandleRow.is_closed).where(
                CandleRow.inst_id == inst_id, CandleRow.timeframe == "1m", CandleRow.open_time == open_ms
            )
        )
        return [(bool(r[0]),) for r in rows]


async def test_a_hole_from_a_simulator_fault_is_reported_exactly_and_not_after_the_fill(
    pg_engine: Engine,
) -> None:
    inst_id = PAIRS[0]
    async with simulator() as sim:
        resume = await store_resume_points(sim, pg_engine, _now_ms())
        await add_fault(sim, {"kind": "rest_error", "status": 503, "seconds": 30.0})
        run = start(sim, pg_engine, live_config())
        try:  # live on the WebSocket, the catch-up since the resume point failed: a hole, then the collector off
            await run.until(lambda h: h.state != "down" and h.trades_stored >= 10 and h.gaps_found >= 1)
            await asyncio.sleep(0.5)
        finally:
            await run.stop()
        tape = await true_tape(sim, inst_id)
    rows = stored(pg_engine, inst_id)
    ids = [r[0] for r in rows]
    assert ids[0] == resume[inst_id].trade_id
    after = rows[1]  # the first trade the collector stored after the resume point
    missing = [t for t in tape if ids[0] < t.trade_id < after[0]]
    assert missing and all(
        i == j for i, j in zip(ids[1:], range(after[0], after[0] + len(ids) - 1), strict=False)
    )
    # up to the end of the last stored minute: its candle is still open and skipped, its trades are checked
    first, end = MINUTE.bucket_start_ms(resume[inst_id].ts_ms), MINUTE.bucket_end_ms(rows[-1][1])
    findings = validate_pair(pg_engine, _check(inst_id, first, end))
    gaps = [(f.kind, f.start_ms, f.end_ms, f.detail) for f in findings if f.kind is FindingKind.TRADE_GAP]
    assert gaps == [
        (FindingKind.TRADE_GAP, resume[inst_id].ts_ms, after[1],
         f"trade ids {missing[0].trade_id}-{missing[-1].trade_id} missing ({len(missing)})")
    ]  # fmt: skip
    hole = (MINUTE.bucket_start_ms(resume[inst_id].ts_ms), MINUTE.bucket_end_ms(after[1]))
    others = [f for f in findings if f.kind is not FindingKind.TRADE_GAP]
    assert all(hole[0] <= f.start_ms and f.end_ms <= hole[1] for f in others), others  # all inside the hole

    # the fill: the true rows, the span marked backfilled, the touched minutes re-aggregated
    span = CoverageSpan(exchange="okx", inst_id=inst_id, data_type=DataType.TRADES, start_ms=resume[inst_id].ts_ms,
                        end_ms=after[1] + 1, status=CoverageStatus.BACKFILLED, reason="test fill from /sim/tape")  # fmt: skip
    await store(pg_engine, [*missing, span])
    result = await reaggregate_chunk(
        pg_engine,
        exchange="okx",
        inst_id=inst_id,
        timeframes=["1m"],
        start_ms=first,
        end_ms=end,
        now_ms=_now_ms(),
    )
    assert result.written > 0
    assert validate_pair(pg_engine, _check(inst_id, first, end)) == []
