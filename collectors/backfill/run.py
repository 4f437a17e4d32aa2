"""A whole backfill in one process, without Prefect (the CLI, the benchmark, the tests).

The Prefect flow (``flows/backfill.py``) composes the same steps as tasks; this is their plain-asyncio
composition: :func:`~collectors.backfill.work.plan`, the chunks ``concurrency`` at a time (each retried up to
``chunk_attempts`` times on a retryable error; the REST client below retries every request on its own), then
:func:`~collectors.backfill.finish.finish_pair` per pair. The chunks share the process's limiter through the
REST client, so concurrency only hides latency: the budget decides the rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from collectors.backfill.fetch import ChunkResult, fetch_chunk
from collectors.backfill.finish import PairSummary, finish_pair
from collectors.backfill.plan import Chunk
from collectors.backfill.work import Backfill, BackfillSettings, Request, plan
from collectors.backoff import backoff
from collectors.errors import CollectorError, StorageError, is_retryable
from collectors.exchanges.okx.rest import OkxRestClient
from collectors.ratelimit import RateLimiter
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions

__all__ = ["Progress", "RunSummary", "open_backfill", "run_backfill", "run_chunk"]

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
DEFAULT_CHUNK_ATTEMPTS = 3


def _chunk_backoff() -> Iterator[float]:
    return backoff(initial_s=2.0, max_s=30.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Where a run is: chunks done of all, trades stored so far."""

    done: int
    total: int
    trades: int
    ids: int
    label: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    plan_requests: int
    pairs: tuple[PairSummary, ...]
    failed_chunks: int

    @property
    def trades(self) -> int:
        return sum(p.trades for p in self.pairs)

    @property
    def ok(self) -> bool:
        return self.failed_chunks == 0


async def run_chunk(
    bf: Backfill,
    chunk: Chunk,
    *,
    attempts: int = DEFAULT_CHUNK_ATTEMPTS,
    delays: Callable[[], Iterator[float]] = _chunk_backoff,
) -> ChunkResult:
    """``fetch_chunk`` retried on retryable errors after a backoff delay (as the flow's task retries are); a
    chunk that still fails comes back as ``failed``."""
    wait = delays()
    for attempt in range(1, attempts + 1):
        try:
            return await fetch_chunk(bf, chunk)
        except CollectorError as exc:
            if not is_retryable(exc) or attempt == attempts:
                log.warning("backfill %s failed (attempt %d): %s", chunk.label, attempt, exc)
                return ChunkResult.failed(
                    chunk,
                    f"{type(exc).__name__}: {exc} ({attempt} attempts)",
                    rest_verdict=not isinstance(exc, StorageError),
                )
            delay = next(wait)
            log.info("backfill %s attempt %d failed: %s; retry in %.1f s", chunk.label, attempt, exc, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def run_backfill(
    bf: Backfill,
    request: Request,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    chunk_attempts: int = DEFAULT_CHUNK_ATTEMPTS,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Plan, fetch every chunk, finish every pair; returns the totals (failed chunks are in them, not raised)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    the_plan = await plan(bf, request)
    results = await _chunks(bf, the_plan.chunks, concurrency, chunk_attempts, the_plan.ids, on_progress)
    pairs = [await finish_pair(bf, the_plan, results, inst_id) for inst_id in request.pairs]
    return RunSummary(
        plan_requests=the_plan.requests,
        pairs=tuple(pairs),
        failed_chunks=sum(1 for r in results if r.error is not None),
    )


async def _chunks(
    bf: Backfill,
    chunks: Sequence[Chunk],
    concurrency: int,
    attempts: int,
    ids: int,
    on_progress: Callable[[Progress], None] | None,
) -> list[ChunkResult]:
    gate = asyncio.Semaphore(concurrency)
    results: list[ChunkResult] = []
    if on_progress is not None:
        on_progress(Progress(done=0, total=len(chunks), trades=0, ids=ids))

    async def one(chunk: Chunk) -> None:
        async with gate:
            result = await run_chunk(bf, chunk, attempts=attempts)
        results.append(result)
        if on_progress is not None:
            trades = sum(r.trades for r in results)
            on_progress(
                Progress(done=len(results), total=len(chunks), trades=trades, ids=ids, label=chunk.label)
            )

    async with asyncio.TaskGroup() as group:
        for chunk in chunks:
            group.create_task(one(chunk))
    return results


@contextlib.asynccontextmanager
async def open_backfill(
    *,
    db: Engine,
    rest_url: str,
    limiter: RateLimiter,
    settings: BackfillSettings,
    writer_options: WriterOptions | None = None,
    rest_backoff: Callable[[], Iterator[float]] = backoff,
    rest_attempts: int = 6,
) -> AsyncIterator[Backfill]:
    """A :class:`Backfill` on its own REST client (over ``limiter``, the process's) and writer; both closed
    (the writer flushed) on exit."""
    async with (
        OkxRestClient(
            base_url=rest_url, limiter=limiter, backoff=rest_backoff, max_attempts=rest_attempts
        ) as rest,
        BatchWriter(open_sink(db), options=writer_options) as writer,
    ):
        yield Backfill(db=db, rest=rest, writer=writer, settings=settings)
