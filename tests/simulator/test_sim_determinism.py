"""The market is a pure function of (seed, instId, time): servers started hours apart agree value by value."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sim_helpers import FIXED_NOW_MS, on_grid, tape

from okx_simulator import SPECS, SimulatorConfig, SimulatorServer
from okx_simulator.market import Market

MINUTE = 60_000
HOUR = 3_600_000
PAIRS = ("BTC-USDT", "PEPE-USDT")
# Two starts 2 h 1 min (and some ms) apart; with 4 h of history each, about 2 h of tape is common to both.
EARLY = FIXED_NOW_MS
LATE = FIXED_NOW_MS + 2 * HOUR + MINUTE + 4_567


def _config(seed: int) -> SimulatorConfig:
    return SimulatorConfig(seed=seed, history_hours=4, rate_limits=False, pairs=PAIRS)


async def _get(http: httpx.AsyncClient, sim: SimulatorServer, path: str, **params: Any) -> Any:
    response = await http.get(sim.rest_url + path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == "0", body
    return body["data"]


async def _sim_candles(http: httpx.AsyncClient, sim: SimulatorServer, **params: Any) -> list[list[str]]:
    response = await http.get(sim.control_url + "/candles", params=params)
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]


async def _trade_pages(
    http: httpx.AsyncClient, sim: SimulatorServer, inst_id: str, after: int, pages: int
) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for _ in range(pages):
        page = await _get(http, sim, "/api/v5/market/history-trades", instId=inst_id, after=after)
        assert len(page) == 100
        rows += page
        after = int(page[-1]["tradeId"])
    return rows


async def test_servers_started_hours_apart_agree(http: httpx.AsyncClient) -> None:
    early_sim = SimulatorServer(_config(21), clock=lambda: EARLY)
    late_sim = SimulatorServer(_config(21), clock=lambda: LATE)
    async with early_sim, late_sim:
        common_from = LATE - 4 * HOUR - (LATE - 4 * HOUR) % MINUTE  # the late server's history horizon
        common_to = EARLY - EARLY % MINUTE  # whole minutes the early server has seen
        assert common_to - common_from > HOUR
        for inst_id in PAIRS:
            spec = SPECS[inst_id]
            # Ground truth: the same fills, value by value.
            early = await tape(http, early_sim.control_url, inst_id, start=common_from, to=EARLY + 1)
            late = await tape(http, late_sim.control_url, inst_id, start=common_from, to=EARLY + 1)
            assert early == late and len(early) > 5_000
            ids = [int(t["tradeId"]) for t in early]
            assert ids == list(range(ids[0], ids[0] + len(ids)))
            assert all(on_grid(t["px"], str(spec.tick_sz)) for t in early[:500])
            assert all(on_grid(t["sz"], str(spec.lot_sz)) for t in early[:500])

            # history-trades by id: the early server's newest page, then three older pages.
            newest = int(early[-1]["tradeId"])
            early_rows = await _trade_pages(http, early_sim, inst_id, newest + 1, 4)
            late_rows = await _trade_pages(http, late_sim, inst_id, newest + 1, 4)
            assert early_rows == late_rows and int(early_rows[0]["tradeId"]) == newest
            assert early_rows == list(reversed(early[-400:]))
            # history-trades by timestamp, in the middle of the common range.
            middle = common_from + 45 * MINUTE + 123
            by_ts = [
                await _get(http, sim, "/api/v5/market/history-trades", instId=inst_id, type=2, after=middle)
                for sim in (early_sim, late_sim)
            ]
            assert by_ts[0] == by_ts[1] and len(by_ts[0]) == 100 and int(by_ts[0][0]["ts"]) < middle

            # OKX candles of the common range: REST history-candles and /sim/candles.
            for bar, length in (("1m", MINUTE), ("5m", 5 * MINUTE), ("15m", 15 * MINUTE), ("1H", HOUR)):
                # Bars wholly inside the common range: closed on both servers, fully visible on both.
                after = EARLY - EARLY % length
                params = {"instId": inst_id, "bar": bar, "after": after, "before": common_from - 1}
                pair = [
                    await _get(http, sim, "/api/v5/market/history-candles", **params)
                    for sim in (early_sim, late_sim)
                ]
                assert pair[0] == pair[1] and pair[0], bar
                assert all(row[8] == "1" for row in pair[0])
            truth = [
                await _sim_candles(
                    http, sim, instId=inst_id, bar="1m", **{"from": common_from, "to": common_to}
                )
                for sim in (early_sim, late_sim)
            ]
            assert truth[0] == truth[1] and len(truth[0]) == (common_to - common_from) // MINUTE
            assert any(row[5] == "0" for row in truth[0])  # quiet minutes carry the close, as OKX's do


async def test_another_seed_gives_another_tape(http: httpx.AsyncClient) -> None:
    async with (
        SimulatorServer(_config(21), clock=lambda: EARLY) as one,
        SimulatorServer(_config(22), clock=lambda: EARLY) as other,
    ):
        start = EARLY - HOUR
        a = await tape(http, one.control_url, "BTC-USDT", start=start)
        b = await tape(http, other.control_url, "BTC-USDT", start=start)
        assert a and b and a != b
        assert {t["tradeId"] for t in a}.isdisjoint(t["tradeId"] for t in b)
        assert [t["px"] for t in a[:50]] != [t["px"] for t in b[:50]]
        bars = [
            await _get(http, sim, "/api/v5/market/history-candles", instId="BTC-USDT", bar="5m")
            for sim in (one, other)
        ]
        assert bars[0] != bars[1]


def test_book_and_ticker_do_not_depend_on_the_start() -> None:
    """Book, last trade and start-of-day prices at a common instant; 24 h statistics too once both servers
    keep 24 h of history (they only cover the visible tape)."""
    config = SimulatorConfig(seed=21, trade_rate=0.2, history_hours=36, pairs=("TON-USDT",))
    markets = []
    for start in (EARLY, LATE):
        horizon = start - 36 * HOUR
        markets.append(Market(config=config, history_from_ms=horizon - horizon % MINUTE, live_from_ms=start))
    early, late = (m.instruments["TON-USDT"] for m in markets)
    for at in (EARLY - 7 * HOUR - 1, EARLY - 1_234, EARLY):
        assert early.book_at(at, 400) == late.book_at(at, 400)
        assert early.ticker(at) == late.ticker(at)
        assert early.seq_at(at, slot=4) == late.seq_at(at, slot=4)


def test_firehose_history_is_the_plain_tape() -> None:
    """With a distinct live rate, the tape before the start's minute is still the pure tape at the history rate;
    the firehose rate begins at the first chunk after the start, and ids stay contiguous across the switch."""
    plain = SimulatorConfig(seed=3, trade_rate=2, history_hours=1, pairs=("ETH-USDT",))
    fire = SimulatorConfig(
        seed=3, trade_rate=3_000, history_trade_rate=2, chunk_ms=1_000, history_hours=1, pairs=("ETH-USDT",)
    )
    start = EARLY
    horizon = start - HOUR - (start - HOUR) % MINUTE
    tapes = [
        Market(config=c, history_from_ms=horizon, live_from_ms=start).instruments["ETH-USDT"].tape
        for c in (plain, fire)
    ]
    start_minute = start - start % MINUTE
    assert tapes[0].between(horizon, start_minute) == tapes[1].between(horizon, start_minute)
    switch = start - start % 1_000 + 1_000
    live = tapes[1].between(start, switch + 2_000)
    assert sum(1 for f in live if f.ts_ms >= switch) > 3_000
    ids = [f.trade_id for f in tapes[1].between(horizon, switch + 2_000)]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
