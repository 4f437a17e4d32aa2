"""The aiohttp application: REST under /api/v5, WebSocket at /ws/v5/{public,business}, control under /sim.

Usage from tests::

    async with SimulatorServer(config=SimulatorConfig(seed=7)) as sim:
        httpx.get(sim.rest_url + "/api/v5/public/time")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
from pathlib import Path
from types import TracebackType
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from okx_simulator.config import SimulatorConfig
from okx_simulator.control import add_control_routes
from okx_simulator.faults import FaultRegistry
from okx_simulator.hub import Hub
from okx_simulator.market import Market
from okx_simulator.replay import load_capture
from okx_simulator.rest_api import RATE_LIMITS, ROUTES, RestContext, call
from okx_simulator.state import Clock, SimState, system_clock
from okx_simulator.wire import NOT_FOUND_BODY, RATE_LIMIT_BODY, envelope
from okx_simulator.ws_conn import Connection

__all__ = ["SimulatorServer"]

log = logging.getLogger(__name__)
_MINUTE_MS: Final = 60_000
_REST_ERRORS: Final = {
    500: ("50026", "System error. Try again later."),
    503: ("50001", "Service temporarily unavailable. Please try again later."),
}


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json(body: object, *, status: int = 200) -> web.Response:
    """A JSON response serialised compactly, as OKX sends it."""
    return web.json_response(body, status=status, dumps=_compact)


def _report_hub_failure(task: asyncio.Task[None]) -> None:
    """Log a crashed hub at once (``stop`` re-raises it too): pushes have stopped."""
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator hub stopped: %r", task.exception())


class SimulatorServer:
    """One simulator on one port; ``async with`` starts it and stops it cleanly."""

    def __init__(self, config: SimulatorConfig | None = None, *, clock: Clock = system_clock) -> None:
        """``config`` may be passed positionally (``SimulatorServer(config)``); everything else is keyword-only."""
        self.config = config or SimulatorConfig()
        now = clock()
        # The tape itself is anchored to a fixed epoch (tape.EPOCH_MS); the start only sets how far back it is
        # visible (and, with a distinct history rate, where the firehose rate begins).
        history_from = now - int(self.config.history_hours * 3_600_000)
        history_from -= history_from % _MINUTE_MS
        self.state = SimState(
            config=self.config,
            market=Market(config=self.config, history_from_ms=history_from, live_from_ms=now),
            clock=clock,
            faults=FaultRegistry(seed=self.config.seed),
        )
        capture = load_capture(Path(self.config.replay_path)) if self.config.replay_path else None
        self.hub = Hub(state=self.state, capture=capture)
        self._runner: web.AppRunner | None = None
        self._hub_task: asyncio.Task[None] | None = None
        self.port = 0

    # -- URLs -----------------------------------------------------------------------------------------
    @property
    def rest_url(self) -> str:
        return f"http://{self._host()}:{self.port}"

    @property
    def ws_public_url(self) -> str:
        return f"ws://{self._host()}:{self.port}/ws/v5/public"

    @property
    def ws_business_url(self) -> str:
        return f"ws://{self._host()}:{self.port}/ws/v5/business"

    @property
    def control_url(self) -> str:
        return f"{self.rest_url}/sim"

    def urls(self) -> dict[str, str]:
        """The JSON line the CLI prints first."""
        return {
            "rest": self.rest_url,
            "ws_public": self.ws_public_url,
            "ws_business": self.ws_business_url,
            "control": self.control_url,
        }

    def _host(self) -> str:
        """The host clients should dial: a wildcard bind (0.0.0.0, ::) is reached through loopback."""
        host = self.config.host
        if host in ("", "0.0.0.0"):
            return "127.0.0.1"
        if host == "::":
            return "[::1]"
        return f"[{host}]" if ":" in host else host

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        app = self._build_app()
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._hub_task = asyncio.create_task(self.hub.run(), name="okx-sim-hub")
        self._hub_task.add_done_callback(_report_hub_failure)

    async def stop(self) -> None:
        if self._hub_task is not None:
            self._hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hub_task
            self._hub_task = None
        for conn in list(self.hub.connections):
            conn.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._refuse_middleware])
        app.router.add_get("/ws/v5/public", self._ws_public)
        app.router.add_get("/ws/v5/business", self._ws_business)
        app.router.add_route("*", "/api/v5/{tail:.*}", self._rest)
        add_control_routes(app, self.state, capture=self.hub.capture)
        return app

    @web.middleware
    async def _refuse_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/sim"):
            fault = self.state.faults.active("refuse", self.state.clock(), path=request.path)
            if fault is not None and request.transport is not None:
                fault.hits += 1
                request.transport.abort()
                raise web.HTTPServiceUnavailable()
        response: web.StreamResponse = await handler(request)
        return response

    # -- WebSocket ------------------------------------------------------------------------------------
    async def _ws_public(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "public")

    async def _ws_business(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "business")

    async def _ws(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, compress=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        stats = self.state.stats
        stats.connections += 1
        stats.connections_total += 1
        try:
            await Connection(state=self.state, hub=self.hub, ws=ws, request=request, endpoint=endpoint).run()
        finally:
            stats.connections -= 1
        return ws

    # -- REST -----------------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.Response:
        state = self.state
        state.stats.requests += 1
        path = request.path
        handler = ROUTES.get(path)
        if path == "/api/v5/asset/currencies":
            return self._private(request)
        if handler is None or request.method != "GET":
            return _json(NOT_FOUND_BODY, status=404)
        early = await self._rest_faults(request, path)
        if early is not None:
            return early
        limit = RATE_LIMITS.get(path)
        now = state.clock()
        if state.config.rate_limits and limit is not None:
            if not state.limiter.allow(request.remote or "", path, limit, now):
                state.stats.http_429 += 1
                return _json(RATE_LIMIT_BODY, status=429)
        context = RestContext(market=state.market, config=state.config, now_ms=now, capture=self.hub.capture)
        reply = call(handler, context, request.query)
        return _json(reply.body, status=reply.status)

    async def _rest_faults(self, request: web.Request, path: str) -> web.Response | None:
        faults, now = self.state.faults, self.state.clock()
        narrow = {"path": path, "inst_id": request.query.get("instId")}
        slow = faults.active("rest_slow", now, **narrow)
        if slow is not None:
            slow.hits += 1
            await asyncio.sleep(slow.number("delay_ms", 1000) / 1000)
        too_many = faults.active("rest_429", now, **narrow)
        if too_many is not None:
            too_many.hits += 1
            self.state.stats.http_429 += 1
            return _json(RATE_LIMIT_BODY, status=429)
        error = faults.active("rest_error", now, **narrow)
        if error is not None:
            error.hits += 1
            status = int(error.number("status", 503))
            code, msg = _REST_ERRORS.get(status, ("50026", "System error. Try again later."))
            return _json(envelope([], code=code, msg=msg), status=status)
        return None

    def _private(self, request: web.Request) -> web.Response:
        """A private endpoint: 401 without credentials, as OKX answers; an empty list when signed correctly."""
        creds = self.config.credentials
        key = request.headers.get("OK-ACCESS-KEY", "")
        if not key:
            body = {"msg": "Request header OK-ACCESS-KEY can not be empty.", "code": "50103"}
            return _json(body, status=401)
        if key != creds.api_key:
            return _json({"msg": "Invalid OK-ACCESS-KEY", "code": "50111"}, status=401)
        timestamp = request.headers.get("OK-ACCESS-TIMESTAMP", "")
        prehash = f"{timestamp}{request.method}{request.path_qs}"
        digest = hmac.new(creds.secret_key.encode(), prehash.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(
            request.headers.get("OK-ACCESS-SIGN", ""), base64.b64encode(digest).decode()
        ):
            return _json({"msg": "Invalid Sign", "code": "50113"}, status=401)
        return _json(envelope([]))
