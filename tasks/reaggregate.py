"""Prefect task of the ``reaggregate`` flow: one task per chunk (a day by default) of one pair.

A thin adapter over :func:`collectors.quality.reaggregate.reaggregate_chunk` on the settings' database; retried
only when its error can pass. Results are small summaries (counts and the changed candles' keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from collectors.candles import EmptyPolicy
from collectors.quality.compare import ChangeKind
from collectors.quality.findings import iso
from collectors.quality.reaggregate import ChunkResult, reaggregate_chunk
from tasks.retry import retryable
from tasks.validate import database

__all__ = ["change_rows", "counts", "reaggregate_chunk_task"]


@task(
    name="reaggregate-chunk",
    task_run_name="reaggregate-{inst_id}-{start_ms}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retryable,
)
async def reaggregate_chunk_task(
    *,
    inst_id: str,
    timeframes: Sequence[str],
    start_ms: int,
    end_ms: int,
    now_ms: int,
    empty_policy: EmptyPolicy,
    dry_run: bool,
    exchange: str = "okx",
) -> ChunkResult:
    """Re-aggregate ``[start_ms, end_ms)`` of one pair and upsert the candles that differ (unless dry run)."""
    with database() as engine:
        return await reaggregate_chunk(
            engine, exchange=exchange, inst_id=inst_id, timeframes=timeframes, start_ms=start_ms, end_ms=end_ms,
            now_ms=now_ms, empty_policy=empty_policy, dry_run=dry_run,
        )  # fmt: skip


def change_rows(results: Sequence[ChunkResult]) -> list[dict[str, Any]]:
    """One row per changed candle (for the table artifact)."""
    return [
        {
            "pair": r.inst_id,
            "timeframe": c.timeframe,
            "open_time": iso(c.open_time_ms),
            "kind": c.kind.value,
            "fields": ",".join(c.fields),
        }
        for r in results
        for c in r.changes
    ]


def counts(results: Sequence[ChunkResult]) -> dict[str, int]:
    """Totals over ``results``: trades, candles, written and each change kind."""
    total = {"trades": 0, "candles": 0, "written": 0, **{k.value: 0 for k in ChangeKind}}
    for r in results:
        total["trades"] += r.trades
        total["candles"] += r.candles
        total["written"] += r.written
        for kind in ChangeKind:
            total[kind.value] += r.count(kind)
    return total
