"""Live collectors against the simulator over real sockets into a real database, through every fault.

Each run restarts two pairs from a trade stored 130 s ago (restart catch-up from REST), waits until they are live,
injects one fault, waits until every pair is live again with no open gap and past the tape's end at the fault's
end, then stops as SIGTERM does. Then: ``trades`` equals ``/sim/tape`` over the covered id range (none missing,
none twice, every value exact), ``rejected_messages`` holds exactly the malformed frames of ``/sim/faults/log``,
and the stored 1m candles of complete minutes equal the candle engine run on the true tape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from collectors.model import Trade
from tests.live.sim_run import (
    FAST,
    PAIRS,
    add_fault,
    book_snapshots_after,
    caught_up_to,
    fault_log,
    live_config,
    rejected_payloads,
    simulator,
    start,
    store_resume_points,
    stored,
    stored_minutes,
    true_minutes,
    true_tape,
    values,
)

MINUTE_MS = 60_000
ROOT = Path(__file__).resolve().parents[2]
BOOK_FAULTS = ("book_gap", "seq_reset")

# (name, simulator config, faults before the start (REST during catch-up), faults once live)
FAULTS: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]] = [
    ("drop", {}, [], [{"kind": "drop"}]),
    *(
        (f"close_{code}", {}, [], [{"kind": "close", "code": code, "reason": "bye"}])
        for code in (1000, 1011, 4005, 4006)  # the retryable ones (session.FATAL_CLOSE_CODES end the session)
    ),
    ("stall", {}, [], [{"kind": "stall", "seconds": 2.0}]),
    ("idle_4004", {"idle_timeout_s": 1.0, "trade_rate": 0.5}, [], []),  # 4004: no push for 1 s
    ("notice_64008", {}, [], [{"kind": "notice", "seconds": 1.0}]),
    ("malformed", {}, [], [{"kind": "malformed", "rate": 0.4, "seconds": 1.5}]),
    ("duplicate", {}, [], [{"kind": "duplicate", "rate": 0.5, "seconds": 1.5}]),
    ("reorder", {}, [], [{"kind": "reorder", "rate": 0.5, "seconds": 1.5}]),
    ("refuse", {}, [], [{"kind": "refuse", "seconds": 1.0}, {"kind": "drop"}]),
    ("book_gap", {}, [], [{"kind": "book_gap"}]),  # with the full-depth book on (BOOK_FAULTS)
    ("seq_reset", {}, [], [{"kind": "seq_reset"}]),
    ("rest_429", {}, [{"kind": "rest_429", "seconds": 1.0}], [{"kind": "drop"}]),
    ("rest_error", {}, [{"kind": "rest_error", "status": 503, "seconds": 1.0}], [{"kind": "drop"}]),
    ("rest_slow", {}, [{"kind": "rest_slow", "delay_ms": 800, "seconds": 2.0}], [{"kind": "drop"}]),
]


def assert_tape_and_candles(db: Engine, resume: dict[str, Trade], tapes: dict[str, list[Trade]]) -> None:
    """From each resume point to the last stored trade: trades equal the tape; complete minutes equal the engine."""
    for inst_id in PAIRS:
        rows = stored(db, inst_id)
        first, last = resume[inst_id].trade_id, rows[-1][0]
        truth = [values(t) for t in tapes[inst_id] if first <= t.trade_id <= last]
        assert rows == truth, inst_id
        first_minute = resume[inst_id].ts_ms // MINUTE_MS * MINUTE_MS + MINUTE_MS
        end_minute = rows[-1][1] // MINUTE_MS * MINUTE_MS
        assert end_minute > first_minute  # at least one complete minute is compared
        assert stored_minutes(db, inst_id, first_minute, end_minute) == true_minutes(
            tapes[inst_id], inst_id, first_minute, end_minute
        )


async def run_through(
    db: Engine, name: str, sim_config: dict[str, Any], before: list[Any], live: list[Any]
) -> None:
    async with simulator(**sim_config) as sim:
        now = time.time_ns() // 1_000_000
        resume = await store_resume_points(sim, db, now)
        for body in before:
            await add_fault(sim, body)
        # 4004 needs a client that stays silent longer than the server's idle limit (our ping prevents it)
        options = dataclasses.replace(FAST, ping_after_s=5.0) if name == "idle_4004" else FAST
        run = start(sim, db, live_config(books=name in BOOK_FAULTS), options=options)
        try:
            # under 4004 churn (a close after every quiet second) both pairs are rarely live at one instant
            need_live = name != "idle_4004"
            await run.until(caught_up_to({p: resume[p].trade_id for p in PAIRS}, live=need_live))
            fault_ms = time.time_ns() // 1_000_000
            for body in live:
                await add_fault(sim, body)
            await asyncio.sleep(2.0)  # the timed faults end within 2 s
            if not need_live:  # the fault is the server's idle rule: wait until it closed on every pair
                await run.until(lambda h: h.reconnects >= 1)
            tapes = {p: await true_tape(sim, p) for p in PAIRS}
            await run.until(caught_up_to({p: tapes[p][-1].trade_id for p in PAIRS}, live=need_live))
            # the book's resubscribe and fresh snapshot may take longer on a busy machine: up to 20 s
            for _ in range(100 if name in BOOK_FAULTS else 0):
                if all(book_snapshots_after(db, p, fault_ms + 500) > 0 for p in PAIRS):
                    break
                await asyncio.sleep(0.2)
        finally:
            await run.stop()
        log = await fault_log(sim)
        tapes = {p: await true_tape(sim, p) for p in PAIRS}
    health = run.health
    assert_tape_and_candles(db, resume, tapes)
    for inst_id in PAIRS:
        assert health[inst_id].gaps_unrecoverable == 0
    rejected = rejected_payloads(db)
    expected = sorted(entry["frame"] for entry in log)
    assert rejected == expected
    if name in ("drop", "stall", "idle_4004", "refuse") or name.startswith("close"):
        assert all(h.reconnects >= 1 for h in health.values()), health
    if name in BOOK_FAULTS:  # the book recovered (a broken book stores nothing until a fresh snapshot)
        assert all(book_snapshots_after(db, p, fault_ms + 500) > 0 for p in PAIRS)
    if name == "malformed":
        assert log, "the fault sent no malformed frame"


@pytest.mark.parametrize(("name", "sim_config", "before", "live"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_no_trade_lost_through_fault(
    pg_engine: Engine, name: str, sim_config: dict[str, Any], before: list[Any], live: list[Any]
) -> None:
    await run_through(pg_engine, name, sim_config, before, live)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL runs the whole fault matrix above
@pytest.mark.parametrize("name", ["drop", "malformed"])
async def test_no_trade_lost_on_sqlite(engine: Engine, name: str) -> None:
    assert engine.dialect.name == "sqlite"
    _, sim_config, before, live = next(f for f in FAULTS if f[0] == name)
    await run_through(engine, name, sim_config, before, live)


async def test_kill_9_then_restart_loses_nothing(pg_engine: Engine) -> None:
    """A collector process killed with SIGKILL mid-stream; a new one resumes and catches up: nothing missing."""
    db_url = pg_engine.url.render_as_string(hide_password=False)
    async with simulator() as sim:
        resume = await store_resume_points(sim, pg_engine, time.time_ns() // 1_000_000)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.live.child_collect",
            db_url,
            sim.rest_url,
            sim.ws_public_url,
            sim.ws_business_url,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            start_ms = time.time_ns() // 1_000_000
            for _ in range(300):  # until the child stores live trades past its catch-up (at most 30 s)
                if all(stored(pg_engine, p)[-1][1] > start_ms + 1_000 for p in PAIRS):
                    break
                await asyncio.sleep(0.1)
        finally:
            child.send_signal(signal.SIGKILL)
            assert await child.wait() == -signal.SIGKILL
        killed_at = {p: stored(pg_engine, p)[-1][0] for p in PAIRS}
        await asyncio.sleep(1.0)  # trades go on while no collector runs
        run = start(sim, pg_engine, live_config(), collector_id="restarted")
        try:
            tapes = {p: await true_tape(sim, p) for p in PAIRS}
            await run.until(caught_up_to({p: tapes[p][-1].trade_id for p in PAIRS}))
        finally:
            await run.stop()
        tapes = {p: await true_tape(sim, p) for p in PAIRS}
    assert all(stored(pg_engine, p)[-1][0] > killed_at[p] for p in PAIRS)
    assert_tape_and_candles(pg_engine, resume, tapes)
