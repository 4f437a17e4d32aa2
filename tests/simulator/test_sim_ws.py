"""WebSocket against a running simulator: acks, errors, channel layouts from real frames, sequencing."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import zlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets
from sim_helpers import (
    FIXED_NOW_MS,
    ccxt_frame,
    is_data,
    key_types,
    load_fixture,
    recv_json,
    recv_until,
    subscribe,
    tape,
)

from okx_simulator import Credentials, SimulatorConfig, SimulatorServer
from okx_simulator.ws_protocol import login_sign

CONN_ID = re.compile(r"^[0-9a-f]{8}$")


def data_of(channel: str) -> Any:
    return lambda m: isinstance(m, dict) and is_data(m) and m["arg"]["channel"] == channel


async def test_acks_one_per_arg_with_conn_id_and_id_echo(sim: SimulatorServer) -> None:
    real_ack = ccxt_frame("spot trades", lambda m: m.get("event") == "subscribe")
    async with websockets.connect(sim.ws_public_url) as ws:
        args = [{"channel": "tickers", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "ETH-USDT"}]
        await subscribe(ws, *args)
        frames = await recv_until(ws, lambda m: m.get("arg") == args[1] and m.get("event") == "subscribe")
        acks = [f for f in frames if f.get("event") == "subscribe"]
        assert [a["arg"] for a in acks] == args
        assert [list(a) for a in acks] == [list(real_ack)] * 2
        assert CONN_ID.match(acks[0]["connId"]) and acks[0]["connId"] == acks[1]["connId"]
        await subscribe(ws, {"channel": "books5", "instId": "SOL-USDT"}, request_id="1512")
        frames = await recv_until(ws, lambda m: m.get("event") == "subscribe")
        assert list(frames[-1]) == ["id", "event", "arg", "connId"] and frames[-1]["id"] == "1512"


async def test_errors_60012_and_60018(sim: SimulatorServer) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await ws.send('"ping"')
        error = await recv_json(ws)
        assert list(error) == ["event", "msg", "code", "connId"]
        assert (error["code"], error["msg"]) == ("60012", 'Illegal request: "ping"')
        await subscribe(
            ws, {"channel": "candle1m", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "NOPE"}
        )
        first, second = await recv_json(ws), await recv_json(ws)
        assert first["code"] == second["code"] == "60018"
        assert first["msg"] == (
            "Subscribe failed, wrong URL or channel:candle1m,instId:BTC-USDT doesn't exist. "
            "Please use the correct URL, channel and parameters referring to API document."
        )
        await ws.send("ping")
        assert await recv_json(ws) == "pong"


async def test_trades_aggregated_agree_with_tape(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    real = ccxt_frame("spot trades", is_data)["data"][0]
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "trades", "instId": "BTC-USDT"})
        frames = await _collect_matching(ws, data_of("trades"), 3)
    rows = [f["data"][0] for f in frames]
    assert len(rows) >= 3
    assert key_types(rows[0]) == key_types(real)
    truth = {int(t["tradeId"]): t for t in await tape(http, sim.control_url, "BTC-USDT")}
    for row in rows:
        last, count = int(row["tradeId"]), int(row["count"])
        fills = [truth[i] for i in range(last - count + 1, last + 1)]
        assert {f["px"] for f in fills} == {row["px"]} and {f["side"] for f in fills} == {row["side"]}
        assert sum(Decimal(f["sz"]) for f in fills) == Decimal(row["sz"]) and fills[-1]["ts"] == row["ts"]
    ids = [int(r["tradeId"]) for r in rows[1:]]
    counts = [int(r["count"]) for r in rows[1:]]
    assert all(b - a == c for a, b, c in zip(ids, ids[1:], counts[1:], strict=False))


async def test_tickers_books5_bbo_layouts(sim: SimulatorServer) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(
            ws,
            {"channel": "tickers", "instId": "ETH-USDT"},
            {"channel": "books5", "instId": "ETH-USDT"},
            {"channel": "bbo-tbt", "instId": "ETH-USDT"},
        )
        seen: set[str] = set()

        def all_seen(frame: Any) -> bool:
            if isinstance(frame, dict) and is_data(frame):
                seen.add(frame["arg"]["channel"])
            return len(seen) == 3

        frames = await recv_until(ws, all_seen)
        frames += await _collect(ws, 0.5)
    ticker = next(f for f in frames if data_of("tickers")(f))
    books5 = next(f for f in frames if data_of("books5")(f))
    bbo = next(f for f in frames if data_of("bbo-tbt")(f))
    assert key_types(ticker["data"][0]) == key_types(ccxt_frame("spot ticker", is_data)["data"][0])
    real5 = ccxt_frame("spot orderbook depth 5", is_data)
    assert list(books5) == list(real5) and key_types(books5["data"][0]) == key_types(real5["data"][0])
    assert len(books5["data"][0]["asks"]) == 5 and all(len(lv) == 4 for lv in books5["data"][0]["bids"])
    assert key_types(bbo["data"][0]) == key_types(load_fixture("ws_bbo_tbt.json")["data"][0])
    seq_ids = [f["data"][0]["seqId"] for f in frames if data_of("books5")(f) or data_of("bbo-tbt")(f)]
    assert seq_ids == sorted(seq_ids)


async def test_books_sequence_and_legacy_checksum() -> None:
    config = SimulatorConfig(
        seed=4, trade_rate=10, tick_ms=20, history_hours=1, legacy_checksum=True, quiet_prob=0.0
    )
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "books", "instId": "UNI-USDT"})
        frames = await _collect_matching(ws, data_of("books"), 5)
    real = load_fixture("ws_books_snapshot.json")
    assert list(frames[0]) == list(real) and frames[0]["action"] == "snapshot"
    assert key_types(frames[0]["data"][0]) == key_types(real["data"][0])
    assert frames[0]["data"][0]["prevSeqId"] == -1 and len(frames[0]["data"][0]["asks"]) == 400
    book: dict[str, dict[str, str]] = {"asks": {}, "bids": {}}
    previous = None
    for frame in frames:
        data = frame["data"][0]
        if previous is not None:
            assert frame["action"] == "update" and data["prevSeqId"] == previous
            assert data["seqId"] > previous
        previous = data["seqId"]
        for side in ("asks", "bids"):
            for px, sz, _, _ in data[side]:
                if sz == "0":
                    book[side].pop(px, None)
                else:
                    book[side][px] = sz
        assert data["checksum"] == _crc(book)
    assert len(frames) >= 5


def _crc(book: dict[str, dict[str, str]]) -> int:
    bids = sorted(book["bids"].items(), key=lambda kv: -Decimal(kv[0]))[:25]
    asks = sorted(book["asks"].items(), key=lambda kv: Decimal(kv[0]))[:25]
    parts: list[str] = []
    for i in range(25):
        for side in (bids, asks):
            if i < len(side):
                parts += list(side[i])
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


async def test_books_checksum_zero_and_heartbeat() -> None:
    config = SimulatorConfig(seed=4, trade_rate=0, tick_ms=20, history_hours=0.1, heartbeat_s=0.3)
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "books", "instId": "BTC-USDT"})
        frames = await _collect_matching(ws, data_of("books"), 3)
    snapshot, beats = frames[0]["data"][0], [f["data"][0] for f in frames[1:]]
    assert snapshot["checksum"] == 0 and len(beats) >= 2
    for beat in beats:
        assert (beat["asks"], beat["bids"], beat["checksum"]) == ([], [], 0)
        assert beat["seqId"] == beat["prevSeqId"] == snapshot["seqId"]


async def test_seq_id_shared_by_trades_and_books(sim: SimulatorServer) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(
            ws, {"channel": "trades", "instId": "DOGE-USDT"}, {"channel": "books5", "instId": "DOGE-USDT"}
        )
        frames = (await _collect_matching(ws, lambda f: isinstance(f, dict) and is_data(f), 12))[2:]
    seq_ids = [f["data"][0]["seqId"] for f in frames]
    assert len(seq_ids) > 4 and seq_ids == sorted(seq_ids)
    assert any(b - a > 1 for a, b in itertools.pairwise(seq_ids))  # jumps, not contiguous


async def test_business_trades_all_and_candles(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    doc = {"instId": "", "tradeId": "", "px": "", "sz": "", "side": "", "source": "", "ts": ""}
    async with websockets.connect(sim.ws_business_url) as ws:
        await subscribe(
            ws, {"channel": "trades-all", "instId": "BTC-USDT"}, {"channel": "candle1m", "instId": "BTC-USDT"}
        )
        frames = await _collect(ws, 1.2)
    fills = [f["data"][0] for f in frames if data_of("trades-all")(f)]
    candles = [f["data"][0] for f in frames if data_of("candle1m")(f)]
    assert key_types(fills[0]) == key_types(doc)
    truth = {t["tradeId"]: t for t in await tape(http, sim.control_url, "BTC-USDT")}
    assert all(truth[f["tradeId"]] == {k: f[k] for k in truth[f["tradeId"]]} for f in fills)
    real = ccxt_frame("spot ohlcv 1m", is_data)["data"][0]
    assert len(candles[0]) == len(real) and all(isinstance(v, str) for v in candles[0])
    assert candles[-1][8] in ("0", "1") and int(candles[-1][0]) % 60_000 == 0
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "trades-all", "instId": "BTC-USDT"})
        assert (await recv_json(ws))["code"] == "60018"


async def test_idle_close_4004_and_ping_keeps_alive() -> None:
    config = SimulatorConfig(seed=1, trade_rate=0, idle_timeout_s=0.4, history_hours=0.1, tick_ms=20)
    async with SimulatorServer(config=config) as sim:
        async with websockets.connect(sim.ws_public_url) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 4004
        async with websockets.connect(sim.ws_public_url) as ws:
            await subscribe(ws, {"channel": "trades", "instId": "BTC-USDT"})
            started = time.monotonic()
            while time.monotonic() - started < 1.0:
                await ws.send("ping")
                await recv_until(ws, lambda m: m == "pong")
                await asyncio.sleep(0.15)
            assert ws.close_code is None
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 4004 and ws.close_reason == "No data received in 30s."


async def test_login_signature(sim: SimulatorServer) -> None:
    creds = Credentials()
    async with websockets.connect(sim.ws_business_url) as ws:
        stamp = str(int(time.time()))
        bad = {"apiKey": creds.api_key, "passphrase": creds.passphrase, "timestamp": stamp, "sign": "xx"}
        await ws.send(json.dumps({"op": "login", "args": [bad]}))
        assert (await recv_json(ws))["code"] == "60009"
        good = dict(bad, sign=login_sign(creds.secret_key, stamp))
        await ws.send(json.dumps({"op": "login", "args": [good]}))
        reply = await recv_json(ws)
        assert [reply["event"], reply["code"], reply["msg"]] == ["login", "0", ""]


async def test_permessage_deflate_negotiated(sim: SimulatorServer) -> None:
    async with websockets.connect(sim.ws_public_url) as ws:
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
    async with websockets.connect(sim.ws_public_url, compression=None) as ws:
        assert ws.response is not None and "Sec-WebSocket-Extensions" not in ws.response.headers


async def _collect_matching(
    ws: Any, keep: Callable[[Any], bool], count: int, timeout_s: float = 15.0
) -> list[Any]:
    """Frames that ``keep`` accepts, until ``count`` have arrived (a count, not a time window: a loaded machine
    slows the simulator's ticks, and a fixed window then holds fewer frames)."""
    frames: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(frames) < count and (left := deadline - time.monotonic()) > 0:
        try:
            frame = await recv_json(ws, left)
        except TimeoutError:
            break
        if keep(frame):
            frames.append(frame)
    return frames


async def _collect(ws: Any, seconds: float) -> list[Any]:
    frames: list[Any] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(await recv_json(ws, left))
        except TimeoutError:
            break
    return frames


async def test_resubscribe_acks_without_duplicate_data_and_unsubscribe(sim: SimulatorServer) -> None:
    arg = {"channel": "tickers", "instId": "TON-USDT"}
    async with websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, arg)
        await recv_until(ws, data_of("tickers"))
        await subscribe(ws, arg)
        frames = await recv_until(ws, lambda m: isinstance(m, dict) and m.get("event") == "subscribe")
        frames += await _collect(ws, 0.3)
        pushed = [f["data"][0] for f in frames if data_of("tickers")(f)]
        assert len({json.dumps(p) for p in pushed}) == len(pushed)  # no re-sent initial state
        await ws.send(json.dumps({"op": "unsubscribe", "args": [arg]}))
        frames = await recv_until(ws, lambda m: isinstance(m, dict) and m.get("event") == "unsubscribe")
        ack = frames[-1]
        assert list(ack) == ["event", "arg", "connId"] and ack["arg"] == arg
        assert [f for f in await _collect(ws, 0.5) if data_of("tickers")(f)] == []


