"""The ``live-collection`` flow: the live collectors of issue 9 inside one long-running flow run.

One flow run supervises every pair it is given (one asyncio task per pair and connection inside
:func:`collectors.live.app.run_collectors`); pairs are split between runs by the ``pairs`` parameter of each
deployment (prefect.yaml, docs/operations.md).

Stopping. A cancel from the UI reaches the run's process as SIGTERM (the worker or ``serve`` first tells the
process over its control channel that it is a cancel). Prefect's SIGTERM handler raises ``TerminationSignal``
at whatever bytecode the main thread runs at that moment; the collectors therefore run on their own event
loop in a thread of their own (:class:`_CollectorThread`), where no signal handler ever runs, and the signal
lands in this flow's coroutine (as ``TerminationSignal`` or as the ``CancelledError`` of the loop's shutdown).
The flow then asks the collectors to stop: they stop reading, flush every buffer, record the coverage, and
only then does the flow re-raise, so Prefect ends the run ``Cancelled`` (``Crashed`` for a SIGTERM that was
not a cancel). Prefect's handler must stay installed: the process acknowledges a cancel only while it is.

``max_runtime_s`` gives rolling runs: the run ends ``Completed`` after that long and a schedule (or the crash
automation) starts the next one, which resumes from the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import re
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.exceptions import TerminationSignal
from prefect.runtime import deployment, flow_run

from collectors.errors import ConfigError
from collectors.live.app import LiveOptions, RunResult
from collectors.live.status import summary_table
from collectors.logs import install_mask, settings_secrets
from collectors.settings import load_settings
from tasks.live import MinuteSummary, collect_live, result_rows
from tasks.rest_budget import BUDGET_LIMIT

__all__ = ["live_collection"]


class _CollectorThread:
    """The collectors on their own event loop in a thread of their own.

    Python runs signal handlers in the main thread only, so Prefect's SIGTERM bridge (``TerminationSignal``)
    can never interrupt collector code halfway (a writer between taking a batch and committing it); it lands
    in the flow's coroutine, which then asks the thread to stop and waits for its orderly end."""

    def __init__(self, work: Callable[[asyncio.Event], Coroutine[Any, Any, RunResult]]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self.done: concurrent.futures.Future[RunResult] = concurrent.futures.Future()
        context = contextvars.copy_context()  # the flow run's context: its logger works in the thread
        self._thread = threading.Thread(target=context.run, args=(self._main,), name="live-collectors")

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)

    def _main(self) -> None:
        try:
            self.done.set_result(asyncio.run(self._run()))
        except BaseException as exc:  # handed to the flow's coroutine, which re-raises it
            self.done.set_exception(exc)

    async def _run(self) -> RunResult:
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = asyncio.get_running_loop(), stop
            if self._stop_requested:
                stop.set()
        return await self._work(stop)


def _artifact_key() -> str:
    """``live-<deployment>`` (``live-adhoc`` outside a deployment); artifact keys allow [a-z0-9-] only."""
    name = deployment.name or "adhoc"
    return "live-" + (re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "adhoc")


async def _report(result: RunResult, how: str) -> None:
    get_run_logger().info(
        "collector %s %s: %d rows written, %d dead-lettered\n%s",
        result.collector_id,
        how,
        result.written_rows,
        result.dead_rows,
        summary_table(result.health),
    )
    await acreate_table_artifact(
        key=_artifact_key(),
        table=[dict(row) for row in result_rows(result.health)],
        description=f"# live collection {how}\ncollector `{result.collector_id}`: "
        f"{result.written_rows} rows written, {result.dead_rows} dead-lettered",
    )


@flow(name="live-collection", log_prints=False)
async def live_collection(
    pairs: list[str] | None = None,
    channels: list[str] | None = None,
    max_runtime_s: float | None = None,
    summary_interval_s: float = 60.0,
    budget_limit: str | None = BUDGET_LIMIT,
) -> dict[str, Any]:
    """Collect OKX market data live (WebSocket, REST catch-up) into the database until cancelled.

    Args:
        pairs: instIds to collect, e.g. ["BTC-USDT", "ETH-USDT"]; each must be in the collectors config.
            Empty: every configured pair.
        channels: config channel names for every pair (trades, books5, tickers, candles). Empty: each
            pair's channels from the config.
        max_runtime_s: end the run Completed after this many seconds (rolling runs; the next run resumes
            from the database). Empty: run until cancelled.
        summary_interval_s: seconds between the status summaries written to the run's log.
        budget_limit: the Prefect global concurrency limit counting the processes that share this host's
            OKX REST budget with the backfills (created if missing). Empty: this run takes the whole budget
            (use a per-host name when runs on several hosts have their own IPs).
    """
    if max_runtime_s is not None and not max_runtime_s > 0:
        raise ConfigError(f"max_runtime_s must be above 0 (or empty: until cancelled), got {max_runtime_s}")
    if not summary_interval_s > 0:
        raise ConfigError(f"summary_interval_s must be above 0, got {summary_interval_s}")
    logger = get_run_logger()
    summary = MinuteSummary(emit=logger.info, monotonic_s=time.monotonic, interval_s=summary_interval_s)
    run_id = flow_run.id
    settings = load_settings()
    # a worker's handlers are Prefect's, not configure_logging's: mask the OKX secrets in them too
    install_mask(settings_secrets(settings))
    collectors = _CollectorThread(
        lambda stop: collect_live(
            settings=settings,
            pairs=pairs,
            channels=channels,
            max_runtime_s=max_runtime_s,
            stop=stop,
            on_status=summary,
            options=LiveOptions(),
            collector_id=f"prefect-{run_id.replace('-', '')[:16]}" if run_id else None,
            budget_limit=budget_limit or None,
        )
    )
    collectors.start()
    try:
        result = await asyncio.shield(asyncio.wrap_future(collectors.done))
    except (asyncio.CancelledError, TerminationSignal):
        # a cancel (SIGTERM from the worker or serve, or a cancelled await): stop reading, flush everything,
        # record coverage, report, then let Prefect end the run (Cancelled after a cancel, else Crashed)
        collectors.request_stop()
        result = await asyncio.wrap_future(collectors.done)
        await _report(result, "stopped by a cancel (everything flushed)")
        raise
    await _report(result, "finished")
    return {row["pair"]: row["trades"] for row in result_rows(result.health)}
