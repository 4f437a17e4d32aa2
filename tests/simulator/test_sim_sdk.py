"""The official python-okx SDK (a third-party client) against the simulator; results agree with /sim/tape."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import websockets
from okx import MarketData, PublicData
from okx.websocket.WsPublicAsync import WsPublicAsync
from sim_helpers import tape

from okx_simulator import SimulatorServer


async def test_sdk_rest_instruments_history_trades_and_candles(
    sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    public = PublicData.PublicAPI(flag="0", domain=sim.rest_url)
    market = MarketData.MarketAPI(flag="0", domain=sim.rest_url)
    instruments = await asyncio.to_thread(public.get_instruments, instType="SPOT")
    assert instruments["code"] == "0" and "PEPE-USDT" in [r["instId"] for r in instruments["data"]]
    swaps = await asyncio.to_thread(public.get_instruments, instType="SWAP")
    assert swaps == {"code": "0", "data": [], "msg": ""}

    first = await asyncio.to_thread(market.get_history_trades, instId="BTC-USDT", limit="100")
    oldest = first["data"][-1]["tradeId"]
    second = await asyncio.to_thread(market.get_history_trades, instId="BTC-USDT", after=oldest, limit="100")
    rows = list(reversed(first["data"] + second["data"]))
    truth = await tape(
        http, sim.control_url, "BTC-USDT", start=int(rows[0]["ts"]), to=int(rows[-1]["ts"]) + 1
    )
    by_id = {t["tradeId"]: t for t in truth}
    assert [by_id[r["tradeId"]] for r in rows] == rows
    assert [int(r["tradeId"]) for r in rows] == list(
        range(int(rows[0]["tradeId"]), int(rows[-1]["tradeId"]) + 1)
    )

    candles = await asyncio.to_thread(market.get_history_candlesticks, instId="BTC-USDT", bar="1m", limit="5")
    response = await http.get(
        sim.control_url + "/candles",
        params={"instId": "BTC-USDT", "bar": "1m", "from": candles["data"][-1][0]},
    )
    true_candles = [json.loads(line) for line in response.text.splitlines()]
    assert list(reversed(candles["data"]))[:-1] == true_candles[: len(candles["data"]) - 1]
    public.close()
    market.close()


async def test_sdk_websocket_trades_and_books5(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    client = WsPublicAsync(url=sim.ws_public_url)

    async def plain_connect() -> Any:
        # python-okx always passes an SSL context, which websockets refuses for ws://; loopback only.
        client.factory.websocket = await websockets.connect(client.factory.url)
        return client.factory.websocket

    client.factory.connect = plain_connect  # type: ignore[method-assign]
    received: list[dict[str, Any]] = []
    consumer = await client.start()
    try:
        args = [{"channel": "trades", "instId": "BTC-USDT"}, {"channel": "books5", "instId": "BTC-USDT"}]
        await client.subscribe(args, callback=lambda message: received.append(json.loads(message)))
        await asyncio.sleep(1.5)
        # both acks and data of both channels: up to 30 s more on a loaded machine (a fixed 1.5 s could see none)
        for _ in range(300):
            acked = [m for m in received if m.get("event") == "subscribe"]
            pushed = {m.get("arg", {}).get("channel") for m in received if "data" in m}
            if len(acked) >= 2 and {"trades", "books5"} <= pushed:
                break
            await asyncio.sleep(0.1)
    finally:
        await client.stop()
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    acks = [m for m in received if m.get("event") == "subscribe"]
    assert [a["arg"]["channel"] for a in acks] == ["trades", "books5"]
    trades = [m["data"][0] for m in received if m.get("arg", {}).get("channel") == "trades" and "data" in m]
    books = [m["data"][0] for m in received if m.get("arg", {}).get("channel") == "books5" and "data" in m]
    assert trades and books
    truth = {int(t["tradeId"]): t for t in await tape(http, sim.control_url, "BTC-USDT")}
    for trade in trades:
        last, count = int(trade["tradeId"]), int(trade["count"])
        fills = [truth[i] for i in range(last - count + 1, last + 1)]
        assert sum(Decimal(f["sz"]) for f in fills) == Decimal(trade["sz"]) and fills[-1]["px"] == trade["px"]
    # The book is the simulator's truth at the frame's ts: the newest book fill (source "0") up to then sits at
    # the best ask when it was a buy and at the best bid when it was a sell, 1-3 ticks from the other side.
    fills = sorted(truth.values(), key=lambda t: int(t["tradeId"]))
    tick = Decimal("0.1")
    for book in books:
        last = [f for f in fills if f["source"] == "0" and int(f["ts"]) <= int(book["ts"])][-1]
        best_ask, best_bid = book["asks"][0][0], book["bids"][0][0]
        assert last["px"] == (best_ask if last["side"] == "buy" else best_bid), (book, last)
        assert (Decimal(best_ask) - Decimal(best_bid)) / tick in {1, 2, 3}
        assert len(book["asks"]) == len(book["bids"]) == 5 and book["instId"] == "BTC-USDT"
