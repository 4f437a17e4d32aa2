"""The OKX REST client against the simulator over real sockets.

The simulator, the shared limiter and the client's backoff run on one fake clock (``FakeClock``): every wait of
the limiter or the backoff moves it, so rate windows, fault durations and retries are exact and cost no real
time. The truth is the simulator's ``/sim/tape`` and ``/sim/candles``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web
from builders import INSTRUMENTS, FakeClock, instrument_from_okx_row, load_fixture

from collectors.backoff import backoff
from collectors.errors import ApiError, ParseError, RateLimited, TransportError
from collectors.exchanges.okx.limits import HISTORY_TRADES, OKX_REST_QUOTAS
from collectors.exchanges.okx.messages import parse_candles
from collectors.exchanges.okx.rest import OkxRestClient, RejectedRow, TradeRange
from collectors.model import Trade, format_decimal
from collectors.ratelimit import Quota, RateLimiter
from okx_simulator import SimulatorConfig, SimulatorServer

NOW_MS = 1_786_538_790_123  # 2026-08-12 12:46:30.123 UTC, as the simulator tests use
DAY_MS = 86_400_000


def steady_backoff() -> Iterator[float]:
    return backoff(initial_s=0.5, factor=2.0, max_s=4.0, jitter=0.0)


def fake_sleep(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(round(seconds * 1000))
        await asyncio.sleep(0)

    return sleep


@dataclass
class Rig:
    sim: SimulatorServer
    clock: FakeClock
    limiter: RateLimiter
    http: httpx.AsyncClient

    def client(self, **overrides: Any) -> OkxRestClient:
        options: dict[str, Any] = {
            "base_url": self.sim.rest_url,
            "limiter": self.limiter,
            "http": self.http,
            "backoff": steady_backoff,
            "clock": self.clock,
            "sleep": fake_sleep(self.clock),
            "timeout_s": 5.0,
        }
        return OkxRestClient(**{**options, **overrides})

    async def tape(self, inst_id: str, **bounds: int) -> list[dict[str, str]]:
        params: dict[str, Any] = {"instId": inst_id, **{k.rstrip("_"): v for k, v in bounds.items()}}
        response = await self.http.get(self.sim.control_url + "/tape", params=params)
        assert response.status_code == 200
        return [json.loads(line) for line in response.text.splitlines()]

    async def stats(self) -> dict[str, int]:
        return dict((await self.http.get(self.sim.control_url + "/stats")).json())

    async def fault(self, **body: Any) -> None:
        response = await self.http.post(self.sim.control_url + "/faults", json=body)
        assert response.status_code == 200, response.text

    async def faults(self) -> list[dict[str, Any]]:
        return list((await self.http.get(self.sim.control_url + "/faults")).json())


@asynccontextmanager
async def rig(
    quotas: dict[str, Quota] | None = None, headroom: float = 0.9, **config: Any
) -> AsyncIterator[Rig]:
    clock = FakeClock(NOW_MS)
    settings = {"seed": 5, "history_hours": 2.0, "pairs": ("ETH-USDT", "BTC-USDT"), **config}
    limiter = RateLimiter(
        quotas=quotas or OKX_REST_QUOTAS, headroom=headroom, clock=clock, sleep=fake_sleep(clock)
    )
    async with (
        SimulatorServer(config=SimulatorConfig(**settings), clock=clock) as sim,
        httpx.AsyncClient() as http,
    ):
        yield Rig(sim=sim, clock=clock, limiter=limiter, http=http)


def as_row(trade: Trade) -> dict[str, str | None]:
    """A trade in the simulator's tape layout, numbers as exact text."""
    return {
        "instId": trade.inst_id,
        "side": trade.side.value,
        "sz": format_decimal(trade.size),
        "px": format_decimal(trade.price),
        "source": trade.source,
        "tradeId": str(trade.trade_id),
        "ts": str(trade.ts_ms),
    }


def between(rows: list[dict[str, str]], after_id: int, before_id: int) -> list[dict[str, str]]:
    return [r for r in rows if after_id < int(r["tradeId"]) < before_id]


