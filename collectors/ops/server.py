"""The collector's local HTTP endpoint: ``/metrics``, ``/health``, ``/ready`` and ``/status`` (docs/observability.md).

It runs in a thread of its own (``http.server``), so ``/health`` can still answer, 503, while the collector's
event loop is blocked. Every reading of the collector hops onto its loop (the health objects are the loop's)
with a timeout; nothing is computed per message: a scrape reads the counters that exist anyway.

* ``/health``: 200 while the process is up and its event loop answers within ``loop_timeout_s`` (a heartbeat
  task on the loop shows how late it runs); 503 with a JSON reason otherwise.
* ``/ready``: 200 when a ``SELECT 1`` on the collector's database succeeds within ``db_timeout_s`` and every
  pair's trade stream is ``live`` or ``catching_up``; 503 with the reasons (JSON) otherwise.
* ``/metrics``: Prometheus text format (prometheus-client), one snapshot per scrape.
* ``/status``: the snapshot as JSON, read by ``okx-collector status``.

Hostile or broken clients: a connection idle for ``idle_timeout_s`` (half a request: slowloris) is closed; at most
``max_connections`` are served at once, a connection beyond them is closed at once (one warning a minute says
so); a client gone before its answer is a DEBUG line; any other failure of a request is one ERROR record through
logging (its format, its secret mask), never socketserver's raw traceback on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from collectors.config import OpsConfig
from collectors.errors import CollectorError, ConfigError
from collectors.ops.metrics import registry_for
from collectors.ops.readiness import not_ready_reasons
from collectors.ops.snapshot import Probe, Snapshot, snapshot_json

__all__ = ["OpsServer", "database_error", "serve_ops"]

log = logging.getLogger(__name__)

_BEAT_S: Final = 0.25
_GRACE_S: Final = 0.1  # the least a request waits on a reading already late
_REFUSAL_WARNING_EVERY_S: Final = 60.0
# a client that went away before its answer: nothing to tell an operator
_CLIENT_GONE: Final = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class LoopUnresponsive(CollectorError):
    """The collector's event loop did not run a reading within the timeout (answered as a 503 here)."""


