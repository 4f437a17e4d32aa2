"""The /sim control and ground-truth endpoints (not OKX; loopback only unless opened: ``control_allow``).

GET /sim/tape, GET /sim/candles (JSON lines), GET /sim/stats, POST/GET/DELETE /sim/faults, GET /sim/faults/log.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Final

from aiohttp import web

from okx_simulator.candles import HISTORY_BARS, bar_for, candle_rows, candle_wire
from okx_simulator.faults import FaultError
from okx_simulator.market import Instrument
from okx_simulator.replay import Capture
from okx_simulator.state import SimState
from okx_simulator.wire import rest_trade

__all__ = ["add_control_routes"]

_BATCH: Final = 2_000


def _allowed(state: SimState, request: web.Request) -> None:
    """Let a loopback peer through, or one inside ``control_allow``, or anyone when the control plane is open;
    refuse the others with 403 and a JSON body saying how to open it."""
    config = state.config
    if not config.control_loopback_only:
        return
    remote = request.remote or ""
    address = _address(remote)
    if address is not None and (
        address.is_loopback
        or any(address in ipaddress.ip_network(n, strict=False) for n in config.control_allow)
    ):
        return
    body = {
        "error": "the /sim control endpoints answer loopback clients only",
        "remote": remote,
        "fix": "start the simulator with --control-allow CIDR (repeatable) or --open-control",
    }
    raise web.HTTPForbidden(text=json.dumps(body), content_type="application/json")


def _address(remote: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address (an IPv4-mapped IPv6 peer of a dual-stack bind as IPv4); None for a unix socket or an
    unparsable peer."""
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer (epoch ms)") from None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _instrument(state: SimState, request: web.Request) -> Instrument:
    inst = state.market.get(request.query.get("instId", ""))
    if inst is None:
        raise web.HTTPBadRequest(text=f"unknown instId; known: {', '.join(state.market.instruments)}")
    return inst


async def _lines(request: web.Request, rows: Any) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    batch: list[str] = []
    for row in rows:
        batch.append(json.dumps(row, separators=(",", ":")))
        if len(batch) >= _BATCH:
            await response.write(("\n".join(batch) + "\n").encode())
            batch.clear()
    if batch:
        await response.write(("\n".join(batch) + "\n").encode())
    await response.write_eof()
    return response


class _Control:
    """Handlers of the /sim routes, bound to one simulator's state."""

    def __init__(self, state: SimState, capture: Capture | None) -> None:
        self._state = state
        self._capture = capture

    def st(self, request: web.Request) -> SimState:
        _allowed(self._state, request)
        return self._state

    async def tape(self, request: web.Request) -> web.StreamResponse:
        state = self.st(request)
        inst_id = request.query.get("instId", "")
        if self._capture is not None and inst_id in self._capture.trade_inst_ids():
            # Replay mode: the recording's trades are the truth (whole; `to` is not capped at now).
            low, high = _int_param(request, "from"), _int_param(request, "to")
            recorded = [
                r
                for r in self._capture.trades(inst_id)
                if (low is None or low <= int(r["ts"])) and (high is None or int(r["ts"]) < high)
            ]
            return await _lines(request, sorted(recorded, key=lambda r: (int(r["ts"]), int(r["tradeId"]))))
        inst = _instrument(state, request)
        now = state.clock()
        start = _or(_int_param(request, "from"), inst.tape.history_from_ms)
        end = min(_or(_int_param(request, "to"), now + 1), now + 1)
        rows = (rest_trade(inst.spec, f) for f in _tape_fills(inst, start, end))
        return await _lines(request, rows)

    async def candles(self, request: web.Request) -> web.StreamResponse:
        state = self.st(request)
        inst = _instrument(state, request)
        bar = bar_for(
            request.query.get("bar", "1m"),
            allowed=HISTORY_BARS | {"5D", "5Dutc"},
            hk_aligned=state.config.hk_aligned,
        )
        if bar is None:
            raise web.HTTPBadRequest(text="unknown bar")
        now = state.clock()
        # Without "from", start at the bar holding the start of the visible tape (it may open before it).
        start = _or(_int_param(request, "from"), bar.open_of(inst.tape.history_from_ms))
        end = _or(_int_param(request, "to"), now + 1)
        rows = candle_rows(inst.tape, bar, first_open=bar.open_of(start), last_open=end - 1, now_ms=now)
        return await _lines(request, (candle_wire(inst.tape, r) for r in rows if start <= r.open_ms < end))

    async def stats(self, request: web.Request) -> web.Response:
        state = self.st(request)
        return web.json_response(state.stats.to_json(state.faults.injected))

    async def add_fault(self, request: web.Request) -> web.Response:
        state = self.st(request)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body must be JSON", "field": None}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object", "field": None}, status=400)
        try:
            fault = state.faults.add(body, state.clock())
        except FaultError as exc:
            return web.json_response({"error": str(exc), "field": exc.field}, status=400)
        return web.json_response({"id": fault.id})

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_json() for f in self.st(request).faults.faults])

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.st(request).faults.clear()
        return web.json_response({"cleared": True})

    async def fault_log(self, request: web.Request) -> web.Response:
        return web.json_response(self.st(request).faults.log)


def add_control_routes(app: web.Application, state: SimState, *, capture: Capture | None = None) -> None:
    """Register the /sim routes on ``app``; ``capture`` (replay mode) supplies the true trades it recorded."""
    control = _Control(state, capture)
    app.router.add_get("/sim/tape", control.tape)
    app.router.add_get("/sim/candles", control.candles)
    app.router.add_get("/sim/stats", control.stats)
    app.router.add_post("/sim/faults", control.add_fault)
    app.router.add_get("/sim/faults", control.list_faults)
    app.router.add_delete("/sim/faults", control.clear_faults)
    app.router.add_get("/sim/faults/log", control.fault_log)


def _tape_fills(inst: Instrument, start: int, end: int) -> Any:
    tape = inst.tape
    lo = max(start, tape.history_from_ms)
    if end <= lo:
        return
    for index in range(tape.chunk_of(lo), tape.chunk_of(end - 1) + 1):
        for fill in tape.fills(index):
            if lo <= fill.ts_ms < end:
                yield fill
