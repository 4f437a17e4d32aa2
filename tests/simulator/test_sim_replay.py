"""Replay mode: the real 2022 recording is served verbatim, with its timing, per subscription."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import websockets
from sim_helpers import FIXTURES, recv_json, subscribe, tape

from okx_simulator import SimulatorConfig, SimulatorServer
from okx_simulator.replay import load_capture

CAPTURE = FIXTURES / "cryptofeed_OKX.ws.1.0"


async def test_replay_serves_recorded_frames_verbatim() -> None:
    config = SimulatorConfig(seed=1, tick_ms=20, history_hours=0.1, replay_path=str(CAPTURE))
    capture = load_capture(CAPTURE)
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_public_url) as ws:
        await subscribe(
            ws, {"channel": "books", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "BTC-USDT"}
        )
        await subscribe(ws, {"channel": "books", "instId": "UNI-USD-SWAP"})  # not a simulated pair: capture's
        received: list[str] = []
        deadline = time.monotonic() + 1.2
        while (left := deadline - time.monotonic()) > 0:
            try:
                received.append(str(await asyncio.wait_for(ws.recv(), left)))
            except TimeoutError:
                break
    data = [text for text in received if '"data"' in text]
    for channel, inst_id in (("books", "BTC-USDT"), ("trades", "BTC-USDT"), ("books", "UNI-USD-SWAP")):
        expected = [f.text for f in capture.for_key(channel, inst_id) if f.offset_ms <= 800]
        got = [t for t in data if f'"channel":"{channel}","instId":"{inst_id}"' in t]
        assert len(expected) >= 2 and got[: len(expected)] == expected
    assert '"checksum":' in expected[0] and '"action":"snapshot"' in expected[0]


async def test_replay_still_rejects_unknown_pairs() -> None:
    config = SimulatorConfig(seed=1, history_hours=0.1, replay_path=str(CAPTURE))
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "books", "instId": "XRP-USDT"})
        assert (await recv_json(ws))["code"] == "60018"


def _recorded_trades(inst_id: str) -> list[dict[str, Any]]:
    """The trade rows of the recording, read here independently of the simulator's loader."""
    rows: dict[str, dict[str, Any]] = {}
    for line in CAPTURE.read_text().splitlines():
        head, _, text = line.partition(": ")
        if "<-" in head or not text.startswith("{"):
            continue
        frame = json.loads(text)
        if frame.get("arg") == {"channel": "trades", "instId": inst_id} and "data" in frame:
            for row in frame["data"]:
                rows.setdefault(row["tradeId"], row)
    return sorted(rows.values(), key=lambda r: int(r["tradeId"]))


async def test_replay_serves_recorded_trades_on_rest_and_tape(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(seed=1, history_hours=0.1, replay_path=str(CAPTURE), rate_limits=False)
    recorded = _recorded_trades("BTC-USDT")
    expected = [
        {"instId": "BTC-USDT", "side": r["side"], "sz": r["sz"], "px": r["px"], "source": "0"}
        | {"tradeId": r["tradeId"], "ts": r["ts"]}
        for r in recorded
    ]
    assert len(expected) >= 20 and expected[0]["ts"].startswith("16524")  # May 2022
    async with SimulatorServer(config=config) as sim:
        truth = await tape(http, sim.control_url, "BTC-USDT")
        assert truth == sorted(expected, key=lambda r: (int(r["ts"]), int(r["tradeId"])))
        middle = int(expected[len(expected) // 2]["ts"])
        assert await tape(http, sim.control_url, "BTC-USDT", start=middle) == [
            r for r in truth if int(r["ts"]) >= middle
        ]
        newest = list(reversed(expected))

        async def rest(path: str, **params: Any) -> Any:
            return (await http.get(f"{sim.rest_url}/api/v5/market/{path}", params=params)).json()

        assert (await rest("trades", instId="BTC-USDT", limit=5))["data"] == newest[:5]
        page = await rest("history-trades", instId="BTC-USDT", limit=3, after=newest[4]["tradeId"])
        assert page == {"code": "0", "data": newest[5:8], "msg": ""}
        page = await rest("history-trades", instId="BTC-USDT", limit=4, before=newest[10]["tradeId"])
        assert page["data"] == newest[:4]
        page = await rest("history-trades", instId="BTC-USDT", type=2, limit=100, after=middle)
        assert page["data"] == [r for r in newest if int(r["ts"]) < middle][:100]
        uni = await rest("history-trades", instId="UNI-USD-SWAP")  # a capture instrument the market lacks
        assert [r["tradeId"] for r in uni["data"]] == [
            r["tradeId"] for r in reversed(_recorded_trades("UNI-USD-SWAP"))
        ]
        generated = await rest("trades", instId="ETH-USDT", limit=2)  # not in the capture: generated
        assert [r["instId"] for r in generated["data"]] == ["ETH-USDT", "ETH-USDT"]
        assert int(generated["data"][0]["ts"]) > int(time.time() * 1000) - 3_600_000
        assert (await rest("trades", instId="XRP-USDT"))["code"] == "51001"
