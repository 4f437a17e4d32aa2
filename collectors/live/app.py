"""The live collectors on real clients: one ``OkxRestClient``, one ``OkxWebSocket`` per endpoint, one writer.

:func:`run_collectors` is what the ``collect`` and ``demo`` commands (and the tests against the simulator) call.
One :class:`~collectors.ratelimit.RateLimiter` per process holds OKX's REST quotas and the WebSocket connect
quota, so REST polls and reconnects share one budget. Timings (keepalive, backoff, polling) are
:class:`LiveOptions` fields so a test can shorten them; the defaults are the production values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from collectors.backoff import backoff as default_backoff
from collectors.config import CollectorsConfig
from collectors.exchanges.okx.limits import OKX_REST_QUOTAS
from collectors.exchanges.okx.protocol import Credentials
from collectors.exchanges.okx.rest import OkxRestClient
from collectors.exchanges.okx.session import CONNECT_KEY, WS_CONNECT_QUOTA, wall_clock_ms
from collectors.exchanges.okx.ws import OkxWebSocket
from collectors.live.core import CoreSettings
from collectors.live.factory import build_manager
from collectors.live.health import PairHealth
from collectors.live.runner import CollectorManager, EventSource
from collectors.ops.server import serve_ops
from collectors.ops.snapshot import Probe
from collectors.ratelimit import RateLimiter
from collectors.settings import Settings
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter
from collectors.storage.writer_options import WriterOptions

__all__ = [
    "Endpoints",
    "LiveOptions",
    "RunResult",
    "credentials_of",
    "process_limiter",
    "run_collectors",
    "writer_options",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Where OKX is: the settings' URLs (``OKX_REST_URL``, ``OKX_WS_*_URL``) or a simulator's."""

    rest_url: str
    ws_public_url: str
    ws_business_url: str
    credentials: Credentials | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoints:
        return cls(
            rest_url=settings.okx_rest_url,
            ws_public_url=settings.okx_ws_public_url,
            ws_business_url=settings.okx_ws_business_url,
            credentials=credentials_of(settings),
        )


def credentials_of(settings: Settings) -> Credentials | None:
    """Login credentials when all three OKX_API_* settings are set, else None (public channels only)."""
    key, secret, passphrase = settings.okx_api_key, settings.okx_api_secret, settings.okx_api_passphrase
    if key is None or secret is None or passphrase is None:
        return None
    return Credentials.of(api_key=key.get_secret_value(), secret=secret, passphrase=passphrase)


def _prod_backoff() -> Iterator[float]:
    return default_backoff()


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveOptions:
    """Timings of one run. ``ws_backoff``/``rest_backoff`` build delay iterators in seconds. ``writer`` None:
    the writer's options from the config's ``batching`` (spill dir included). ``stop_log_interval_s``: while a
    stop waits for the database, a line says so this often."""

    ping_after_s: float = 5.0
    pong_timeout_s: float = 3.0
    ack_timeout_s: float = 10.0
    ws_backoff: Callable[[], Iterator[float]] = _prod_backoff
    rest_backoff: Callable[[], Iterator[float]] = _prod_backoff
    rest_timeout_s: float = 10.0
    rest_attempts: int = 6
    tick_s: float = 0.2
    status_interval_s: float = 1.0
    core: CoreSettings = field(default_factory=CoreSettings)
    writer: WriterOptions | None = None
    stop_log_interval_s: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """What a run ended with: the last health of every pair and the writer's totals."""

    collector_id: str
    health: tuple[PairHealth, ...]
    written_rows: int
    dead_rows: int


def process_limiter() -> RateLimiter:
    """THE limiter of a process: OKX's REST quotas and the WebSocket connect quota in one."""
    return RateLimiter(quotas={**OKX_REST_QUOTAS, CONNECT_KEY: WS_CONNECT_QUOTA})


def writer_options(config: CollectorsConfig, options: LiveOptions) -> WriterOptions:
    """``options.writer`` if set, else the config's ``batching``: batch size, flush interval, memory bound and the
    spill dir that keeps rows while the database is away (also at a stop that cannot reach it)."""
    if options.writer is not None:
        return options.writer
    batching = config.batching
    return WriterOptions(
        max_batch_rows=batching.max_batch_rows,
        flush_interval_s=batching.flush_interval_s,
        max_pending_rows=batching.max_pending_rows,
        spill_dir=batching.spill_dir,
    )


