"""The `stall` fault holds frames and delivers them afterwards, in order; it never makes the server blame the
client (4004) for its own silence. The simulator's clock is driven by the test, so the stall ends exactly
when the test says."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from sim_helpers import FIXED_NOW_MS, recv_json, subscribe, tape

from okx_simulator import SimulatorConfig, SimulatorServer, ws_conn

WATCHDOG_S = 0.6  # a little more than the watchdog's check interval (0.5 s with the default 30 s idle limit)
_TRADES_ALL_KEYS = ("instId", "tradeId", "px", "sz", "side", "source", "ts")


class _Now:
    """The simulator's clock in these tests: epoch ms that only move when the test moves them."""

    def __init__(self) -> None:
        self.ms = FIXED_NOW_MS

    def __call__(self) -> int:
        return self.ms


@contextlib.asynccontextmanager
async def _server(now: _Now, **config: Any) -> AsyncIterator[SimulatorServer]:
    settings: dict[str, Any] = {
        "seed": 5,
        "trade_rate": 20.0,
        "tick_ms": 20,
        "history_hours": 1.0,
        "rate_limits": False,
    }
    async with SimulatorServer(config=SimulatorConfig(**{**settings, **config}), clock=now) as server:
        yield server


async def _stall(http: httpx.AsyncClient, sim: SimulatorServer, **body: Any) -> None:
    response = await http.post(sim.control_url + "/faults", json={"kind": "stall", **body})
    assert response.status_code == 200, response.text


