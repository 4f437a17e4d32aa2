"""Prefect tasks of the backfill: thin adapters over ``collectors.backfill`` (one task per step or chunk).

The :class:`~collectors.backfill.Backfill` context (database engine, REST client, writer) is built once by the
flow and passed to each task; results stay in memory (``PREFECT_TASKS_DEFAULT_NO_CACHE`` or ``NO_CACHE``: the
inputs are live objects, never hashed or persisted). A chunk is retried on retryable errors only
(``collectors.errors.is_retryable``); the REST client already retried each request below it.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from collectors.backfill import (
    Backfill,
    Chunk,
    ChunkResult,
    PairSummary,
    Plan,
    Request,
    fetch_chunk,
    finish_pair,
    plan,
)
from tasks.retry import retryable

__all__ = ["CHUNK_RETRIES", "fetch_chunk_task", "finish_pair_task", "plan_task"]

CHUNK_RETRIES = 3


@task(
    name="backfill-plan",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retryable,
)
async def plan_task(bf: Backfill, request: Request) -> Plan:
    """Spans -> trade-id holes -> chunks (REST only for the ids at span edges)."""
    return await plan(bf, request)


@task(
    name="backfill-chunk",
    task_run_name="backfill-{chunk.inst_id}-{chunk.after_id}",
    cache_policy=NO_CACHE,
    retries=CHUNK_RETRIES,
    retry_delay_seconds=[2, 10, 30],
    retry_jitter_factor=0.5,
    retry_condition_fn=retryable,
)
async def fetch_chunk_task(bf: Backfill, chunk: Chunk) -> ChunkResult:
    """Fetch and store one chunk of ids."""
    return await fetch_chunk(bf, chunk)


@task(name="backfill-finish", task_run_name="backfill-finish-{inst_id}", cache_policy=NO_CACHE)
async def finish_pair_task(
    bf: Backfill, the_plan: Plan, results: Sequence[ChunkResult], inst_id: str
) -> PairSummary:
    """Coverage, touched candles and OKX's candles of one pair."""
    return await finish_pair(bf, the_plan, results, inst_id)