async def test_instruments_equal_the_simulators() -> None:
    async with rig(pairs=("BTC-USDT", "ETH-USDT", "DOGE-USDT", "PEPE-USDT")) as r, r.client() as client:
        got = await client.instruments()
        rows = (await r.http.get(r.sim.rest_url + "/api/v5/public/instruments?instType=SPOT")).json()["data"]
        assert got == [instrument_from_okx_row(row) for row in rows]
        assert [i.inst_id for i in got] == ["BTC-USDT", "ETH-USDT", "DOGE-USDT", "PEPE-USDT"]
        # the three with a real 2022 OKX row are that row, field for field
        assert got[:3] == [INSTRUMENTS["BTC-USDT"], INSTRUMENTS["ETH-USDT"], INSTRUMENTS["DOGE-USDT"]]
        assert await client.instruments("SWAP") == []


async def test_trades_between_equals_the_tape_and_keeps_the_budget() -> None:
    async with rig() as r, r.client() as client:
        truth = await r.tape("ETH-USDT", from_=NOW_MS - 60 * 60_000)
        after_id, before_id = int(truth[10]["tradeId"]), int(truth[-5]["tradeId"])
        span = before_id - after_id - 1
        assert span == 6_655  # 67 pages
        got = await client.trades_between("ETH-USDT", after_id=after_id, before_id=before_id)
        assert [as_row(t) for t in got.trades] == between(truth, after_id, before_id)
        assert (got.unrecoverable, got.gaps, got.rejected) == (None, (), ())
        pages = math.ceil(span / 100)
        assert got.requests == pages == client.requests
        # 18 requests per 2 s (90 % of OKX's 20): the fake clock moved only while the limiter waited
        assert r.clock() == NOW_MS + 2_000 * ((pages - 1) // 18)
        assert (await r.stats())["http_429"] == 0
        assert all(t.recv_ms is not None and NOW_MS <= t.recv_ms <= r.clock() for t in got.trades)


async def test_trades_between_up_to_the_newest_and_recent_trades() -> None:
    async with rig() as r, r.client() as client:
        truth = await r.tape("BTC-USDT", from_=NOW_MS - 30 * 60_000)
        after_id = int(truth[0]["tradeId"])
        recent = await client.recent_trades("BTC-USDT", limit=300)
        assert [as_row(t) for t in recent] == truth[-300:]
        got = await client.trades_between("BTC-USDT", after_id=after_id)
        # "the newest" is the newest when the first page was read, at NOW_MS: later waits moved the clock
        assert [as_row(t) for t in got.trades] == truth[1:]
        assert r.clock() > NOW_MS
        empty = await client.trades_between("BTC-USDT", after_id=after_id, before_id=after_id + 1)
        assert empty == TradeRange(trades=(), unrecoverable=None, requests=0)


async def test_the_three_month_edge_is_unrecoverable_with_its_exact_span() -> None:
    async with rig(history_hours=24 * 92, pairs=("BTC-USDT",)) as r, r.client() as client:
        edge_ms = NOW_MS - 90 * DAY_MS  # history-trades keeps 90 days (the simulator's default)
        truth = await r.tape("BTC-USDT", from_=edge_ms - 20 * 60_000, to=edge_ms + 20 * 60_000)
        kept = [row for row in truth if int(row["ts"]) >= edge_ms]
        first_kept = int(kept[0]["tradeId"])
        after_id = int(truth[3]["tradeId"])
        assert first_kept - after_id > 100
        before_id = first_kept + 250
        got = await client.trades_between("BTC-USDT", after_id=after_id, before_id=before_id)
        assert [as_row(t) for t in got.trades] == between(truth, first_kept - 1, before_id)
        assert got.unrecoverable == (after_id + 1, first_kept - 1)
        assert (got.gaps, got.requests) == ((), 4)  # 100 + 100 + 50 rows, then the empty page
        nothing = await client.trades_between("BTC-USDT", after_id=after_id, before_id=first_kept)
        assert nothing == TradeRange(trades=(), unrecoverable=(after_id + 1, first_kept - 1), requests=1)


async def test_a_429_storm_slows_paging_down_and_loses_nothing() -> None:
    async with rig() as r, r.client() as client:
        truth = await r.tape("ETH-USDT", from_=NOW_MS - 20 * 60_000)
        after_id, before_id = int(truth[0]["tradeId"]), int(truth[-1]["tradeId"])
        await r.fault(kind="rest_429", seconds=3, path=HISTORY_TRADES)
        got = await client.trades_between("ETH-USDT", after_id=after_id, before_id=before_id)
        assert [as_row(t) for t in got.trades] == truth[1:-1]
        # 429 at +0, +0.5 s, +1.5 s (backoff 0.5, 1, 2 s, the endpoint paused in the limiter); +3.5 s passes
        assert (await r.stats())["http_429"] == 3
        assert got.requests == math.ceil((before_id - after_id - 1) / 100) + 3
        assert [f["hits"] for f in await r.faults()] == [3]


@pytest.mark.parametrize(("status", "code"), [(503, "50001"), (500, "50026")])
async def test_server_errors_are_retried_with_backoff(status: int, code: str) -> None:
    async with rig() as r, r.client() as client:
        truth = await r.tape("ETH-USDT", from_=NOW_MS - 10 * 60_000)
        after_id, before_id = int(truth[0]["tradeId"]), int(truth[-1]["tradeId"]) + 1
        await r.fault(kind="rest_error", status=status, seconds=1, path=HISTORY_TRADES)
        got = await client.trades_between("ETH-USDT", after_id=after_id, before_id=before_id)
        assert [as_row(t) for t in got.trades] == truth[1:]
        assert [f["hits"] for f in await r.faults()] == [2]  # at +0 and +0.5 s; +1.5 s is after the fault
        assert r.clock() == NOW_MS + 1_500


async def test_an_error_that_lasts_is_raised_after_max_attempts() -> None:
    async with rig() as r, r.client(max_attempts=3) as client:
        await r.fault(kind="rest_error", status=503, path=HISTORY_TRADES)
        with pytest.raises(ApiError) as caught:
            await client.trades_between("ETH-USDT", after_id=1)
        assert (caught.value.code, caught.value.retryable, client.requests) == ("50001", True, 3)


async def test_retried_attempts_are_not_logged_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    """An outage retried on every poll of every pair would flood the log: the caller logs the final failure."""
    caplog.set_level(logging.INFO, logger="collectors.exchanges.okx.rest")
    async with rig() as r, r.client(max_attempts=3) as client:
        await r.fault(kind="rest_error", status=503, path=HISTORY_TRADES)
        with pytest.raises(ApiError):
            await client.trades_between("ETH-USDT", after_id=1)
    assert [r.getMessage() for r in caplog.records] == []


async def test_slow_answers_time_out_and_are_retried() -> None:
    async with rig() as r, r.client(timeout_s=0.1) as client:
        truth = await r.tape("ETH-USDT", from_=NOW_MS - 10 * 60_000)
        after_id, before_id = int(truth[0]["tradeId"]), int(truth[-1]["tradeId"]) + 1
        await r.fault(kind="rest_slow", delay_ms=400, seconds=1, path=HISTORY_TRADES)
        got = await client.trades_between("ETH-USDT", after_id=after_id, before_id=before_id)
        assert [as_row(t) for t in got.trades] == truth[1:]
        assert [f["hits"] for f in await r.faults()] == [2]
        assert got.requests == client.requests == 2 + math.ceil(len(truth[1:]) / 100)


async def test_permanent_errors_raise_at_once() -> None:
    async with rig() as r, r.client() as client:
        with pytest.raises(ApiError) as unknown:
            await client.trades_between("XRP-USDT", after_id=1)
        assert (unknown.value.code, unknown.value.retryable, unknown.value.inst_id) == (
            "51001",
            False,
            "XRP-USDT",
        )
        with pytest.raises(ApiError) as bad_bar:
            await client.candles("ETH-USDT", "7m")
        assert (bad_bar.value.code, bad_bar.value.retryable) == ("51000", False)
        assert client.requests == 2 and (await r.stats())["requests"] == 2


async def test_a_refused_connection_is_a_transport_error_retried() -> None:
    limiter = RateLimiter(quotas=OKX_REST_QUOTAS)
    clock = FakeClock(NOW_MS)
    async with (
        httpx.AsyncClient() as http,
        OkxRestClient(
            base_url="http://127.0.0.1:1",
            limiter=limiter,
            http=http,
            max_attempts=3,
            backoff=steady_backoff,
            sleep=fake_sleep(clock),
        ) as client,
    ):
        with pytest.raises(TransportError) as caught:
            await client.instruments()
        assert (caught.value.retryable, client.requests, clock()) == (True, 3, NOW_MS + 1_500)


async def test_two_clients_sharing_one_limiter_stay_within_okxs_window() -> None:
    async with rig() as r, r.client() as eth, r.client() as btc:
        eth_truth = await r.tape("ETH-USDT", from_=NOW_MS - 15 * 60_000)
        btc_truth = await r.tape("BTC-USDT", from_=NOW_MS - 15 * 60_000)
        eth_got, btc_got = await asyncio.gather(
            eth.trades_between("ETH-USDT", after_id=int(eth_truth[0]["tradeId"])),
            btc.trades_between("BTC-USDT", after_id=int(btc_truth[0]["tradeId"])),
        )
        assert [as_row(t) for t in eth_got.trades] == eth_truth[1:]
        assert [as_row(t) for t in btc_got.trades] == btc_truth[1:]
        sent = eth.requests + btc.requests
        assert sent > 20
        stats = await r.stats()
        assert (stats["requests"], stats["http_429"]) == (sent, 0)


async def test_without_the_shared_budget_the_simulator_refuses() -> None:
    # the control of the test above: two limiters (or none) each think they have the whole quota
    loose = {**OKX_REST_QUOTAS, HISTORY_TRADES: Quota(limit=40, window_ms=2_000)}
    async with rig(quotas=loose, headroom=1.0) as r, r.client() as eth, r.client() as btc:
        eth_truth = await r.tape("ETH-USDT", from_=NOW_MS - 15 * 60_000)
        btc_truth = await r.tape("BTC-USDT", from_=NOW_MS - 15 * 60_000)
        eth_got, btc_got = await asyncio.gather(
            eth.trades_between("ETH-USDT", after_id=int(eth_truth[0]["tradeId"])),
            btc.trades_between("BTC-USDT", after_id=int(btc_truth[0]["tradeId"])),
        )
        assert (await r.stats())["http_429"] > 0
        # retried through the limiter: still nothing lost
        assert [as_row(t) for t in eth_got.trades] == eth_truth[1:]
        assert [as_row(t) for t in btc_got.trades] == btc_truth[1:]


async def test_candles_and_history_candles_equal_the_simulators() -> None:
    async with rig() as r, r.client() as client:
        response = await r.http.get(
            r.sim.control_url + "/candles", params={"instId": "ETH-USDT", "bar": "1m"}
        )
        truth = parse_candles(
            [json.loads(line) for line in response.text.splitlines()], inst_id="ETH-USDT", bar="1m"
        )
        assert await client.candles("ETH-USDT", "1m", limit=100) == truth[-100:]
        assert truth[-1].confirmed is False and truth[-2].confirmed is True
        after_ms, before_ms = truth[-10].open_time_ms, truth[-40].open_time_ms
        window = await client.history_candles("ETH-USDT", "1m", after_ms=after_ms, before_ms=before_ms)
        assert window == truth[-39:-10]  # both bounds exclusive


# -- bodies the simulator never sends, from a real socket ------------------------------------------------


@asynccontextmanager
async def serving(body: bytes, status: int = 200) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 that answers every request with ``body``."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def real_trades_body(**changes: str) -> bytes:
    """OKX's real /market/trades answer (2025, D5), the newest row changed by ``changes``."""
    body = load_fixture("http_get_trades.json")
    body["data"][0].update(changes)
    return json.dumps(body).encode()


async def client_for(url: str, http: httpx.AsyncClient) -> OkxRestClient:
    return OkxRestClient(
        base_url=url,
        limiter=RateLimiter(quotas=OKX_REST_QUOTAS),
        http=http,
        max_attempts=2,
        backoff=steady_backoff,
        sleep=fake_sleep(FakeClock()),
    )


async def test_the_real_trades_body_parses() -> None:
    async with serving(real_trades_body()) as url, httpx.AsyncClient() as http:
        client = await client_for(url, http)
        got = await client.recent_trades("BTC-USDT")
        assert [(t.trade_id, format_decimal(t.price), format_decimal(t.size), t.side.value) for t in got] == [
            (734864332, "102537.9", "0.0000125", "buy"),
            (734864333, "102537.9", "0.00013669", "sell"),
        ]


async def test_a_row_breaking_a_domain_rule_is_reported_never_kept() -> None:
    async with serving(real_trades_body(px="-102537.9")) as url, httpx.AsyncClient() as http:
        client = await client_for(url, http)
        got = await client.trades_between("BTC-USDT", after_id=734864331, before_id=734864334)
        assert [t.trade_id for t in got.trades] == [734864332]
        assert got.rejected == (
            RejectedRow(
                trade_id=734864333,
                reason="price=Decimal('-102537.9'): must be a finite number > 0",
                text='{"instId":"BTC-USDT","side":"sell","sz":"0.00013669","px":"-102537.9",'
                '"tradeId":"734864333","ts":"1747087163557"}',
            ),
        )
        assert (got.gaps, got.unrecoverable) == ((), None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"code":"0","msg":"","data":[{"instId":"BTC-USDT"',  # truncated
        b"<html>gateway</html>",
        b'{"code":"0","msg":""}',  # no data
        real_trades_body(side="hold"),  # not OKX's wire form
        real_trades_body(instId="ETH-USDT"),  # another instrument
    ],
)
async def test_a_malformed_body_is_a_parse_error_not_retried(body: bytes) -> None:
    async with serving(body) as url, httpx.AsyncClient() as http:
        client = await client_for(url, http)
        with pytest.raises(ParseError):
            await client.recent_trades("BTC-USDT")
        assert client.requests == 1


async def test_ids_missing_inside_what_rest_returned_are_reported_as_gaps() -> None:
    async with rig(rest_trades_aggregated=True) as r, r.client() as client:
        truth = await r.tape("ETH-USDT", from_=NOW_MS - 10 * 60_000)
        after_id = int(truth[0]["tradeId"])
        got = await client.trades_between("ETH-USDT", after_id=after_id)
        returned = {t.trade_id for t in got.trades}
        missing = {i for lo, hi in got.gaps for i in range(lo, hi + 1)}
        assert returned | missing == {int(row["tradeId"]) for row in truth[1:]}
        assert not returned & missing and missing  # aggregated rows: the merged fills' ids are gaps


async def test_two_clients_on_the_wall_clock_get_no_429() -> None:
    # the defaults as a process runs them: monotonic limiter, asyncio.sleep, the simulator's epoch-aligned
    # 2-second windows on the wall clock (24 pages: one wait of up to 2 s, the only real wait in this file)
    limiter = RateLimiter(quotas=OKX_REST_QUOTAS)
    config = SimulatorConfig(seed=5, history_hours=1.0, pairs=("ETH-USDT", "BTC-USDT"))
    async with SimulatorServer(config=config) as sim, httpx.AsyncClient() as http:
        rig_ = Rig(sim=sim, clock=FakeClock(), limiter=limiter, http=http)
        truths = [await rig_.tape(inst) for inst in ("ETH-USDT", "BTC-USDT")]
        clients = [OkxRestClient(base_url=sim.rest_url, limiter=limiter, http=http) for _ in truths]
        ranges = [(int(t[-1201]["tradeId"]), int(t[-1]["tradeId"]) + 1) for t in truths]
        got = await asyncio.gather(
            *(
                c.trades_between(inst, after_id=lo, before_id=hi)
                for c, inst, (lo, hi) in zip(clients, ("ETH-USDT", "BTC-USDT"), ranges, strict=True)
            )
        )
        for truth, result in zip(truths, got, strict=True):
            assert [as_row(t) for t in result.trades] == truth[-1200:]
        stats = await rig_.stats()
        assert (stats["requests"], stats["http_429"]) == (24, 0)


async def test_the_gateways_404_is_permanent_and_a_lasting_429_is_raised_as_rate_limited() -> None:
    not_found = json.dumps(load_fixture("http_error_not_found.json")).encode()
    async with serving(not_found, status=404) as url, httpx.AsyncClient() as http:
        client = await client_for(url, http)
        with pytest.raises(ApiError) as caught:
            await client.instruments()
        assert (caught.value.code, caught.value.retryable, client.requests) == ("404", False, 1)
    too_many = json.dumps(load_fixture("http_error_rate_limit.json")).encode()
    async with serving(too_many, status=429) as url, httpx.AsyncClient() as http:
        clock = FakeClock(NOW_MS)
        limiter = RateLimiter(quotas=OKX_REST_QUOTAS, clock=clock, sleep=fake_sleep(clock))
        client = OkxRestClient(
            base_url=url, limiter=limiter, http=http, max_attempts=3, backoff=steady_backoff, clock=clock
        )
        with pytest.raises(RateLimited) as limited:
            await client.instruments()
        assert (limited.value.code, client.requests) == ("50011", 3)
        assert clock() == NOW_MS + 1_500  # paused in the limiter for 0.5 s, then 1 s
