"""A kill -9 between two ``collected`` coverage rows: after the restart's catch-up the ledger has no false hole.

The killed session stored trades after its last coverage row (rows are written every ``coverage_interval_ms``
and at a clean stop); a restart resumes from the last stored trade. The span between the last recorded coverage
and that trade holds stored trades: the restart records it, so ``collected`` and ``backfilled`` spans cover the
whole run from the first resume point to the restarted session's stop without a hole.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.storage.schema import CoverageRow
from tests.live.sim_run import (
    PAIRS,
    caught_up_to,
    live_config,
    simulator,
    start,
    store_resume_points,
    stored,
    true_tape,
)

ROOT = Path(__file__).resolve().parents[2]


def covered_spans(db: Engine, inst_id: str) -> list[tuple[int, int]]:
    """``collected`` and ``backfilled`` spans of ``inst_id``'s trades, merged where they touch or overlap."""
    with Session(db) as session:
        rows = session.execute(
            select(CoverageRow.start_time, CoverageRow.end_time)
            .where(CoverageRow.inst_id == inst_id, CoverageRow.data_type == "trades")
            .where(CoverageRow.status.in_(("collected", "backfilled")))
            .order_by(CoverageRow.start_time)
        ).all()
    merged: list[tuple[int, int]] = []
    for start_ms, end_ms in rows:
        if merged and start_ms <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end_ms))
        else:
            merged.append((start_ms, end_ms))
    return merged


async def test_kill_9_leaves_no_false_hole_in_the_coverage_ledger(pg_engine: Engine) -> None:
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
            for _ in range(300):  # live trades stored well past the catch-up (at most 30 s)
                if all(stored(pg_engine, p)[-1][1] > start_ms + 2_000 for p in PAIRS):
                    break
                await asyncio.sleep(0.1)
        finally:
            child.send_signal(signal.SIGKILL)
            assert await child.wait() == -signal.SIGKILL
        killed_at = {p: stored(pg_engine, p)[-1][1] for p in PAIRS}
        await asyncio.sleep(1.0)
        run = start(sim, pg_engine, live_config(), collector_id="restarted")
        try:
            tapes = {p: await true_tape(sim, p) for p in PAIRS}
            await run.until(caught_up_to({p: tapes[p][-1].trade_id for p in PAIRS}))
        finally:
            await run.stop()
    for inst_id in PAIRS:
        spans = covered_spans(pg_engine, inst_id)
        assert len(spans) == 1, f"{inst_id}: holes in the ledger between {spans}"
        (covered,) = spans
        assert covered[0] <= resume[inst_id].ts_ms and covered[1] > killed_at[inst_id]
