"""OkxWebSocket against the simulator over real sockets: tape equality, every WebSocket fault, login, 60018.

Timeouts are constructor arguments, shortened so the suite stays fast; the tests assert values (events, reasons,
trade ids against ``/sim/tape``), never durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from collectors.backoff import backoff
from collectors.errors import ApiError, TransportError
from collectors.exchanges.okx.events import LoggedIn, Pong, Rejected, Subscribed, TradesPush
from collectors.exchanges.okx.parse import parse_frame
from collectors.exchanges.okx.protocol import ChannelArg, Credentials, subscription_requests
from collectors.exchanges.okx.session import (
    CONNECT_KEY,
    WS_CONNECT_QUOTA,
    Connected,
    Disconnected,
    RawFrame,
    SubscriptionFailed,
    connect_limiter,
    default_connect,
    request_texts,
)
from collectors.exchanges.okx.ws import OkxWebSocket
from collectors.ratelimit import RateLimiter, monotonic_ms
from okx_simulator import Credentials as SimCredentials
from okx_simulator import SimulatorConfig, SimulatorServer

LIVE = {"tick_ms": 20, "history_hours": 0.1, "candle_push_ms": 200, "quiet_prob": 0.0, "trade_rate": 20.0}
BTC, ETH = "BTC-USDT", "ETH-USDT"
SIM_KEYS = SimCredentials()
GOOD_CREDENTIALS = Credentials.of(
    api_key=SIM_KEYS.api_key, secret=SIM_KEYS.secret_key, passphrase=SIM_KEYS.passphrase
)

Event = Any  # a session event or a parse event


def trades_all(*inst_ids: str) -> list[ChannelArg]:
    return [ChannelArg(channel="trades-all", inst_id=i) for i in inst_ids]


def short_backoff() -> Iterator[float]:
    return backoff(initial_s=0.01, max_s=0.05, jitter=0.1)


@contextlib.asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(config=SimulatorConfig(seed=3, **{**LIVE, **config})) as server:
        yield server


@contextlib.asynccontextmanager
async def session(
    sim: SimulatorServer, *, public: bool = False, **options: Any
) -> AsyncIterator[OkxWebSocket]:
    settings: dict[str, Any] = {
        "connect_limiter": connect_limiter(),
        "backoff": short_backoff,
        "ping_after_s": 0.5,
        "pong_timeout_s": 0.5,
        "ack_timeout_s": 2.0,
    }
    settings.update(options)
    url = sim.ws_public_url if public else sim.ws_business_url
    async with OkxWebSocket(url=url, name="t", **settings) as ws:
        yield ws


async def read_until(
    ws: OkxWebSocket,
    done: Callable[[list[Event]], bool],
    wait_s: float = 15.0,
    into: list[Event] | None = None,
) -> list[Event]:
    """Every event until ``done(events)`` holds (appended to ``into`` as they come, when given)."""
    events: list[Event] = [] if into is None else into
    async with asyncio.timeout(wait_s), contextlib.aclosing(ws.events()) as stream:
        async for event in stream:
            events.append(event)
            if done(events):
                return events
    raise AssertionError(f"the stream ended: {events[-3:]}")


def trades_by_conn(events: list[Event], inst_id: str) -> list[tuple[int, Any]]:
    """``(conn_number, trade)`` of every trade pushed for ``inst_id``, in arrival order (via RawFrame)."""
    conn, out = 0, list[tuple[int, Any]]()
    for event in events:
        if isinstance(event, RawFrame):
            conn = event.conn_number
        elif isinstance(event, TradesPush) and event.inst_id == inst_id:
            out.extend((conn, t) for t in event.trades)
    return out


async def tape_between(
    sim: SimulatorServer, inst_id: str, first_id: int, last_id: int
) -> list[tuple[Any, ...]]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sim.control_url}/tape", params={"instId": inst_id})
    assert response.status_code == 200
    rows = [httpx.Response(200, content=line).json() for line in response.text.splitlines()]
    return [
        (int(r["tradeId"]), Decimal(r["px"]), Decimal(r["sz"]), r["side"], int(r["ts"]), r["source"])
        for r in rows
        if first_id <= int(r["tradeId"]) <= last_id
    ]


def as_rows(trades: list[Any]) -> list[tuple[Any, ...]]:
    unique = {t.trade_id: t for t in trades}
    return [(t.trade_id, t.price, t.size, t.side.value, t.ts_ms, t.source) for _, t in sorted(unique.items())]


async def assert_equals_tape(sim: SimulatorServer, inst_id: str, trades: list[Any]) -> None:
    """No trade missing between the first and the last received id; every value exact."""
    rows = as_rows(trades)
    assert rows == await tape_between(sim, inst_id, rows[0][0], rows[-1][0])


async def fault(sim: SimulatorServer, **body: Any) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{sim.control_url}/faults", json=body)
    assert response.status_code == 200, response.text
    fault_id: str = response.json()["id"]
    return fault_id


async def sim_get(sim: SimulatorServer, path: str) -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sim.control_url}/{path}")
    assert response.status_code == 200
    return response.json()


def disconnects(events: list[Event]) -> list[Disconnected]:
    return [e for e in events if isinstance(e, Disconnected)]


def connected(events: list[Event]) -> list[int]:
    return [e.conn_number for e in events if isinstance(e, Connected)]


def has_trades_on(conn_number: int, inst_id: str, n: int) -> Callable[[list[Event]], bool]:
    return lambda events: sum(1 for c, _ in trades_by_conn(events, inst_id) if c == conn_number) >= n


# ------------------------------------------------------------------------------------------- pure pieces


def test_outbox_runs_of_one_op_become_batched_requests() -> None:
    a, b, c = trades_all(BTC, ETH, "SOL-USDT")
    items: list[Any] = [("subscribe", (a,)), ("subscribe", (b, c)), "ping", ("unsubscribe", (a,)), None]
    assert list(request_texts(items)) == [
        *subscription_requests([a, b, c]),
        "ping",
        *subscription_requests([a], op="unsubscribe"),
        None,
    ]


# --------------------------------------------------------------------------------------------- live


async def test_trades_all_equal_the_tape_and_raw_frames_are_exact() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC, ETH))
        events = await read_until(ws, lambda ev: all(has_trades_on(1, i, 40)(ev) for i in (BTC, ETH)))
        await ws.aclose()
        for inst_id in (BTC, ETH):
            await assert_equals_tape(sim, inst_id, [t for _, t in trades_by_conn(events, inst_id)])
    assert isinstance(events[0], Connected) and events[0].conn_number == 1
    acks = [(e.channel, e.inst_id) for e in events if isinstance(e, Subscribed)]
    assert acks == [("trades-all", BTC), ("trades-all", ETH)]
    raws = [(e, events[i + 1]) for i, e in enumerate(events) if isinstance(e, RawFrame)]
    assert raws and all(parse_frame(r.text, recv_ms=r.recv_ms) == ev for r, ev in raws)
    assert disconnects(events) == []


async def test_aclose_reports_a_final_disconnect_and_ends_the_stream() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        await read_until(ws, lambda ev: any(isinstance(e, Subscribed) for e in ev))
        await ws.aclose()
        rest = [e async for e in ws.events()]
    assert [(d.conn_number, d.reason, d.will_reconnect) for d in disconnects(rest)] == [(1, "closed", False)]


async def test_drop_reconnects_and_resubscribes() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        events = await read_until(ws, has_trades_on(1, BTC, 5))
        await fault(sim, kind="drop")
        events += await read_until(ws, has_trades_on(2, BTC, 20))
        await assert_equals_tape(sim, BTC, [t for c, t in trades_by_conn(events, BTC) if c == 2])
    assert [(d.conn_number, d.reason, d.will_reconnect) for d in disconnects(events)] == [
        (1, "WebSocket closed: 1006 no close frame", True)
    ]
    assert connected(events) == [1, 2]
    assert [e.inst_id for e in events if isinstance(e, Subscribed)] == [BTC, BTC]


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "going away"), (4006, "Abnormal")])
async def test_a_close_code_reconnects(code: int, reason: str) -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        events = await read_until(ws, has_trades_on(1, BTC, 2))
        await fault(sim, kind="close", code=code, reason=reason)
        events += await read_until(ws, has_trades_on(2, BTC, 5))
    expected = f"WebSocket closed: {code} {reason}".rstrip()
    assert [(d.reason, d.will_reconnect) for d in disconnects(events)] == [(expected, True)]


async def test_a_close_code_saying_our_request_is_wrong_is_fatal() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        events = await read_until(ws, has_trades_on(1, BTC, 2))
        await fault(
            sim, kind="close", code=4008, reason="The number of subscribed channels exceeds the limit."
        )
        with pytest.raises(ApiError) as raised:
            await read_until(ws, lambda ev: False, into=events)
    assert raised.value.code == "4008" and not raised.value.retryable
    final = disconnects(events)
    assert [(d.conn_number, d.will_reconnect) for d in final] == [(1, False)]


async def test_idle_close_4004_reconnects() -> None:
    # nothing subscribed and no ping due before the server's idle rule: it closes with 4004
    async with simulator(idle_timeout_s=0.3) as sim, session(sim, ping_after_s=5.0) as ws:
        events = await read_until(ws, lambda ev: connected(ev) == [1, 2])
    assert disconnects(events)[0].reason == "WebSocket closed: 4004 No data received in 30s."
    assert disconnects(events)[0].will_reconnect is True


async def test_ping_keeps_a_quiet_connection_open() -> None:
    async with simulator(idle_timeout_s=0.6, trade_rate=0.001) as sim, session(sim, ping_after_s=0.2) as ws:
        ws.subscribe(trades_all(BTC))
        events = await read_until(ws, lambda ev: sum(isinstance(e, Pong) for e in ev) >= 6)
    assert disconnects(events) == [] and connected(events) == [1]


async def test_a_whole_stall_is_detected_by_the_pong_timeout_and_the_session_resubscribes() -> None:
    async with simulator() as sim, session(sim, ping_after_s=0.3, pong_timeout_s=0.3) as ws:
        ws.subscribe(trades_all(BTC))
        events = await read_until(ws, has_trades_on(1, BTC, 2))
        await fault(sim, kind="stall", seconds=1.5)
        events += await read_until(ws, lambda ev: any(has_trades_on(n, BTC, 10)(ev) for n in range(2, 30)))
        last = max(c for c, _ in trades_by_conn(events, BTC))
        await assert_equals_tape(sim, BTC, [t for c, t in trades_by_conn(events, BTC) if c == last])
    first = disconnects(events)[0]
    assert (first.conn_number, first.reason, first.will_reconnect) == (
        1,
        "no frame within 0.3 s after ping",
        True,
    )


async def test_default_keepalive_detects_a_stall_before_ten_seconds() -> None:
    # the defaults (ping after 5 s of silence, 3 s for the answer) against a 12 s stall: the Disconnected comes
    # while the stall still holds, from our pong timeout, not from the server's frames after the stall
    async with simulator() as sim, session(sim, ping_after_s=5.0, pong_timeout_s=3.0) as ws:
        ws.subscribe(trades_all(BTC))
        await read_until(ws, has_trades_on(1, BTC, 2))
        await fault(sim, kind="stall", seconds=12)
        events = await read_until(ws, lambda ev: bool(disconnects(ev)))
        stall = (await sim_get(sim, "faults"))[0]
    assert disconnects(events)[0].reason == "no frame within 3.0 s after ping"
    assert stall["start_ms"] < disconnects(events)[0].at_ms < stall["end_ms"]


async def test_a_stall_narrowed_to_the_instrument_keeps_the_connection_and_loses_nothing() -> None:
    # after a ping is answered the keepalive looks again only at the ping's deadline (``pong_timeout_s``), so a
    # silent instrument gets a ping about every second here: a 3 s stall sees about three, the test asks for two
    async with simulator() as sim, session(sim, ping_after_s=0.2, pong_timeout_s=1.0) as ws:
        ws.subscribe(trades_all(BTC))
        events = await read_until(ws, has_trades_on(1, BTC, 3))
        await fault(sim, kind="stall", seconds=3.0, instId=BTC)
        events += await read_until(ws, lambda ev: sum(isinstance(e, Pong) for e in ev) >= 2)
        events += await read_until(ws, has_trades_on(1, BTC, 40))
        await assert_equals_tape(sim, BTC, [t for _, t in trades_by_conn(events, BTC)])
    assert disconnects(events) == [] and connected(events) == [1]


async def test_notice_64008_makes_before_it_breaks_and_no_trade_is_missed() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC, ETH))
        events = await read_until(ws, has_trades_on(1, BTC, 5))
        await fault(sim, kind="notice", seconds=0.5)
        events += await read_until(ws, lambda ev: all(has_trades_on(2, i, 20)(ev) for i in (BTC, ETH)))
        for inst_id in (BTC, ETH):
            await assert_equals_tape(sim, inst_id, [t for _, t in trades_by_conn(events, inst_id)])
    assert connected(events) == [1, 2]
    planned = disconnects(events)
    assert [(d.conn_number, d.reason, d.will_reconnect) for d in planned] == [
        (1, "planned reconnect (64008 notice)", True)
    ]
    # the successor was subscribed before the old connection was dropped
    acked_2 = max(i for i, e in enumerate(events) if isinstance(e, Subscribed))
    assert acked_2 < events.index(planned[0])


def trade_after(inst_id: str, ts_ms: int) -> Callable[[list[Event]], bool]:
    """A trade of ``inst_id`` newer than ``ts_ms`` arrived: on one connection, every frame before it did too."""
    return lambda events: any(t.ts_ms > ts_ms for _, t in trades_by_conn(events, inst_id))


async def run_fault(ws: OkxWebSocket, sim: SimulatorServer, **body: Any) -> list[Event]:
    """Events from before a timed fault until a trade 1.5 s newer than its end (a reordered push is held up to
    1 s). Taker orders cluster fills, so the fault lasts 2 s at 60 fills/s: frames are sure to fall in it."""
    events = await read_until(ws, has_trades_on(1, BTC, 2))
    await fault(sim, seconds=2.0, **body)
    end_ms = (await sim_get(sim, "faults"))[0]["end_ms"]
    return events + await read_until(ws, trade_after(BTC, end_ms + 1_500))


async def test_malformed_frames_are_rejected_with_their_text_and_the_connection_stays() -> None:
    async with simulator(trade_rate=60.0) as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        events = await run_fault(ws, sim, kind="malformed", rate=1.0)
        log = await sim_get(sim, "faults/log")
    rejected = [e.text for e in events if isinstance(e, Rejected)]
    assert rejected and rejected == [entry["frame"] for entry in log]
    assert disconnects(events) == [] and connected(events) == [1]


@pytest.mark.parametrize("kind", ["duplicate", "reorder"])
async def test_duplicated_and_reordered_pushes_pass_through_on_one_connection(kind: str) -> None:
    async with simulator(trade_rate=60.0) as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC))
        events = await run_fault(ws, sim, kind=kind, rate=0.5)
        trades = [t for _, t in trades_by_conn(events, BTC)]
        await assert_equals_tape(sim, BTC, trades)
    ids = [t.trade_id for t in trades]
    assert disconnects(events) == []
    if kind == "duplicate":
        assert len(ids) > len(set(ids))
    else:
        assert ids != sorted(ids)


async def test_refused_connections_back_off_within_three_connects_per_second() -> None:
    readings: list[int] = []

    def clock() -> int:  # the limiter's clock; its last reading before a connect is that grant's time
        readings.append(monotonic_ms())
        return readings[-1]

    grants: list[int] = []

    async def counting_connect(url: str) -> ClientConnection:
        grants.append(readings[-1])
        return await default_connect(url)

    def eager() -> Iterator[float]:  # no backoff at all: the limiter alone must hold the rate
        return backoff(initial_s=0.001, max_s=0.001, jitter=0.0)

    limiter = RateLimiter(quotas={CONNECT_KEY: WS_CONNECT_QUOTA}, headroom=1.0, clock=clock)
    async with simulator() as sim:
        await fault(sim, kind="refuse", seconds=1.5)
        async with session(sim, connect=counting_connect, backoff=eager, connect_limiter=limiter) as ws:
            ws.subscribe(trades_all(BTC))
            events = await read_until(ws, has_trades_on(1, BTC, 3))
    assert len(grants) >= 4 and connected(events) == [1]
    assert max(sum(1 for t in grants if s <= t < s + 1_000) for s in grants) == 3


async def test_login_before_subscribing_and_again_after_a_reconnect() -> None:
    # a login timeout far beyond read_until's wait: the session must go on at the answer, not at the timeout
    async with simulator() as sim, session(sim, credentials=GOOD_CREDENTIALS, login_timeout_s=60) as ws:
        ws.subscribe(trades_all(BTC))
        events = await read_until(ws, has_trades_on(1, BTC, 2))
        await fault(sim, kind="drop")
        events += await read_until(ws, has_trades_on(2, BTC, 2))
    order = [type(e).__name__ for e in events if isinstance(e, LoggedIn | Connected | Subscribed)]
    assert order == ["LoggedIn", "Connected", "Subscribed"] * 2


async def test_bad_credentials_are_fatal_and_the_secret_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    secret, passphrase = "s3cr3t-value-xyz", "pass-phrase-xyz"
    bad = Credentials.of(api_key="sim-api-key", secret=secret, passphrase=passphrase)
    attempts: list[str] = []

    async def counting_connect(url: str) -> ClientConnection:
        attempts.append(url)
        return await default_connect(url)

    caplog.set_level(logging.DEBUG)
    async with simulator() as sim, session(sim, credentials=bad, connect=counting_connect) as ws:
        ws.subscribe(trades_all(BTC))
        events: list[Event] = []
        with pytest.raises(ApiError) as raised:
            await read_until(ws, lambda ev: False, into=events)
    assert [(d.conn_number, d.will_reconnect) for d in disconnects(events)] == [(1, False)]
    assert raised.value.code == "60009" and not raised.value.retryable
    assert len(attempts) == 1
    text = " ".join([caplog.text, str(raised.value), repr(raised.value), repr(ws.__dict__)])
    assert secret not in text and passphrase not in text
    assert "60009" in caplog.text


async def test_60018_on_one_instrument_never_stops_the_others() -> None:
    async with simulator() as sim, session(sim) as ws:
        ws.subscribe(trades_all(BTC, "NOPE-USDT", ETH))
        events = await read_until(ws, lambda ev: all(has_trades_on(1, i, 10)(ev) for i in (BTC, ETH)))
        subscriptions = ws.subscriptions
    failed = [e for e in events if isinstance(e, SubscriptionFailed)]
    assert [(f.arg, f.code) for f in failed] == [
        (ChannelArg(channel="trades-all", inst_id="NOPE-USDT"), "60018")
    ]
    assert subscriptions == tuple(trades_all(BTC, ETH))
    assert disconnects(events) == []


async def test_a_refused_handshake_is_a_retryable_transport_error() -> None:
    async with simulator() as sim:
        await fault(sim, kind="refuse", seconds=5)
        ws = OkxWebSocket(url=sim.ws_business_url, name="t", connect_limiter=connect_limiter())
        with pytest.raises(TransportError) as raised:
            await ws._open()
    assert raised.value.retryable
