"""Replay mode: the real 2022 recording is served verbatim, with its timing, per subscription."""

from __future__ import annotations

import asyncio
import time

import websockets
from sim_helpers import FIXTURES, recv_json, subscribe

from collectors.simulator import SimulatorConfig, SimulatorServer
from collectors.simulator.replay import load_capture

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