def database_error(db: Engine) -> str | None:
    """None when ``SELECT 1`` succeeds on ``db``, else the error's text (one line)."""
    try:
        with db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)  # the driver's own message, without SQLAlchemy's SQL and links
        return " ".join(str(exc if orig is None else orig).split())[:300]
    return None


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` at once (the others closed at once); request errors
    go to logging."""

    daemon_threads = True
    request_queue_size = (
        128  # the listen backlog (socketserver's 5 makes a burst of connects wait for SYN retries)
    )

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        monotonic_s: Callable[[], float],
    ) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self.max_connections, self.monotonic_s = max_connections, monotonic_s
        self.refused = 0
        self._warned_s: float | None = None
        if ":" in address[0]:  # an IPv6 address (::1, ::): socketserver binds IPv4 only by default
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            now = self.monotonic_s()
            if self._warned_s is None or now - self._warned_s >= _REFUSAL_WARNING_EVERY_S:
                self._warned_s = now
                log.warning(
                    "ops endpoint: %d connections open, the limit; closing new ones (%d so far; a scraper "
                    "that never finishes its request, or too many scrapers)",
                    self.max_connections,
                    self.refused,
                )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        peer = client_address[0] if isinstance(client_address, tuple) else client_address
        if isinstance(error, _CLIENT_GONE):
            log.debug("ops endpoint: client %s went away: %s", peer, error)
            return
        log.error("ops endpoint: a request from %s failed", peer, exc_info=True)


class OpsServer:
    """Serves one collector's endpoints on ``host:port`` from a thread; :meth:`start` on the collector's loop."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        probe: Probe,
        db: Engine,
        loop_timeout_s: float = 5.0,
        db_timeout_s: float = 3.0,
        idle_timeout_s: float = 10.0,
        max_connections: int = 32,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe, self.db = probe, db
        self.loop_timeout_s, self.db_timeout_s, self.monotonic_s = loop_timeout_s, db_timeout_s, monotonic_s
        self.idle_timeout_s = idle_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat_s = monotonic_s()
        self._reading: Future[Snapshot] | None = None  # the reading waiting for the loop, if any
        self._reading_since = 0.0
        self._reading_lock = threading.Lock()
        self._db_check: Future[str | None] | None = None
        self._db_check_lock = threading.Lock()
        self._registry = registry_for(self._snapshot)
        try:
            self._http = _BoundedHTTPServer(
                (host, port),
                self._handler_class(),
                max_connections=max_connections,
                monotonic_s=monotonic_s,
            )
        except OSError as exc:
            raise ConfigError(
                f"ops.metrics_port: cannot serve on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self.host, self.port = host, int(self._http.server_address[1])
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(0.2,), name="ops-http", daemon=True
        )

    # -- lifecycle (on the collector's loop) ------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        log.info("serving /metrics /health /ready /status on http://%s:%d", self.host, self.port)
        if not _loopback(self.host):
            log.warning(
                "ops.metrics_host %s: the endpoint (no authentication) is reachable from other hosts; "
                "keep it behind a firewall, or bind 127.0.0.1",
                self.host,
            )

    async def heartbeat(self) -> None:
        """Runs on the collector's loop: how late it runs is what ``/health`` reports."""
        while True:
            self._beat_s = self.monotonic_s()
            await asyncio.sleep(_BEAT_S)

    async def stop(self) -> None:
        await asyncio.to_thread(self._http.shutdown)
        self._http.server_close()

    # -- readings (in the HTTP thread) ------------------------------------------------------------------
    def _on_loop(self) -> Snapshot:
        """A snapshot taken on the collector's loop, one reading in flight at a time: requests arriving while
        one waits share it; once it has waited ``loop_timeout_s`` they answer 503 within ``_GRACE_S`` (a probe's
        own timeout may be 1 s) without queueing more on the stuck loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise LoopUnresponsive("the collector's event loop is not running")

        async def take() -> Snapshot:
            return self.probe.snapshot()

        now = self.monotonic_s()
        with self._reading_lock:
            pending = self._reading
            if pending is not None and not pending.done():
                future, waited = pending, now - self._reading_since
            else:
                future, waited = asyncio.run_coroutine_threadsafe(take(), loop), 0.0
                self._reading, self._reading_since = future, now
        try:
            # at least _GRACE_S: a loop coming back just now still gets to answer
            return future.result(timeout=max(_GRACE_S, self.loop_timeout_s - waited))
        except FutureCancelled:  # the collector is stopping: asyncio.run cancelled what was left on its loop
            raise LoopUnresponsive("the collector's event loop stopped") from None
        except FutureTimeout:  # the reading stays queued: it runs (cheaply) when the loop comes back
            late = self.monotonic_s() - self._beat_s
            raise LoopUnresponsive(f"event loop unresponsive (last heartbeat {late:.1f} s ago)") from None

    def _snapshot(self) -> Snapshot:
        return self._on_loop()

    def _database_error(self) -> str | None:
        """The ``SELECT 1`` check, one at a time: a probe arriving while a check hangs (a database host that
        accepts TCP and never answers) waits on that check rather than starting another thread and another pool
        connection."""
        with self._db_check_lock:
            if self._db_check is None or self._db_check.done():
                result: Future[str | None] = Future()

                def check() -> None:
                    try:
                        result.set_result(database_error(self.db))
                    except BaseException as exc:  # handed to the waiting request, which logs it
                        result.set_exception(exc)

                self._db_check = result
                threading.Thread(target=check, name="ops-db-check", daemon=True).start()
            in_flight = self._db_check
        try:
            return in_flight.result(timeout=self.db_timeout_s)
        except FutureTimeout:
            return f"no answer to SELECT 1 within {self.db_timeout_s:g} s"

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` for a GET of ``path``."""
        route = path.split("?", 1)[0]
        try:
            if route == "/metrics":
                return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
            if route == "/health":
                snap = self._on_loop()
                lag = max(0.0, self.monotonic_s() - self._beat_s - _BEAT_S)
                return _json(
                    200, {"status": "ok", "collector_id": snap.collector_id, "loop_lag_s": round(lag, 3)}
                )
            if route == "/ready":
                snap = self._on_loop()
                reasons = not_ready_reasons(snap, self._database_error())
                return _json(503 if reasons else 200, {"ready": not reasons, "reasons": reasons})
            if route == "/status":
                return _json(200, snapshot_json(self._on_loop()))
        except LoopUnresponsive as exc:
            if route == "/ready":
                return _json(503, {"ready": False, "reasons": [str(exc)]})
            return _json(503, {"status": "unhealthy", "reason": str(exc)})
        return _json(404, {"error": f"unknown path {route}; try /metrics /health /ready /status"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = server.idle_timeout_s  # per read: a connection silent this long is closed

            def do_GET(self) -> None:
                status, content_type, body = server.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """A scrape is not an event worth a log line (the default writes one per request)."""

        return Handler


def _loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


def _json(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body, default=str).encode()


@contextlib.asynccontextmanager
async def serve_ops(ops: OpsConfig, probe: Probe, db: Engine) -> AsyncIterator[OpsServer | None]:
    """Serve the endpoints while the block runs (``ops.metrics_port`` 0: nothing, yields None). Raises
    :class:`ConfigError` when the port cannot be bound (another collector on it?)."""
    if ops.metrics_port == 0:
        yield None
        return
    server = OpsServer(host=ops.metrics_host, port=ops.metrics_port, probe=probe, db=db)
    server.start()
    beat = asyncio.create_task(server.heartbeat(), name="ops-heartbeat")
    try:
        yield server
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await server.stop()