async def _silent(ws: Any, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        await recv_json(ws, seconds)


async def test_idle_connections_survive_a_stall_longer_than_the_idle_limit(http: httpx.AsyncClient) -> None:
    """20 subscribed, idle connections through a 35 s stall (idle limit 30 s): none is closed with 4004 when
    the stall ends; each is closed 30 s of silence after it, as without the stall."""
    now = _Now()
    async with _server(now, trade_rate=0.0) as sim:  # no trade at all: only the acks are ever sent
        arg = {"channel": "trades", "instId": "BTC-USDT"}
        sockets = [await websockets.connect(sim.ws_public_url) for _ in range(20)]
        try:
            for ws in sockets:
                await subscribe(ws, arg)
                assert (await recv_json(ws))["event"] == "subscribe"
            await _stall(http, sim, seconds=35)
            now.ms += 20_000
            await asyncio.sleep(WATCHDOG_S)  # the watchdog sees the stall
            now.ms = FIXED_NOW_MS + 35_000  # the stall has ended (it covers [start, start + 35 s))
            await asyncio.sleep(WATCHDOG_S)
            for ws in sockets:
                await _silent(ws, 0.05)  # still open, nothing sent
            now.ms += 30_001  # 30 s of silence since the stall ended
            for ws in sockets:
                with pytest.raises(websockets.ConnectionClosed):
                    await recv_json(ws, 3)
                assert (ws.close_code, ws.close_reason) == (4004, "No data received in 30s.")
        finally:
            for ws in sockets:
                await ws.close()


def _trades_all(row: dict[str, str]) -> dict[str, Any]:
    """The trades-all push of one /sim/tape row."""
    return {
        "arg": {"channel": "trades-all", "instId": row["instId"]},
        "data": [{k: row[k] for k in _TRADES_ALL_KEYS}],
    }


async def test_stall_delays_acks_initial_trades_and_pong_in_order(http: httpx.AsyncClient) -> None:
    """Everything sent during a stall (acks, the last trade pushed on subscribe, a pong, then the live
    trades) arrives after it, complete and in the order it was sent."""
    now = _Now()
    pairs = ("BTC-USDT", "ETH-USDT")
    async with _server(now) as sim:
        async with websockets.connect(sim.ws_business_url) as ws:
            await _stall(http, sim, seconds=1)
            await subscribe(ws, *({"channel": "trades-all", "instId": p} for p in pairs), request_id="s1")
            await ws.send("ping")
            await _silent(ws, 0.3)  # nothing during the stall
            now.ms += 1_000  # the stall ends; the clock has moved one second on
            got = [await recv_json(ws) for _ in range(5)]
            conn_id = got[0]["connId"]
            start = FIXED_NOW_MS - 3_600_000
            history = {
                p: await tape(http, sim.control_url, p, start=start, end=FIXED_NOW_MS + 1) for p in pairs
            }
            live = {p: await tape(http, sim.control_url, p, start=FIXED_NOW_MS + 1) for p in pairs}
            assert all(live.values()), "the seed must trade in the second after the stall"
            assert got == [
                *(
                    {
                        "id": "s1",
                        "event": "subscribe",
                        "arg": {"channel": "trades-all", "instId": p},
                        "connId": conn_id,
                    }
                    for p in pairs
                ),
                *(_trades_all(history[p][-1]) for p in pairs),
                "pong",
            ]
            rest = [await recv_json(ws) for _ in range(sum(len(v) for v in live.values()))]
        for pair in pairs:
            assert [f for f in rest if f["arg"]["instId"] == pair] == [_trades_all(r) for r in live[pair]]


async def test_narrowed_stall_delays_only_its_channel(http: httpx.AsyncClient) -> None:
    """A stall narrowed to one instId holds that instrument's pushes and releases them in order; the other
    instrument and the events keep flowing."""
    now = _Now()
    async with _server(now) as sim:
        async with websockets.connect(sim.ws_business_url) as ws:
            args = [{"channel": "trades-all", "instId": p} for p in ("BTC-USDT", "ETH-USDT")]
            await subscribe(ws, *args)
            initial = [await recv_json(ws) for _ in range(4)]  # two acks, two last trades
            assert [f.get("event") for f in initial] == ["subscribe", "subscribe", None, None]
            await _stall(http, sim, seconds=2, instId="BTC-USDT")
            now.ms += 1_000
            eth = await tape(http, sim.control_url, "ETH-USDT", start=FIXED_NOW_MS + 1)
            during = [await recv_json(ws) for _ in range(len(eth))]
            assert during == [_trades_all(r) for r in eth]  # ETH flows during the BTC stall
            await ws.send("ping")
            assert await recv_json(ws) == "pong"
            now.ms += 1_000  # the stall has ended
            btc = await tape(http, sim.control_url, "BTC-USDT", start=FIXED_NOW_MS + 1)
            eth = await tape(http, sim.control_url, "ETH-USDT", start=FIXED_NOW_MS + 1_001)
            after = [await recv_json(ws) for _ in range(len(btc) + len(eth))]
        assert [f for f in after if f["arg"]["instId"] == "BTC-USDT"] == [_trades_all(r) for r in btc]
        assert [f for f in after if f["arg"]["instId"] == "ETH-USDT"] == [_trades_all(r) for r in eth]


async def test_narrowed_stall_longer_than_the_idle_limit_is_not_blamed_on_the_client(
    http: httpx.AsyncClient,
) -> None:
    """A stall narrowed to the only instrument a connection reads holds its pushes for 35 s (idle limit
    30 s): the connection is not closed with 4004 while the server holds its data; the held trades arrive,
    in order, when the stall ends, and the idle clock restarts then."""
    now = _Now()
    async with _server(now) as sim:
        async with websockets.connect(sim.ws_business_url) as ws:
            await subscribe(ws, {"channel": "trades-all", "instId": "BTC-USDT"})
            assert [(await recv_json(ws)).get("event") for _ in range(2)] == ["subscribe", None]
            await _stall(http, sim, seconds=35, instId="BTC-USDT")
            now.ms += 20_000
            await asyncio.sleep(WATCHDOG_S)
            now.ms += 14_000  # 34 s of silence: the server holds 34 s of BTC trades
            await asyncio.sleep(WATCHDOG_S)
            now.ms += 1_000  # the stall has ended
            held = await tape(http, sim.control_url, "BTC-USDT", start=FIXED_NOW_MS + 1)
            assert held, "the seed must trade during the stall"
            got = [await recv_json(ws) for _ in range(len(held))]
            assert got == [_trades_all(r) for r in held]
            await asyncio.sleep(WATCHDOG_S)
            await _silent(ws, 0.05)  # still open: the idle clock restarted when the stall ended


async def _receive_trades_all(ws: Any, count: int) -> list[Any]:
    return [await recv_json(ws) for _ in range(count)]


async def test_a_whole_stall_never_ends_in_4005(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frames a whole-connection stall piles up are the server's backlog, not the client's: more of them
    than the 4005 limit are all delivered, in order, when it ends, and the connection stays open."""
    monkeypatch.setattr(ws_conn, "_QUEUE_LIMIT", 50)
    now = _Now()
    async with _server(now) as sim:
        async with websockets.connect(sim.ws_business_url) as ws:
            await subscribe(ws, {"channel": "trades-all", "instId": "BTC-USDT"})
            assert [(await recv_json(ws)).get("event") for _ in range(2)] == ["subscribe", None]
            await _stall(http, sim, seconds=10)
            for _ in range(10):
                now.ms += 1_000
                await asyncio.sleep(0.05)  # a few hub ticks: the trades of that second are queued
            held = await tape(http, sim.control_url, "BTC-USDT", start=FIXED_NOW_MS + 1)
            assert len(held) > 100, "the stall must hold more frames than the limit"
            assert await _receive_trades_all(ws, len(held)) == [_trades_all(r) for r in held]
            await ws.send("ping")
            assert await recv_json(ws) == "pong"


async def test_a_narrowed_stall_never_ends_in_4005(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same for a stall narrowed to one instId: its held pushes, released at once when it ends, are more than
    the 4005 limit and all arrive."""
    monkeypatch.setattr(ws_conn, "_QUEUE_LIMIT", 50)
    now = _Now()
    async with _server(now) as sim:
        async with websockets.connect(sim.ws_business_url) as ws:
            await subscribe(ws, {"channel": "trades-all", "instId": "BTC-USDT"})
            assert [(await recv_json(ws)).get("event") for _ in range(2)] == ["subscribe", None]
            await _stall(http, sim, seconds=10, instId="BTC-USDT")
            for _ in range(10):
                now.ms += 1_000
                await asyncio.sleep(0.05)
            held = await tape(http, sim.control_url, "BTC-USDT", start=FIXED_NOW_MS + 1)
            assert len(held) > 100, "the stall must hold more frames than the limit"
            assert await _receive_trades_all(ws, len(held)) == [_trades_all(r) for r in held]
            await ws.send("ping")
            assert await recv_json(ws) == "pong"


async def test_a_client_that_stops_reading_is_closed_with_4005(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a stall, a client that does not read is cut with 4005 once its queue reaches the limit: it
    then reads what the socket buffers held, fewer frames than the tape, and the 4005 close."""
    monkeypatch.setattr(ws_conn, "_QUEUE_LIMIT", 50)
    now = _Now()
    async with _server(now, trade_rate=2_000.0) as sim:
        async with websockets.connect(sim.ws_business_url, max_queue=1) as ws:
            await subscribe(ws, {"channel": "trades-all", "instId": "BTC-USDT"})
            for _ in range(40):  # 80 000 fills offered, far more than the socket buffers hold
                now.ms += 1_000
                await asyncio.sleep(0.05)
            received = 0
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await recv_json(ws, 5)
                    received += 1
            assert (ws.close_code, ws.close_reason) == (4005, "Buffer is full, cannot write data")
            offered = await tape(http, sim.control_url, "BTC-USDT", start=FIXED_NOW_MS + 1)
            assert received < len(offered)


async def test_unsubscribe_during_a_narrowed_stall_is_acknowledged_after_its_held_pushes(
    http: httpx.AsyncClient,
) -> None:
    """Unsubscribing the instrument a narrowed stall holds: the ack waits behind that instrument's held
    pushes, so no push of the channel ever follows its unsubscribe ack."""
    now = _Now()
    async with _server(now) as sim:
        async with websockets.connect(sim.ws_business_url) as ws:
            arg = {"channel": "trades-all", "instId": "BTC-USDT"}
            await subscribe(ws, arg)
            assert [(await recv_json(ws)).get("event") for _ in range(2)] == ["subscribe", None]
            await _stall(http, sim, seconds=2, instId="BTC-USDT")
            now.ms += 1_000
            await asyncio.sleep(0.1)  # the hub holds that second's BTC trades
            await ws.send('{"op":"unsubscribe","args":[{"channel":"trades-all","instId":"BTC-USDT"}]}')
            await ws.send("ping")
            assert await recv_json(ws) == "pong"  # events of other channels flow
            now.ms += 1_000  # the stall has ended
            held = await tape(
                http, sim.control_url, "BTC-USDT", start=FIXED_NOW_MS + 1, end=FIXED_NOW_MS + 1_001
            )
            assert held, "the seed must trade during the stall"
            got = [await recv_json(ws) for _ in range(len(held) + 1)]
            assert got[:-1] == [_trades_all(r) for r in held]
            assert got[-1]["event"] == "unsubscribe"
            await _silent(ws, 0.3)