async def test_candle_confirm_push_matches_truth(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(
        seed=3, trade_rate=30, tick_ms=20, history_hours=0.1, candle_push_ms=100, quiet_prob=0
    )
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_business_url) as ws:
        await subscribe(ws, {"channel": "candle1s", "instId": "ETH-USDT"})
        frames = await recv_until(ws, lambda m: data_of("candle1s")(m) and m["data"][0][8] == "1", wait_s=4)
        closed = frames[-1]["data"][0]
        response = await http.get(
            sim.control_url + "/candles",
            params={"instId": "ETH-USDT", "bar": "1s", "from": closed[0], "to": int(closed[0]) + 1000},
        )
        assert [json.loads(line) for line in response.text.splitlines()] == [closed]
        assert any(data_of("candle1s")(f) and f["data"][0][8] == "0" for f in frames)  # forming bar first


async def test_books5_resent_without_change() -> None:
    config = SimulatorConfig(seed=4, trade_rate=0, tick_ms=20, history_hours=0.1, heartbeat_s=0.3)
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_public_url) as ws:
        await subscribe(ws, {"channel": "books5", "instId": "ETH-USDC"})
        frames = [f["data"][0] for f in await _collect_matching(ws, data_of("books5"), 3)]
    assert len(frames) >= 3
    assert all(f["asks"] == frames[0]["asks"] and f["bids"] == frames[0]["bids"] for f in frames)


