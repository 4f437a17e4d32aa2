"""Helpers shared by the simulator tests (real sockets only; fixtures from tests/fixtures/okx)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okx"
FIXED_NOW_MS = 1_786_538_790_123  # 2026-08-12 12:46:30.123 UTC, near the real ccxt recording


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def ccxt_case(description: str) -> dict[str, Any]:
    """One recorded ccxt test case (real 2026 frames) by its description."""
    for line in (FIXTURES / "okx_ws_recorded_messages.jsonl").read_text().splitlines():
        case = json.loads(line)
        if case["description"] == description:
            return case
    raise KeyError(description)


def ccxt_frame(description: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return next(m for m in ccxt_case(description)["messages"] if predicate(m))


def is_data(message: dict[str, Any]) -> bool:
    return "data" in message and "arg" in message


async def recv_json(ws: ClientConnection, wait_s: float = 3.0) -> Any:
    raw = await asyncio.wait_for(ws.recv(), wait_s)
    return raw if raw == "pong" else json.loads(raw)


async def recv_until(
    ws: ClientConnection, predicate: Callable[[Any], bool], wait_s: float = 5.0
) -> list[Any]:
    """Receive frames until one matches; returns all frames received, the match last."""
    seen: list[Any] = []
    async with asyncio.timeout(wait_s):
        while True:
            frame = await recv_json(ws, wait_s)
            seen.append(frame)
            if predicate(frame):
                return seen


async def subscribe(ws: ClientConnection, *args: dict[str, str], request_id: str | None = None) -> None:
    request: dict[str, Any] = {"op": "subscribe", "args": list(args)}
    if request_id is not None:
        request["id"] = request_id
    await ws.send(json.dumps(request))


async def tape(http: httpx.AsyncClient, control: str, inst_id: str, **bounds: int) -> list[dict[str, str]]:
    params: dict[str, Any] = {"instId": inst_id}
    params.update({("from" if k == "start" else "to"): v for k, v in bounds.items()})
    response = await http.get(f"{control}/tape", params=params)
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]


def on_grid(value: str, step: str) -> bool:
    return Decimal(value) % Decimal(step) == 0


def key_types(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Key order and JSON type of each value: what must match the real frames."""
    return [(k, type(v).__name__) for k, v in row.items()]
