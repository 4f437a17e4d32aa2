"""The live collectors on real clients: one ``OkxRestClient``, one ``OkxWebSocket`` per endpoint, one writer.

:func:`run_collectors` is what the ``collect`` and ``demo`` commands (and the tests against the simulator) call.
One :class:`~collectors.ratelimit.RateLimiter` per process holds OKX's REST quotas and the WebSocket connect
quota, so REST polls and reconnects share one budget. Timings (keepalive, backoff, polling) are
:class:`LiveOptions` fields so a test can shorten them; the defaults are the production values.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from collectors.ratelimit import RateLimiter
from collectors.settings import Settings
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter
from collectors.storage.writer_options import WriterOptions

__all__ = ["Endpoints", "LiveOptions", "RunResult", "credentials_of", "process_limiter", "run_collectors"]


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
    """Timings of one run. ``ws_backoff``/``rest_backoff`` build delay iterators in seconds."""

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


async def _run_until(work: Coroutine[Any, Any, None], stop: asyncio.Event | None) -> None:
    """Await ``work``; when ``stop`` is set first, cancel it and wait until it has cleaned up."""
    task = asyncio.ensure_future(work)
    if stop is None:
        await task
        return
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
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
    every ``options.status_interval_s``. ``limiter``: the process's limiter when the caller shares it (a share
    of OKX's budget set by the caller); default a new :func:`process_limiter`."""
    opts = options or LiveOptions()
    limiter = limiter if limiter is not None else process_limiter()
    cid = collector_id or f"okx-{uuid.uuid4().hex[:12]}"
    writer_options = opts.writer or WriterOptions(
        max_batch_rows=config.batching.max_batch_rows,
        flush_interval_s=config.batching.flush_interval_s,
        max_pending_rows=config.batching.max_pending_rows,
    )
    async with (
        OkxRestClient(
            base_url=endpoints.rest_url,
            limiter=limiter,
            timeout_s=opts.rest_timeout_s,
            max_attempts=opts.rest_attempts,
            backoff=opts.rest_backoff,
            clock=clock,
        ) as rest,
        BatchWriter(open_sink(db), options=writer_options, clock=clock) as writer,
    ):
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
        reporter = None
        if on_status is not None:
            reporter = asyncio.create_task(_report(manager, writer, on_status, opts.status_interval_s))
        try:
            await _run_until(manager.run(duration_s), stop)
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
    stats = writer.stats()
    return RunResult(
        collector_id=cid,
        health=tuple(manager.health()),
        written_rows=stats.written_rows,
        dead_rows=stats.dead_rows,
    )
