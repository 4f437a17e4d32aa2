"""Backfill against the simulator over real sockets into SQLite and PostgreSQL.

Holes are cut by deleting stored rows, or left by a live collector whose REST fills failed (simulator faults).
Afterwards ``trades`` equals ``/sim/tape`` and the touched candles equal the candle engine on the true tape; a
429 storm slows a backfill and loses nothing; a span older than the simulator's history is recorded
unrecoverable with the reason; a second run adds nothing. (Two backfills at once: test_backfill_budget.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from backfill_sim import (
    MINUTE_MS,
    backfill,
    candle_values,
    clear_faults,
    coverage,
    cut,
    revisions,
    row_counts,
    sim_stats,
    store,
    stored_candles,
    true_candles,
)
from sqlalchemy import Engine

from collectors.backfill import FINAL_PREFIX, Request
from collectors.backfill.request import build_request
from collectors.candles import reaggregate_trades
from collectors.exchanges.okx.limits import OKX_REST_QUOTAS
from collectors.model import DataType, Trade
from collectors.ratelimit import RateLimiter
from collectors.storage.records import CoverageSpan, CoverageStatus
from tests.live.sim_run import FAST, add_fault, live_config, simulator, start, stored, true_tape, values

PAIR = "BTC-USDT"
# the live collector gives up on a hole after 3 failed REST fills (the default is 5)
GIVES_UP_SOON = dataclasses.replace(FAST, core=dataclasses.replace(FAST.core, fill_attempts=3))
GAPS = Request(pairs=(PAIR,), mode="gaps")
TIMEFRAMES = ("1m", "5m")


def collected(tape: list[Trade]) -> CoverageSpan:
    """The ledger row a live collector leaves for the time it collected ``tape``."""
    return CoverageSpan(
        exchange="okx",
        inst_id=PAIR,
        data_type=DataType.TRADES,
        start_ms=tape[0].ts_ms,
        end_ms=tape[-1].ts_ms + 1,
        status=CoverageStatus.COLLECTED,
    )


def assert_candles_are_the_engines(db: Engine, tape: list[Trade]) -> None:
    truth = true_candles(tape, PAIR, TIMEFRAMES)
    first = (tape[0].ts_ms // MINUTE_MS + 1) * MINUTE_MS
    for name in TIMEFRAMES:
        expected = candle_values(truth[name])
        assert expected, name
        assert stored_candles(db, PAIR, name, expected[0][1], expected[-1][1] + 1) == expected, name  # type: ignore[operator]
        assert first <= expected[0][1]  # type: ignore[operator]


async def test_a_hole_made_by_deleting_rows_is_filled_and_a_second_run_adds_nothing(engine: Engine) -> None:
    async with simulator(history_hours=0.2) as sim:
        tape = await true_tape(sim, PAIR)
        first, last = tape[len(tape) // 3].trade_id, tape[len(tape) // 2].trade_id
        holey = [t for t in tape if not first <= t.trade_id <= last]
        # what a live collector with the hole left: its trades, its candles (closed), its ledger
        built = reaggregate_trades(holey, exchange="okx", inst_id=PAIR, timeframes=TIMEFRAMES)
        await store(engine, [*tape, *(c for cs in built.values() for c in cs), collected(tape)])
        assert cut(engine, PAIR, first, last) == last - first + 1

        live_keys = set(revisions(engine, PAIR))
        summary = await backfill(sim, engine, GAPS, timeframes=TIMEFRAMES)
        before = row_counts(engine)
        revised = revisions(engine, PAIR)
        again = await backfill(sim, engine, GAPS, timeframes=TIMEFRAMES)
        stats = await sim_stats(sim)

    [pair] = summary.pairs
    assert (pair.holes, pair.ids, pair.trades, pair.failed_chunks, pair.unrecoverable) == (
        1, last - first + 1, last - first + 1, 0, 0,
    )  # fmt: skip
    assert stored(engine, PAIR) == [values(t) for t in tape]
    assert_candles_are_the_engines(engine, tape)
    changed = {key for key, rev in revised.items() if rev > 0}
    new = set(revised) - live_keys  # a minute the hole emptied had no candle: it gets one (revision 0)
    assert len(changed) + len(new) == pair.candles_changed > 0
    assert changed and all(rev == 1 for key, rev in revised.items() if key in changed)
    ledger = coverage(engine, PAIR)
    assert [row[2] for row in ledger].count("unrecoverable") == 0
    assert any(
        s <= tape[len(tape) // 3].ts_ms and e > tape[len(tape) // 2].ts_ms
        for s, e, st, _ in ledger
        if st == "backfilled"
    )
    assert before["exchange_candles"] == pair.exchange_candles > 0
    # the second run: nothing to plan, nothing written
    assert (again.pairs[0].holes, again.pairs[0].trades, again.pairs[0].candles_changed) == (0, 0, 0)
    assert row_counts(engine) == before
    assert revisions(engine, PAIR) == revised
    assert stats["http_429"] == 0


async def test_a_hole_a_live_collector_could_not_fill_is_filled(engine: Engine) -> None:
    """Malformed trade pushes open a hole while REST fails: the live collector gives up on it (its own
    ``unrecoverable``); the scheduled backfill asks again and fills it."""
    async with simulator() as sim:
        run = start(sim, engine, live_config(), options=GIVES_UP_SOON)
        try:
            await run.until(lambda h: h.state == "live" and h.trades_stored > 0)
            await add_fault(sim, {"kind": "rest_error", "status": 503, "seconds": 30.0})
            await add_fault(sim, {"kind": "malformed", "rate": 1.0, "seconds": 2.0, "channel": "trades-all"})
            await run.until(lambda h: h.gaps_unrecoverable >= 1, wait_s=30.0)
            await asyncio.sleep(1.0)
        finally:
            await run.stop()
        await clear_faults(sim)
        rows = stored(engine, PAIR)
        assert len(rows) < rows[-1][0] - rows[0][0] + 1  # the hole is there
        held = {row[0] for row in stored(engine, PAIR)}
        # 1s candles too: the live run is short, the hole's minute may not be complete when it stops
        summary = await backfill(sim, engine, GAPS, timeframes=("1s", "1m"))
        tape = await true_tape(sim, PAIR)
    rows = stored(engine, PAIR)
    assert rows == [values(t) for t in tape if rows[0][0] <= t.trade_id <= rows[-1][0]]
    assert summary.pairs[0].holes >= 1 and summary.pairs[0].trades > 0 and summary.ok
    filled = [t for t in tape if rows[0][0] <= t.trade_id <= rows[-1][0] and t.trade_id not in held]
    seconds = {t.ts_ms // 1000 * 1000 for t in filled if t.ts_ms // 1000 * 1000 + 1000 <= rows[-1][1]}
    truth = reaggregate_trades(
        [t for t in tape if rows[0][0] <= t.trade_id <= rows[-1][0]],
        exchange="okx",
        inst_id=PAIR,
        timeframes=["1s"],
        complete_range=(min(seconds), max(seconds) + 1000),
    )["1s"]
    expected = candle_values([c for c in truth if c.open_time_ms in seconds])
    assert expected
    got = stored_candles(engine, PAIR, "1s", min(seconds), max(seconds) + 1000)
    assert [c for c in got if c[1] in seconds] == expected
    assert [
        r for _, _, st, r in coverage(engine, PAIR) if st == "unrecoverable" and r.startswith(FINAL_PREFIX)
    ] == []


async def test_a_429_storm_slows_a_backfill_and_loses_nothing(engine: Engine) -> None:
    async with simulator(history_hours=0.2) as sim:
        tape = await true_tape(sim, PAIR)
        first, last = tape[len(tape) // 5].trade_id, tape[4 * len(tape) // 5].trade_id
        await store(engine, [t for t in tape if not first <= t.trade_id <= last])
        await add_fault(sim, {"kind": "rest_429", "seconds": 1.5, "path": "/api/v5/market/history-trades"})
        summary = await backfill(sim, engine, GAPS, timeframes=("1m",))
        stats = await sim_stats(sim)
    assert stats["http_429"] > 0
    assert summary.ok and summary.pairs[0].trades == last - first + 1
    assert stored(engine, PAIR) == [values(t) for t in tape]


async def test_a_span_older_than_the_history_is_recorded_unrecoverable_with_the_reason(
    engine: Engine,
) -> None:
    # three runs back to back share one process's limiter: three fresh limiters within OKX's 2 s window would
    # together send more than the per-IP quota (a clean-clone CI run saw 50011 exhaust the third run's retries)
    limiter = RateLimiter(quotas=OKX_REST_QUOTAS)
    async with simulator(history_hours=0.1) as sim:
        now = time.time_ns() // 1_000_000
        before_history = Request(
            pairs=(PAIR,), mode="range", start_ms=now - 3 * 3_600_000, end_ms=now - 7_200_000
        )
        old = await backfill(sim, engine, before_history, timeframes=("1m",), limiter=limiter)
        across_the_edge = build_request([PAIR], since="30m", now_ms=now)
        edge = await backfill(sim, engine, across_the_edge, timeframes=("1m",), limiter=limiter)
        beyond_okx = await backfill(
            sim, engine, build_request([PAIR], since="1h", now_ms=now), history_days=0.01, limiter=limiter
        )
        tape = await true_tape(sim, PAIR)
    assert old.pairs[0].trades == 0 and old.pairs[0].unrecoverable == 1
    ledger = coverage(engine, PAIR)
    assert (now - 3 * 3_600_000, now - 7_200_000, "unrecoverable") in [row[:3] for row in ledger]
    reasons = {row[3] for row in ledger if row[2] == "unrecoverable"}
    assert f"{FINAL_PREFIX}REST serves no trade before the span's end (beyond its history)" in reasons
    assert f"{FINAL_PREFIX}older than the history REST serves" in reasons
    assert f"{FINAL_PREFIX}older than OKX's 0.01 days of history-trades" in reasons
    # everything REST serves up to the range's end is stored, nothing more
    assert edge.ok and stored(engine, PAIR) == [values(t) for t in tape if t.ts_ms < now]
    edge_rows = [
        (s, e) for s, e, st, r in ledger if st == "unrecoverable" and r.endswith("history REST serves")
    ]
    assert edge_rows and edge_rows[0][0] == now - 1_800_000 and edge_rows[0][1] <= tape[0].ts_ms + 1
    assert beyond_okx.ok


async def test_a_chunk_failing_after_its_retries_is_recorded_unrecoverable_and_not_asked_again(
    engine: Engine,
) -> None:
    async with simulator(history_hours=0.1) as sim:
        tape = await true_tape(sim, PAIR)
        first, last = tape[len(tape) // 3].trade_id, tape[len(tape) // 2].trade_id
        await store(engine, [t for t in tape if not first <= t.trade_id <= last])
        await add_fault(sim, {"kind": "rest_error", "status": 503, "path": "/api/v5/market/history-trades"})
        failed = await backfill(sim, engine, GAPS, timeframes=("1m",), chunk_attempts=2)
        await clear_faults(sim)
        again = await backfill(sim, engine, GAPS, timeframes=("1m",))
    assert (failed.ok, failed.failed_chunks, failed.pairs[0].trades) == (False, 1, 0)
    [(start, end, reason)] = [(s, e, r) for s, e, st, r in coverage(engine, PAIR) if st == "unrecoverable"]
    assert reason.startswith(f"{FINAL_PREFIX}REST failed after retries: ApiError: OKX 50001")
    assert start <= tape[len(tape) // 3].ts_ms and end > tape[len(tape) // 2].ts_ms
    assert (again.pairs[0].holes, again.pairs[0].trades) == (0, 0)  # a final verdict is never asked again
    assert len(stored(engine, PAIR)) == len(tape) - (last - first + 1)


async def test_coarse_candles_come_from_the_trades_when_the_finest_candles_do_not_count_them(
    engine: Engine,
) -> None:
    """1s added to the config after the fact: no stored 1s candle outside the hole, so the touched 1m candles
    cannot be rolled up from 1s ones; they are re-aggregated from the trades and equal the engine's."""
    async with simulator(history_hours=0.1) as sim:
        tape = await true_tape(sim, PAIR)
        first, last = tape[len(tape) // 3].trade_id, tape[len(tape) // 2].trade_id
        holey = [t for t in tape if not first <= t.trade_id <= last]
        built = reaggregate_trades(holey, exchange="okx", inst_id=PAIR, timeframes=["1m"])
        await store(engine, [*holey, *built["1m"], collected(tape)])
        summary = await backfill(sim, engine, GAPS, timeframes=("1s", "1m"), exchange_candles=False)
    assert summary.ok and summary.pairs[0].trades == last - first + 1
    truth = candle_values(true_candles(tape, PAIR, ["1m"])["1m"])
    assert stored_candles(engine, PAIR, "1m", truth[0][1], truth[-1][1] + 1) == truth  # type: ignore[operator]
