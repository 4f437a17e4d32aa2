"""Fault injection through POST /sim/faults, observed over real sockets; the truth never changes."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from sim_helpers import is_data, recv_json, recv_until, subscribe, tape

from okx_simulator import SimulatorConfig, SimulatorServer


async def fault(http: httpx.AsyncClient, sim: SimulatorServer, **body: Any) -> str:
    response = await http.post(sim.control_url + "/faults", json=body)
    assert response.status_code == 200, response.text
    fault_id: str = response.json()["id"]
    return fault_id


async def test_drop_is_abrupt(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "tickers", "instId": "BTC-USDT"})
        await recv_until(ws, lambda m: isinstance(m, dict) and is_data(m))
        await fault(http, sim, kind="drop")
        with pytest.raises(websockets.ConnectionClosedError) as info:
            while True:
                await recv_json(ws)
        assert info.value.rcvd is None  # no close frame


async def test_close_with_code(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "tickers", "instId": "BTC-USDT"})
        await fault(http, sim, kind="close", code=4321, channel="tickers")
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await recv_json(ws)
        assert ws.close_code == 4321


async def test_notice_then_abrupt_close(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "tickers", "instId": "BTC-USDT"})
        await fault(http, sim, kind="notice", seconds=0.3)
        frames = await recv_until(ws, lambda m: isinstance(m, dict) and m.get("event") == "notice")
        notice = frames[-1]
        assert list(notice) == ["event", "msg", "code", "connId"]
        assert (notice["code"], notice["msg"]) == (
            "64008",
            "The connection will soon be closed for a service upgrade. Please reconnect.",
        )
        with pytest.raises(websockets.ConnectionClosedError) as info:
            while True:
                await recv_json(ws)
        assert info.value.rcvd is None


async def test_stall_answers_no_ping(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(
            ws, {"channel": "tickers", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "BTC-USDT"}
        )
        await recv_until(ws, lambda m: isinstance(m, dict) and is_data(m))
        # 2 s: the 0.6 s this test listens into the stall stay inside it even when the fault's answer is late
        await fault(http, sim, kind="stall", seconds=2.0)
        started = time.monotonic()
        await _frames(ws, 0.1)  # whatever was queued before the stall
        await ws.send("ping")
        with pytest.raises(TimeoutError):  # neither a pong nor any data push during the stall
            await recv_json(ws, 0.5)
        await asyncio.sleep(max(0.0, 2.05 - (time.monotonic() - started)))
        resumed = await recv_until(ws, lambda m: isinstance(m, dict) and is_data(m), wait_s=3)
        assert resumed[-1]["arg"]["instId"] == "BTC-USDT"  # data pushes resume after the stall
        await ws.send("ping")
        assert await recv_until(ws, lambda m: m == "pong")


async def test_path_narrows_drop_and_stall(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    async with (
        websockets.connect(sim.ws_public_url) as public,
        websockets.connect(sim.ws_business_url) as business,
    ):
        await subscribe(public, {"channel": "tickers", "instId": "BTC-USDT"})
        await subscribe(business, {"channel": "trades-all", "instId": "BTC-USDT"})
        await recv_until(public, lambda m: isinstance(m, dict) and is_data(m))
        await recv_until(business, lambda m: isinstance(m, dict) and is_data(m))
        await fault(http, sim, kind="stall", seconds=0.6, path="/ws/v5/business")
        await _frames(business, 0.1)
        await public.send("ping")
        await business.send("ping")
        assert (await recv_until(public, lambda m: m == "pong"))[-1] == "pong"  # /public is not stalled
        with pytest.raises(TimeoutError):  # /business is
            await recv_json(business, 0.3)
        await fault(http, sim, kind="drop", path="/ws/v5/business")
        with pytest.raises(websockets.ConnectionClosedError) as info:
            while True:
                await recv_json(business)
        assert info.value.rcvd is None  # /business dropped abruptly
        await public.send("ping")
        assert (await recv_until(public, lambda m: m == "pong"))[-1] == "pong"  # /public still open
        assert public.close_code is None
    listed = (await http.get(sim.control_url + "/faults")).json()
    assert [(f["kind"], f["path"], f["hits"]) for f in listed][1] == ("drop", "/ws/v5/business", 1)


async def test_malformed_is_logged_and_truth_unchanged(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    before = await tape(http, sim.control_url, "BTC-USDT", to=int(time.time() * 1000) - 5_000)
    await fault(http, sim, kind="malformed", rate=1.0, variants=["bad_json"], instId="ETH-USDT", seconds=5)
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(
            ws, {"channel": "trades", "instId": "ETH-USDT"}, {"channel": "trades", "instId": "BTC-USDT"}
        )
        raw: list[str] = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                raw.append(str(await asyncio.wait_for(ws.recv(), 0.5)))
            except TimeoutError:
                break
    broken = [r for r in raw if not _parses(r)]
    good = [json.loads(r) for r in raw if _parses(r)]
    assert broken and all('"instId":"ETH-USDT"' in r or "ETH-USDT" in r for r in broken)
    assert any(is_data(g) and g["arg"]["instId"] == "BTC-USDT" for g in good)
    log = (await http.get(sim.control_url + "/faults/log")).json()
    logged = [entry["frame"] for entry in log]
    assert (
        logged[: len(broken)] == broken
    )  # every corrupted frame received was logged (more may be in flight)
    assert {entry["variant"] for entry in log} == {"bad_json"}
    after = await tape(http, sim.control_url, "BTC-USDT", to=int(before[-1]["ts"]) + 1)
    assert after == before


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("variant", ["missing_field", "wrong_type", "negative_price", "unknown_side"])
async def test_malformed_variants(sim: SimulatorServer, http: httpx.AsyncClient, variant: str) -> None:
    await fault(http, sim, kind="malformed", rate=1.0, variants=[variant], channel="trades")
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "trades", "instId": "SOL-USDT"})
        frames = await recv_until(ws, lambda m: isinstance(m, dict) and is_data(m))
    row = frames[-1]["data"][0]
    if variant == "missing_field":
        assert "instId" not in row
    elif variant == "wrong_type":
        assert isinstance(row["px"], float)
    elif variant == "negative_price":
        assert row["px"].startswith("-")
    else:
        assert row["side"] == "hold"
    log = (await http.get(sim.control_url + "/faults/log")).json()
    assert log[0]["variant"] == variant and json.loads(log[0]["frame"]) == frames[-1]


async def test_duplicate_and_reorder(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    cut = int(time.time() * 1000) - 1
    before = await tape(http, sim.control_url, "BTC-USDT", start=cut - 600_000, to=cut)
    await fault(http, sim, kind="duplicate", rate=1.0, channel="trades-all")
    async with websockets.connect(sim.ws_business_url) as ws:
        await subscribe(ws, {"channel": "trades-all", "instId": "BTC-USDT"})
        frames = [f for f in await _frames(ws, 1.0) if is_data(f)]
    duplicated = [f["data"][0] for f in frames]
    ids = [row["tradeId"] for row in duplicated]
    assert len(ids) >= 4 and ids[0::2] == ids[1::2]
    await http.delete(sim.control_url + "/faults")
    await fault(http, sim, kind="reorder", rate=1.0, channel="trades-all")
    async with websockets.connect(sim.ws_business_url) as ws:
        await subscribe(ws, {"channel": "trades-all", "instId": "BTC-USDT"})
        frames = [f for f in await _frames(ws, 1.5) if is_data(f)]
    reordered = [f["data"][0] for f in frames]
    ids_int = [int(row["tradeId"]) for row in reordered]
    assert len(ids_int) >= 3 and ids_int != sorted(ids_int) and sorted(ids_int) == sorted(set(ids_int))
    # Nothing lost or invented: the subscribe push (the last fill) and the fills after it, contiguous ids
    # (only the newest may still be held when the window ends).
    assert sorted(ids_int) == list(range(min(ids_int), min(ids_int) + len(ids_int)))
    first_ids = [int(i) for i in ids[0::2]]
    assert first_ids == list(range(first_ids[0], first_ids[0] + len(first_ids)))
    # The wire glitches leave the truth alone: the same tape lines, and every pushed row is a tape row.
    assert await tape(http, sim.control_url, "BTC-USDT", start=cut - 600_000, to=cut) == before
    truth = {t["tradeId"]: t for t in await tape(http, sim.control_url, "BTC-USDT", start=cut - 600_000)}
    assert all(row == truth[row["tradeId"]] for row in duplicated + reordered)


async def test_reorder_releases_a_lone_frame(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    """With a frozen clock books5 sends only its subscribe push: reorder holds it, then releases it after ~1 s."""
    await fault(http, fixed_sim, kind="reorder", rate=1.0, channel="books5")
    async with websockets.connect(fixed_sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "books5", "instId": "BTC-USDT"})
        assert (await recv_json(ws))["event"] == "subscribe"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await recv_json(ws, 0.5)  # held back
        frame = await recv_json(ws, 2.0)
    assert 0.9 <= time.monotonic() - started < 2.0
    rest = (
        await http.get(fixed_sim.rest_url + "/api/v5/market/books", params={"instId": "BTC-USDT", "sz": 5})
    ).json()["data"][0]
    assert frame["arg"] == {"channel": "books5", "instId": "BTC-USDT"}
    assert (frame["data"][0]["asks"], frame["data"][0]["bids"]) == (rest["asks"], rest["bids"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "malformed", "rate": 1.5}, "rate"),
        ({"kind": "malformed", "rate": -0.1}, "rate"),
        ({"kind": "duplicate", "rate": "all"}, "rate"),
        ({"kind": "close", "code": 999}, "code"),
        ({"kind": "close", "code": 5000}, "code"),
        ({"kind": "stall", "seconds": 1, "sconds": 2}, "sconds"),
        ({"kind": "drop", "rate": 0.5}, "rate"),
        ({"kind": "malformed", "variants": ["bad_json", "nope"]}, "variants"),
        ({"kind": "meteor"}, "kind"),
    ],
)
async def test_fault_validation(
    sim: SimulatorServer, http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await http.post(sim.control_url + "/faults", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == field and field in answer["error"]
    assert (await http.get(sim.control_url + "/faults")).json() == []


async def test_fault_validation_accepts_bounds(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    for body in (
        {"kind": "malformed", "rate": 0},
        {"kind": "malformed", "rate": 1},
        {"kind": "close", "code": 4999},
    ):
        await fault(http, sim, **body, at_ms=int(time.time() * 1000) + 600_000)
    listed = (await http.get(sim.control_url + "/faults")).json()
    assert [f["params"] for f in listed] == [
        {"rate": 0, "at_ms": listed[0]["start_ms"]},
        {"rate": 1, "at_ms": listed[1]["start_ms"]},
        {"code": 4999, "at_ms": listed[2]["start_ms"]},
    ]


async def test_book_gap_and_seq_reset(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(seed=8, trade_rate=20, tick_ms=20, history_hours=0.2, quiet_prob=0.0)
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "books", "instId": "BTC-USDT"})
        first = await recv_until(ws, lambda m: isinstance(m, dict) and m.get("action") == "snapshot")
        frames = [first[-1]["data"][0]] + [f["data"][0] for f in await _frames(ws, 0.3) if is_data(f)]
        await fault(http, sim, kind="book_gap", instId="BTC-USDT")

        def gaps() -> int:
            return sum(1 for a, b in itertools.pairwise(frames) if a["seqId"] != b["prevSeqId"])

        # the gap comes with the next book update; a loaded machine may take longer than a fixed 0.6 s window
        deadline = time.monotonic() + 10.0
        while gaps() == 0 and time.monotonic() < deadline:
            frames += [f["data"][0] for f in await _frames(ws, 0.2) if is_data(f)]
        frames += [f["data"][0] for f in await _frames(ws, 0.3) if is_data(f)]  # and nothing more breaks
        assert gaps() == 1
        await fault(http, sim, kind="seq_reset")
        frames = []
        deadline = time.monotonic() + 10.0
        while not any(f["seqId"] < f["prevSeqId"] for f in frames) and time.monotonic() < deadline:
            frames += [f["data"][0] for f in await _frames(ws, 0.2) if is_data(f)]
        assert any(f["seqId"] < f["prevSeqId"] for f in frames)


async def test_rest_faults(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    time_url = sim.rest_url + "/api/v5/public/time"
    await fault(http, sim, kind="rest_error", status=503, seconds=0.3, path="/api/v5/public/time")
    r = await http.get(time_url)
    assert (r.status_code, r.json()["code"]) == (503, "50001")
    assert (await http.get(sim.rest_url + "/api/v5/system/status")).status_code == 200  # narrowed by path
    await asyncio.sleep(0.35)
    assert (await http.get(time_url)).status_code == 200
    await fault(http, sim, kind="rest_429", seconds=0.3)
    r = await http.get(time_url)
    assert (r.status_code, r.json()) == (429, {"msg": "Too Many Requests", "code": "50011"})
    await http.delete(sim.control_url + "/faults")
    await fault(http, sim, kind="rest_slow", delay_ms=300, seconds=1)
    started = time.monotonic()
    assert (await http.get(time_url)).status_code == 200
    assert time.monotonic() - started >= 0.3
    await http.delete(sim.control_url + "/faults")
    await fault(http, sim, kind="refuse", seconds=0.3)
    with pytest.raises(httpx.TransportError):
        await http.get(time_url)
    with pytest.raises((OSError, websockets.InvalidHandshake, websockets.ConnectionClosed)):
        async with websockets.connect(sim.ws_public_url, open_timeout=2):
            pass
    await asyncio.sleep(0.35)
    assert (await http.get(time_url)).status_code == 200


async def test_fault_listing_clearing_and_stats(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    bad = await http.post(sim.control_url + "/faults", json={"kind": "meteor"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("unknown fault kind 'meteor'")
    fault_id = await fault(http, sim, kind="stall", seconds=10, at_ms=int(time.time() * 1000) + 60_000)
    listed = (await http.get(sim.control_url + "/faults")).json()
    assert [f["id"] for f in listed] == [fault_id] and listed[0]["kind"] == "stall"
    await http.delete(sim.control_url + "/faults")
    assert (await http.get(sim.control_url + "/faults")).json() == []
    async with websockets.connect(sim.ws_public_url) as ws:
        await ws.send("ping")
        await recv_until(ws, lambda m: m == "pong")
        stats = (await http.get(sim.control_url + "/stats")).json()
    assert set(stats) >= {"connections", "frames_sent", "requests", "http_429", "faults"}
    # One connection, and the one frame it was sent: the pong.
    assert (stats["connections"], stats["frames_sent"], stats["faults"]) == (1, 1, 1)


async def _frames(ws: Any, seconds: float) -> list[Any]:
    frames: list[Any] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await recv_json(ws, left)
        except TimeoutError:
            break
        if isinstance(frame, dict):
            frames.append(frame)
    return frames


async def test_fault_at_ms_fires_later(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "tickers", "instId": "BTC-USDT"})
        await recv_until(ws, lambda m: isinstance(m, dict) and is_data(m))
        await fault(http, sim, kind="drop", at_ms=int(time.time() * 1000) + 800)
        await ws.send("ping")
        await recv_until(ws, lambda m: m == "pong")  # still connected before at_ms
        with pytest.raises(websockets.ConnectionClosedError):
            while True:
                await recv_json(ws)
    listed = (await http.get(sim.control_url + "/faults")).json()
    assert listed[0]["fired"] is True and listed[0]["hits"] == 1


async def test_positional_config() -> None:
    async with SimulatorServer(SimulatorConfig(seed=9, history_hours=0.1)) as sim:
        assert sim.config.seed == 9 and sim.port > 0


async def test_notice_on_business_switch(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(seed=3, history_hours=0.1, notice_on_business=False, tick_ms=20)
    async with SimulatorServer(config=config) as sim:
        async with (
            websockets.connect(sim.ws_public_url) as public,
            websockets.connect(sim.ws_business_url) as business,
        ):
            await fault(http, sim, kind="notice", seconds=5)
            assert (await recv_json(public))["code"] == "64008"
            with pytest.raises(TimeoutError):
                await recv_json(business, 0.3)