class _StopLog:
    """From the moment a run starts stopping until the writer is closed: a line every ``interval_s`` saying how
    many rows still wait for the database, so an operator knows why the process has not exited."""

    def __init__(self, writer: BatchWriter, options: WriterOptions, interval_s: float) -> None:
        self.writer, self.options, self.interval_s = writer, options, interval_s
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        if self._task is None:
            stats = self.writer.stats()
            log.info("stopping: writing %d pending rows to the database", stats.pending_rows)
            self._task = asyncio.create_task(self._every_interval(), name="stop-log")

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            stats = self.writer.stats()
            waiting = stats.pending_rows + stats.spilled_rows
            if not waiting:
                continue
            if stats.healthy:
                log.info("stopping: still writing %d rows to the database", waiting)
                continue
            spill = self.options.spill_dir
            then = (
                f"then they are spilled to {spill}"
                if spill is not None
                else "then the stop fails with them unwritten (no spill_dir)"
            )
            log.warning(
                "stopping: waiting to write %d rows to the database (%d in memory, %d spilled): %s; "
                "retrying for up to %g s, %s",
                waiting,
                stats.pending_rows,
                stats.spilled_rows,
                stats.last_error,
                self.options.close_timeout_s,
                then,
            )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _source_factory(
    endpoints: Endpoints, limiter: RateLimiter, options: LiveOptions
) -> Callable[[str], EventSource]:
    urls = {"public": endpoints.ws_public_url, "business": endpoints.ws_business_url}

    def make(name: str) -> EventSource:
        return OkxWebSocket(
            url=urls[name],
            name=name,
            connect_limiter=limiter,
            credentials=endpoints.credentials,
            ping_after_s=options.ping_after_s,
            pong_timeout_s=options.pong_timeout_s,
            ack_timeout_s=options.ack_timeout_s,
            backoff=options.ws_backoff,
        )

    return make


async def _report(
    manager: CollectorManager,
    writer: BatchWriter,
    on_status: Callable[[list[PairHealth]], None],
    interval_s: float,
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        on_status(manager.health(writer_lag_ms=writer.stats().lag_ms))


async def _run_until(
    work: Coroutine[Any, Any, None], stop: asyncio.Event | None, on_stopping: Callable[[], None]
) -> None:
    """Await ``work``; when ``stop`` is set first (or this is cancelled), call ``on_stopping``, cancel ``work`` and
    wait until it has cleaned up."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(asyncio.Event().wait() if stop is None else stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            on_stopping()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.done() and not task.cancelled():
        task.result()


async def run_collectors(
    *,
    config: CollectorsConfig,
    db: Engine,
    endpoints: Endpoints,
    pairs: Sequence[str] | None = None,
    duration_s: float | None = None,
    options: LiveOptions | None = None,
    collector_id: str | None = None,
    on_status: Callable[[list[PairHealth]], None] | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], int] = wall_clock_ms,
    limiter: RateLimiter | None = None,
) -> RunResult:
    """Collect the config's ``okx`` pairs (``pairs`` narrows them) into ``db`` until ``stop`` is set,
    ``duration_s`` passed or the task is cancelled; on each, every buffer is flushed and the writer closed
    before this returns (a cancellation is re-raised after that). ``on_status`` gets every pair's health
    every ``options.status_interval_s`` and once more, final, when the run has ended. ``limiter``: the
    process's limiter when the caller shares it (a share of OKX's budget set by the caller); default a new
    :func:`process_limiter`.

    Raises the permanent error that left no pair collecting (every endpoint they need failed for good, e.g.
    close 4001), after everything collected was written; a pair stopped that way while others go on is
    ``failed`` in the result's health."""
    opts = options or LiveOptions()
    limiter = limiter if limiter is not None else process_limiter()
    cid = collector_id or f"okx-{uuid.uuid4().hex[:12]}"
    wopts = writer_options(config, opts)
    async with (
        OkxRestClient(
            base_url=endpoints.rest_url,
            limiter=limiter,
            timeout_s=opts.rest_timeout_s,
            max_attempts=opts.rest_attempts,
            backoff=opts.rest_backoff,
            clock=clock,
        ) as rest,
        contextlib.AsyncExitStack() as stack,
    ):
        writer = BatchWriter(open_sink(db), options=wopts, clock=clock)
        stop_log = _StopLog(writer, wopts, opts.stop_log_interval_s)
        # after the writer's close: exit callbacks run last in, first out
        stack.push_async_callback(stop_log.aclose)
        await stack.enter_async_context(writer)
        manager = await build_manager(
            config=config,
            db=db,
            sink=writer,
            history=rest,
            make_source=_source_factory(endpoints, limiter, opts),
            clock=clock,
            collector_id=cid,
            pairs=pairs,
            core_settings=opts.core,
            tick_s=opts.tick_s,
        )
        # config.ops.metrics_port (0: off): /metrics /health /ready /status read this run's health objects
        probe = Probe(collector_id=cid, manager=manager, writer=writer, rest=rest, clock=clock)
        await stack.enter_async_context(serve_ops(config.ops, probe, db))
        reporter = None
        if on_status is not None:
            reporter = asyncio.create_task(_report(manager, writer, on_status, opts.status_interval_s))
        try:
            await _run_until(manager.run(duration_s), stop, stop_log.begin)
        finally:
            stop_log.begin()  # the writer closes next: it may wait for the database
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            if on_status is not None:
                on_status(manager.health(writer_lag_ms=writer.stats().lag_ms))
    stats = writer.stats()
    return RunResult(
        collector_id=cid,
        health=tuple(manager.health()),
        written_rows=stats.written_rows,
        dead_rows=stats.dead_rows,
    )
