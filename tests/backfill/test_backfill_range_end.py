"""A past range backfilled into an empty PostgreSQL database: every candle of the range is stored, the last one
(the bucket holding the newest fetched trade) too, closed and complete, equal to the engine on /sim/tape.

The backfill's clock for its candles is the range's end, not its newest trade (docs/backfill.md, Finish).
"""

from __future__ import annotations

import time

from backfill_sim import backfill, candle_values, stored_candles
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.backfill import Request
from collectors.backfill.finish import closed_until
from collectors.candles import reaggregate_trades
from collectors.storage.schema import CandleRow
from tests.live.sim_run import simulator, true_tape

PAIR = "BTC-USDT"
FIVE_MINUTES_MS = 300_000
TIMEFRAMES = ("1m", "5m")


def flags(db: Engine, start_ms: int, end_ms: int) -> dict[tuple[str, int], tuple[bool, bool, str]]:
    """(is_closed, is_complete, source) of every stored candle of PAIR opening in ``[start_ms, end_ms)``."""
    with Session(db) as session:
        rows = session.execute(
            select(
                CandleRow.timeframe, CandleRow.open_time, CandleRow.is_closed, CandleRow.is_complete,
                CandleRow.source,
            ).where(CandleRow.inst_id == PAIR, CandleRow.open_time >= start_ms, CandleRow.open_time < end_ms)
        )  # fmt: skip
        return {(tf, int(t)): (bool(c), bool(k), s) for tf, t, c, k, s in rows}


async def test_a_past_range_gets_every_candle_up_to_its_end_closed(pg_engine: Engine) -> None:
    now = time.time_ns() // 1_000_000
    end = now - now % FIVE_MINUTES_MS - FIVE_MINUTES_MS  # 5 to 10 minutes ago, on every bucket edge
    start = end - 2 * FIVE_MINUTES_MS
    async with simulator(history_hours=0.5) as sim:
        summary = await backfill(
            sim,
            pg_engine,
            Request(pairs=(PAIR,), mode="range", start_ms=start, end_ms=end),
            timeframes=TIMEFRAMES,
            exchange_candles=False,
        )
        tape = await true_tape(sim, PAIR)
    inside = [t for t in tape if start <= t.ts_ms < end]
    assert summary.ok and summary.pairs[0].trades == len(inside) > 0
    truth = reaggregate_trades(
        tape, exchange="okx", inst_id=PAIR, timeframes=TIMEFRAMES, complete_range=(start, end)
    )
    newest_minute = inside[-1].ts_ms - inside[-1].ts_ms % 60_000
    assert truth["1m"][-1].open_time_ms == newest_minute  # the bucket a live collector used to be left
    for name in TIMEFRAMES:
        expected = candle_values(truth[name])
        assert expected, name
        assert stored_candles(pg_engine, PAIR, name, start, end) == expected, name
    stored = flags(pg_engine, start, end)
    assert stored == {
        (name, c.open_time_ms): (True, True, "backfill") for name in TIMEFRAMES for c in truth[name]
    }
    assert ("1m", newest_minute) in stored and ("5m", end - FIVE_MINUTES_MS) in stored
    assert flags(pg_engine, end, end + 86_400_000) == {}  # nothing past the range's end


def test_the_backfill_clock_is_the_filled_span_end_but_never_within_the_lateness_of_now() -> None:
    minute, now, lateness = 60_000, 10_000_000, 2_000
    # a past range [0, 5 min): its end, though the newest stored trade is at 4 min 10 s
    assert closed_until(250_000, [(0, 5 * minute)], 0, 5 * minute, now, lateness) == 5 * minute
    # a range up to now: no later than now - lateness (a live collector may still hold that bucket open)
    assert closed_until(now - 5_000, [(0, now)], now - minute, now, now, lateness) == now - lateness
    # the newest stored trade is later (a live collector wrote past the hole): as before, up to it
    assert closed_until(now - 100, [(0, minute)], 0, minute, now, lateness) == now - 100
    # a span not reaching into the window does not move its clock
    assert closed_until(30_000, [(3 * minute, 4 * minute)], 0, minute, now, lateness) == 30_000
