"""The ``backfill`` flow: holes of the trade tape filled from OKX REST history (scheduled and ad-hoc).

Scheduled (every 15 minutes, prefect.yaml) with no range it fills every open gap of the coverage ledger and
every trade-id hole of the last ``gaps_lookback_hours``; ad-hoc it takes a range (``start``/``end``) or
``since`` (the last N days of a new pair). One task plans, one task per chunk (``chunk_ids`` trade ids, about
``chunk_ids / 100`` REST pages) fetches with retries, one task per pair finishes (coverage, candles revised
through the engine, OKX's candles). The process joins the IP's shared REST budget (``tasks/rest_budget.py``)
for the run. A progress artifact follows long runs; a summary table ends every run (key ``backfill-summary``).
The run ends Failed when a chunk still failed after its retries (its span is recorded ``unrecoverable``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_progress_artifact, acreate_table_artifact, aupdate_progress_artifact
from prefect.client.schemas.objects import State

from collectors.backfill import Backfill, ChunkResult, PairSummary, Plan, open_backfill, settings_from_config
from collectors.backfill.request import build_request, chosen_pairs
from collectors.config import load_config
from collectors.errors import CollectorError, ConfigError, StorageError
from collectors.exchanges.okx.limits import OKX_REST_QUOTAS
from collectors.logs import install_mask, settings_secrets
from collectors.ratelimit import RateLimiter
from collectors.settings import load_settings
from collectors.storage.engine import make_engine
from tasks.backfill import fetch_chunk_task, finish_pair_task, plan_task
from tasks.rest_budget import BUDGET_LIMIT, ensure_budget_limit, rest_budget

__all__ = ["backfill", "summary_rows"]

PROGRESS_MIN_CHUNKS = 3  # fewer chunks finish before a progress bar would help


def summary_rows(pairs: Sequence[PairSummary]) -> list[dict[str, Any]]:
    """One row per pair: the table artifact and the flow's return value."""
    return [dict(p.row()) for p in pairs]


@flow(name="backfill", log_prints=False)
async def backfill(
    pairs: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    since: str | None = None,
    gaps_lookback_hours: float = 24.0,
    chunk_ids: int = 10_000,
    concurrency: int = 4,
    exchange_candles: bool = True,
    budget_limit: str = BUDGET_LIMIT,
) -> list[dict[str, Any]]:
    """Fill holes of the stored trade tape from OKX REST history, revise the touched candles, record coverage.

    Args:
        pairs: instIds of the collectors config, e.g. ["BTC-USDT"] (another one is refused). Empty: every
            configured pair.
        start: ISO 8601 start of an ad-hoc range (UTC when no zone), e.g. "2026-11-20T10:00:00Z".
        end: ISO 8601 end of the range (default: now).
        since: instead of a range, the last duration back from now, e.g. "7d" or "12h" (a new pair).
        gaps_lookback_hours: with neither range nor since (the scheduled run): how far back the coverage
            ledger and trade-id continuity are searched for open gaps.
        chunk_ids: trade ids per task (100 per REST page; 10000 is about 11 s of a whole budget).
        concurrency: chunks fetched at once (hides latency; the shared REST budget sets the rate).
        exchange_candles: also store OKX's history-candles of the filled time in exchange_candles.
        budget_limit: the Prefect global concurrency limit whose slots count the processes sharing the IP's
            REST budget (created with 6 slots if missing).
    """
    logger = get_run_logger()
    if chunk_ids < 1 or concurrency < 1 or not 0 < gaps_lookback_hours < math.inf:
        raise ConfigError(
            "chunk_ids and concurrency must be at least 1 and gaps_lookback_hours above 0, got "
            f"{chunk_ids}, {concurrency}, {gaps_lookback_hours}"
        )
    settings = load_settings()
    # a worker's handlers are Prefect's, not configure_logging's: mask the OKX secrets in them too
    install_mask(settings_secrets(settings))
    config = load_config(settings.collector_config)
    try:
        chosen = chosen_pairs(pairs, [p.inst_id for p in config.exchanges["okx"].pairs])
        request = build_request(chosen, start=start, end=end, since=since, now_ms=time.time_ns() // 1_000_000)
    except ValueError as exc:
        raise ConfigError(f"backfill parameters: {exc}") from exc
    bf_settings = settings_from_config(
        config,
        chunk_ids=chunk_ids,
        gaps_lookback_ms=int(gaps_lookback_hours * 3_600_000),
        exchange_candles=exchange_candles,
    )
    db = make_engine(settings.database_url, create=False)
    limiter = RateLimiter(quotas=OKX_REST_QUOTAS)
    await ensure_budget_limit(budget_limit)
    try:
        async with (
            rest_budget(limiter, name=budget_limit),
            open_backfill(db=db, rest_url=settings.okx_rest_url, limiter=limiter, settings=bf_settings) as bf,
        ):
            the_plan = await plan_task(bf, request)
            logger.info(
                "backfill %s: %d holes, %d ids, %d chunks",
                request.mode,
                len(the_plan.holes),
                the_plan.ids,
                len(the_plan.chunks),
            )
            results = await _fetch_all(bf, the_plan, concurrency)
            summaries = [await finish_pair_task(bf, the_plan, results, inst_id) for inst_id in request.pairs]
    finally:
        db.dispose()
    rows = summary_rows(summaries)
    failed = sum(p.failed_chunks for p in summaries)
    await acreate_table_artifact(
        key="backfill-summary",
        table=rows,
        description=f"# backfill ({request.mode})\n{sum(p.trades for p in summaries)} trades stored, "
        f"{sum(p.candles_changed for p in summaries)} candles revised, {failed} chunks failed",
    )
    if failed:
        raise CollectorError(
            f"backfill: {failed} chunks failed after their retries (recorded unrecoverable; left open for the "
            "next run when the database failed)"
        )
    return rows


async def _fetch_all(bf: Backfill, the_plan: Plan, concurrency: int) -> list[ChunkResult]:
    """Every chunk as a task, ``concurrency`` at once; a chunk failing after its retries becomes a failed result."""
    gate = asyncio.Semaphore(max(1, concurrency))
    chunks = the_plan.chunks
    progress: UUID | None = None
    if len(chunks) >= PROGRESS_MIN_CHUNKS:
        progress = await acreate_progress_artifact(
            progress=0.0, key="backfill-progress", description=f"backfill: {len(chunks)} chunks"
        )
    results: list[ChunkResult] = []
    updating = asyncio.Lock()

    async def one(index: int) -> None:
        chunk = chunks[index]
        async with gate:
            call: Any = fetch_chunk_task(
                bf, chunk, return_state=True
            )  # an async task: a coroutine of its State
            state: State[ChunkResult] = await call
        if state.is_completed():
            results.append(await state.aresult())
        else:
            error = await state.aresult(raise_on_failure=False)  # the exception the task failed with
            rest_verdict = not isinstance(
                error, StorageError
            )  # the database away is no verdict on OKX's data
            results.append(ChunkResult.failed(chunk, state.message or "failed", rest_verdict=rest_verdict))
        if progress is not None:
            async with (
                updating
            ):  # one update at a time, each with the count at that moment: it never goes back
                await aupdate_progress_artifact(
                    artifact_id=progress, progress=100.0 * len(results) / len(chunks)
                )

    async with asyncio.TaskGroup() as group:
        for index in range(len(chunks)):
            group.create_task(one(index))
    return results
