"""``OkxWebSocket.deliver_to`` against the simulator over real sockets: the same events as ``events()``, each
parsed frame with its exact text, handed over on the reader's task; a permanent error raised; nothing after."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collectors.errors import ApiError
from collectors.exchanges.okx.events import Pong, Subscribed, TradesPush
from collectors.exchanges.okx.parse import parse_frame
from collectors.exchanges.okx.session import Connected, Disconnected
from collectors.exchanges.okx.ws import OkxWebSocket
from tests.exchanges.test_okx_ws import BTC, ETH, assert_equals_tape, fault, session, simulator, trades_all

Delivered = list[tuple[Any, str | bytes | None]]


async def deliver_until(
    ws: OkxWebSocket, got: Delivered, done: Any, wait_s: float = 15.0
) -> asyncio.Task[None]:
    """Start ``deliver_to`` collecting into ``got``; return its task once ``done(got)`` holds."""
    task = asyncio.create_task(ws.deliver_to(lambda event, text: got.append((event, text))))
    async with asyncio.timeout(wait_s):
        while not done(got):
            if task.done():
                task.result()  # raises what ended it
                raise AssertionError(f"deliver_to returned: {got[-3:]}")
            await asyncio.sleep(0.02)
    return task


def trades(got: Delivered, inst_id: str) -> list[Any]:
    return [t for e, _ in got if isinstance(e, TradesPush) and e.inst_id == inst_id for t in e.trades]


async def test_deliver_to_hands_over_every_trade_with_its_exact_frame_text() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC, ETH))
        got: Delivered = []
        task = await deliver_until(ws, got, lambda g: all(len(trades(g, i)) >= 40 for i in (BTC, ETH)))
        await ws.aclose()
        await task  # returns after aclose
        for inst_id in (BTC, ETH):
            await assert_equals_tape(sim, inst_id, trades(got, inst_id))
    assert isinstance(got[0][0], Connected) and got[0][1] is None
    assert [(e.channel, e.inst_id) for e, _ in got if isinstance(e, Subscribed)] == [
        ("trades-all", BTC),
        ("trades-all", ETH),
    ]
    framed = [(e, text) for e, text in got if isinstance(e, TradesPush | Subscribed)]
    assert framed and all(text is not None and parse_frame(text, recv_ms=e.recv_ms) == e for e, text in framed
                          if isinstance(e, TradesPush))  # fmt: skip
    assert all(text is None for e, text in got if isinstance(e, Connected | Disconnected | Pong))
    # aclose's final Disconnected came while deliver_to still ran: delivered, like events() yields it
    assert [(e.reason, e.will_reconnect) for e, _ in got if isinstance(e, Disconnected)] == [
        ("closed", False)
    ]


async def test_deliver_to_raises_the_permanent_error_after_delivering_the_final_disconnect() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        got: Delivered = []
        task = await deliver_until(ws, got, lambda g: len(trades(g, BTC)) >= 2)
        await fault(
            sim, kind="close", code=4008, reason="The number of subscribed channels exceeds the limit."
        )
        with pytest.raises(ApiError) as raised:
            await asyncio.wait_for(task, 15)
    assert raised.value.code == "4008" and not raised.value.retryable
    final = [(e.conn_number, e.will_reconnect) for e, _ in got if isinstance(e, Disconnected)]
    assert final == [(1, False)]


async def test_nothing_is_delivered_after_deliver_to_is_cancelled() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        got: Delivered = []
        task = await deliver_until(ws, got, lambda g: len(trades(g, BTC)) >= 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen = len(got)
        await asyncio.sleep(0.5)  # trades keep coming at 20/s: none may reach the cancelled consumer
        await ws.aclose()
    assert len(got) == seen