async def test_notice_clean_close_switch(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(seed=4, history_hours=0.1, notice_clean_close=True)
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_public_url) as ws:
        await http.post(sim.control_url + "/faults", json={"kind": "notice", "seconds": 0.2})
        assert (await recv_json(ws))["code"] == "64008"
        with pytest.raises(websockets.ConnectionClosedOK):
            await recv_json(ws)
        assert ws.close_code == 1000


async def test_steady_firehose_delivers_the_tape_contiguously(http: httpx.AsyncClient) -> None:
    """A steady firehose (what ``--firehose-rate 2000 --pairs BTC-USDT,ETH-USDT`` configures) pushes every
    fill of the tape once, in id order, exactly as /sim/tape serves it: contiguous trade ids, no gap."""
    config = SimulatorConfig(
        seed=6,
        pairs=("BTC-USDT", "ETH-USDT"),
        trade_rate=1000,
        history_trade_rate=2,
        chunk_ms=1000,
        history_hours=0.2,
        quiet_prob=0,
        burst_prob=0,
    )
    args = [{"channel": "trades-all", "instId": p} for p in config.pairs]
    rows: dict[str, list[dict[str, str]]] = {p: [] for p in config.pairs}
    async with SimulatorServer(config=config) as sim:
        async with websockets.connect(sim.ws_business_url, max_size=None, compression=None) as ws:
            await subscribe(ws, *args)
            async with asyncio.timeout(20):  # until 1 500 live fills of each pair have come
                while min(len(r) for r in rows.values()) < 1_500:
                    frame = await recv_json(ws)
                    if data_of("trades-all")(frame):
                        rows[frame["arg"]["instId"]] += frame["data"]
            # Stop the stream before closing: a client that stops reading cannot receive the close frame.
            await ws.send(json.dumps({"op": "unsubscribe", "args": args}))
            await recv_until(ws, lambda m: isinstance(m, dict) and m.get("event") == "unsubscribe")
        for pair, got in rows.items():
            got = got[1:]  # the first push is the last fill before the subscribe (it may precede a gap)
            ids = [int(r["tradeId"]) for r in got]
            assert ids == list(range(ids[0], ids[0] + len(ids))), pair
            truth = await tape(
                http, sim.control_url, pair, start=int(got[0]["ts"]), end=int(got[-1]["ts"]) + 1
            )
            truth = [t for t in truth if ids[0] <= int(t["tradeId"]) <= ids[-1]]
            assert [{k: r[k] for k in t} for r, t in zip(got, truth, strict=True)] == truth, pair


async def test_login_failure_close_switch() -> None:
    config = SimulatorConfig(seed=1, history_hours=0.1, login_failure_close=True)
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_business_url) as ws:
        bad = {"apiKey": "nope", "passphrase": "x", "timestamp": str(int(time.time())), "sign": "x"}
        await ws.send(json.dumps({"op": "login", "args": [bad]}))
        assert (await recv_json(ws))["code"] == "60009"
        with pytest.raises(websockets.ConnectionClosed):
            await recv_json(ws)
        assert (ws.close_code, ws.close_reason) == (4001, "Login Failed")


async def test_trades_all_seq_id_switch() -> None:
    config = SimulatorConfig(seed=2, trade_rate=20, history_hours=0.1, quiet_prob=0, trades_all_seq_id=True)
    async with SimulatorServer(config=config) as sim, websockets.connect(sim.ws_business_url) as ws:
        await subscribe(ws, {"channel": "trades-all", "instId": "SOL-USDT"})
        frames = await recv_until(ws, data_of("trades-all"))
    row = frames[-1]["data"][0]
    assert list(row)[-1] == "seqId" and isinstance(row["seqId"], int)


async def test_trades_all_first_push_is_the_last_fill(
    fixed_sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    """On subscribe, trades-all pushes the tape's newest fill (not the first fill of the newest taker order)."""
    hour_ago = FIXED_NOW_MS - 3_600_000
    tapes = {p: await tape(http, fixed_sim.control_url, p, start=hour_ago) for p in fixed_sim.config.pairs}
    # Pairs whose newest taker order has several fills: there the first and the last fill differ.
    multi = [p for p, t in tapes.items() if (t[-2]["ts"], t[-2]["px"]) == (t[-1]["ts"], t[-1]["px"])]
    assert multi, "the seed must end some pair's tape on a multi-fill order"
    async with websockets.connect(fixed_sim.ws_business_url) as ws:
        await subscribe(ws, *({"channel": "trades-all", "instId": p} for p in fixed_sim.config.pairs))
        frames = await _collect(ws, 0.5)
    first: dict[str, dict[str, str]] = {}
    for frame in frames:
        if data_of("trades-all")(frame):
            first.setdefault(frame["arg"]["instId"], frame["data"][0])
    assert set(first) == set(fixed_sim.config.pairs)
    for pair, row in first.items():
        last = tapes[pair][-1]
        assert (row["tradeId"], row["px"], row["sz"], row["ts"]) == (
            last["tradeId"],
            last["px"],
            last["sz"],
            last["ts"],
        ), pair
        assert row == {k: last[k] for k in row}
