"""REST against a running simulator: envelopes, layouts from real samples, paging, errors, limits."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import httpx
from sim_helpers import FIXED_NOW_MS, ccxt_frame, is_data, key_types, load_fixture, on_grid, tape

from okx_simulator import SPECS, SimulatorConfig, SimulatorServer


async def get(http: httpx.AsyncClient, sim: SimulatorServer, path: str, **params: Any) -> httpx.Response:
    return await http.get(sim.rest_url + path, params=params, headers={"x-simulated-trading": "0"})


async def test_time_and_status(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    r = await get(http, fixed_sim, "/api/v5/public/time")
    assert r.status_code == 200
    assert r.json() == {"code": "0", "data": [{"ts": str(FIXED_NOW_MS)}], "msg": ""}
    assert r.text.startswith('{"code":"0","data":')  # compact, key order of real traffic
    r = await get(http, fixed_sim, "/api/v5/system/status")
    assert r.json() == {"code": "0", "data": [], "msg": ""}


async def test_instruments_match_real_rows(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    body = (await get(http, fixed_sim, "/api/v5/public/instruments", instType="SPOT")).json()
    rows = {row["instId"]: row for row in body["data"]}
    assert list(rows) == list(SPECS)
    real = {row["instId"]: row for row in load_fixture("rest_instruments_spot_2022_rows.json")["data"]}
    for inst_id, row in real.items():
        for key in ("tickSz", "lotSz", "minSz", "baseCcy", "quoteCcy", "instType", "state", "listTime"):
            assert rows[inst_id][key] == row[key], (inst_id, key)
    layout = load_fixture("http_get_instruments_spot.json")["data"][0]
    assert list(rows["BTC-USDT"]) == list(layout)
    assert all(isinstance(v, str) for v in rows["PEPE-USDT"].values())
    one = await get(http, fixed_sim, "/api/v5/public/instruments", instType="SPOT", instId="PEPE-USDT")
    assert [r["tickSz"] for r in one.json()["data"]] == ["0.000000001"]


async def test_derivative_instruments_answer_empty(
    fixed_sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    for params in ({"instType": "SWAP"}, {"instType": "FUTURES"}, {"instType": "OPTION", "uly": "BTC-USD"}):
        r = await get(http, fixed_sim, "/api/v5/public/instruments", **params)
        assert (r.status_code, r.json()) == (200, {"code": "0", "data": [], "msg": ""})
    r = await get(http, fixed_sim, "/api/v5/public/instruments", instType="OPTION")
    assert (r.status_code, r.json()["code"]) == (400, "50014")


async def test_errors_as_okx_gives_them(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    r = await get(http, fixed_sim, "/api/v5/market/ticker", instId="NOPE-USDT")
    assert r.status_code == 200
    assert r.json() == {
        "code": "51001",
        "data": [],
        "msg": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.",
    }
    r = await get(http, fixed_sim, "/api/v5/market/ticker")
    assert (r.status_code, r.json()["code"], r.json()["msg"]) == (
        400,
        "50014",
        "Parameter instId can not be empty.",
    )
    r = await get(http, fixed_sim, "/api/v5/market/candles", instId="BTC-USDT", bar="1h")
    assert (r.status_code, r.json()) == (400, {"code": "51000", "data": [], "msg": "Parameter bar error"})
    r = await get(http, fixed_sim, "/api/v5/market/not-a-thing")
    assert r.status_code == 404
    assert r.json() == load_fixture("http_error_not_found.json")


async def test_ticker_layout_and_consistency(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    row = (await get(http, fixed_sim, "/api/v5/market/ticker", instId="BTC-USDT")).json()["data"][0]
    sample = ccxt_frame("spot ticker", is_data)["data"][0]
    assert key_types(row) == key_types(sample)
    assert Decimal(row["bidPx"]) < Decimal(row["askPx"])
    assert Decimal(row["low24h"]) <= Decimal(row["last"]) <= Decimal(row["high24h"])
    last = (await get(http, fixed_sim, "/api/v5/market/trades", instId="BTC-USDT", limit=1)).json()["data"][0]
    assert (row["last"], row["lastSz"]) == (last["px"], last["sz"])
    many = (await get(http, fixed_sim, "/api/v5/market/tickers", instType="SPOT")).json()["data"]
    assert [t["instId"] for t in many] == list(SPECS)
    assert many[0] == row


async def test_trades_newest_first_on_grid(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    real = load_fixture("http_get_trades.json")["data"][0]
    for inst_id, spec in SPECS.items():
        rows = (await get(http, fixed_sim, "/api/v5/market/trades", instId=inst_id, limit=600)).json()["data"]
        assert len(rows) == 500
        assert [k for k in rows[0] if k != "source"] == list(real)
        ids = [int(r["tradeId"]) for r in rows]
        assert ids == list(range(ids[0], ids[0] - 500, -1))
        assert all(int(r["ts"]) <= FIXED_NOW_MS for r in rows)
        for r in rows:
            assert on_grid(r["px"], str(spec.tick_sz)) and on_grid(r["sz"], str(spec.lot_sz))
            assert (
                Decimal(r["sz"]) >= spec.min_sz and r["side"] in ("buy", "sell") and r["source"] in ("0", "1")
            )
    pepe = (await get(http, fixed_sim, "/api/v5/market/trades", instId="PEPE-USDT")).json()["data"][0]
    assert pepe["px"].startswith("0.0000") and "E" not in pepe["px"]


async def test_history_trades_paging_matches_tape(
    fixed_sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    start = FIXED_NOW_MS - 30 * 60_000
    truth = await tape(http, fixed_sim.control_url, "ETH-USDT", start=start)
    pages: list[dict[str, str]] = []
    params: dict[str, Any] = {"instId": "ETH-USDT"}
    while not pages or int(pages[-1]["ts"]) >= start:
        page = (await get(http, fixed_sim, "/api/v5/market/history-trades", **params)).json()["data"]
        assert 0 < len(page) <= 100
        pages += page
        params["after"] = page[-1]["tradeId"]  # exclusive: no overlap
    got = [r for r in pages if int(r["ts"]) >= start]
    assert list(reversed(got)) == truth
    ids = [int(r["tradeId"]) for r in pages]
    assert ids == list(range(ids[0], ids[0] - len(ids), -1))


async def test_history_trades_bounds(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    newest = (await get(http, fixed_sim, "/api/v5/market/history-trades", instId="SOL-USDT")).json()["data"]
    top = int(newest[0]["tradeId"])
    window = await get(
        http, fixed_sim, "/api/v5/market/history-trades", instId="SOL-USDT", after=top - 3, before=top - 7
    )
    assert [int(r["tradeId"]) for r in window.json()["data"]] == [top - 4, top - 5, top - 6]
    ts_cut = int(newest[50]["ts"])
    by_ts = await get(
        http, fixed_sim, "/api/v5/market/history-trades", instId="SOL-USDT", type=2, after=ts_cut
    )
    rows = by_ts.json()["data"]
    assert rows and all(int(r["ts"]) < ts_cut for r in rows)
    assert int(rows[0]["ts"]) == max(int(r["ts"]) for r in newest if int(r["ts"]) < ts_cut)
    bad = await get(
        http, fixed_sim, "/api/v5/market/history-trades", instId="SOL-USDT", type=2, before=ts_cut
    )
    assert bad.status_code == 200
    assert bad.json() == {
        "code": "50039",
        "data": [],
        "msg": 'Parameter "before" isn\'t supported for timestamp pagination',
    }


async def test_candles_layout_limits_and_truth(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    real = load_fixture("http_get_candlesticks_full.json")["data"]
    body = (await get(http, fixed_sim, "/api/v5/market/candles", instId="BTC-USDT")).json()
    rows = body["data"]
    assert len(rows) == 100 and all(len(r) == len(real[0]) == 9 for r in rows)
    assert all(isinstance(v, str) for r in rows for v in r)
    opens = [int(r[0]) for r in rows]
    assert opens == sorted(opens, reverse=True) and opens[0] == FIXED_NOW_MS - FIXED_NOW_MS % 60_000
    assert rows[0][8] == "0" and {r[8] for r in rows[1:]} == {"1"}
    clamped = await get(http, fixed_sim, "/api/v5/market/history-candles", instId="BTC-USDT", limit=301)
    assert len(clamped.json()["data"]) == 300
    response = await http.get(
        f"{fixed_sim.control_url}/candles", params={"instId": "BTC-USDT", "bar": "1m", "from": opens[-1]}
    )
    truth = [json.loads(line) for line in response.text.splitlines()]
    assert list(reversed(rows)) == truth


async def test_candles_after_before_exclusive(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    rows = (await get(http, fixed_sim, "/api/v5/market/history-candles", instId="UNI-USDT", bar="5m")).json()[
        "data"
    ]
    after, before = int(rows[10][0]), int(rows[15][0])
    page = await get(
        http,
        fixed_sim,
        "/api/v5/market/history-candles",
        instId="UNI-USDT",
        bar="5m",
        after=after,
        before=before,
    )
    assert [r[0] for r in page.json()["data"]] == [rows[i][0] for i in range(11, 15)]


async def test_candles_match_tape_and_carry_quiet_minutes(
    fixed_sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    rows = (
        await get(http, fixed_sim, "/api/v5/market/history-candles", instId="DOGE-USDT", bar="1m", limit=300)
    ).json()["data"]
    oldest = int(rows[-1][0])
    trades = await tape(http, fixed_sim.control_url, "DOGE-USDT", start=oldest)
    by_bar: dict[int, list[dict[str, str]]] = {}
    for trade in trades:
        by_bar.setdefault(int(trade["ts"]) // 60_000 * 60_000, []).append(trade)
    quiet = 0
    for row, older in itertools.pairwise(rows):
        in_bar = by_bar.get(int(row[0]), [])
        if not in_bar:
            quiet += 1
            assert row[1:6] == [older[4]] * 4 + ["0"]  # carries the previous close, zero volume
            continue
        assert row[1] == in_bar[0]["px"] and row[4] == in_bar[-1]["px"]
        assert row[2] == max((t["px"] for t in in_bar), key=Decimal)
        assert row[3] == min((t["px"] for t in in_bar), key=Decimal)
        assert Decimal(row[5]) == sum(Decimal(t["sz"]) for t in in_bar)
        assert Decimal(row[7]) == sum(Decimal(t["sz"]) * Decimal(t["px"]) for t in in_bar)
    assert quiet >= 3, "the market must have quiet minutes (empty candles)"


async def test_bar_alignment(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    # FIXED_NOW_MS is 12:46:30 UTC and the history starts 6 h before (06:46): every bar from the one holding
    # 06:46 to the forming one, newest first, opens at exactly these UTC times.
    day = FIXED_NOW_MS - FIXED_NOW_MS % 86_400_000
    hour = 3_600_000
    expected = {
        "1D": [day - 8 * hour],  # 00:00 UTC+8 = 16:00 UTC the day before
        "1Dutc": [day],
        "6H": [day + 10 * hour, day + 4 * hour],  # 00/06/12/18 UTC+8 = 16/22/04/10 UTC
        "6Hutc": [day + 12 * hour, day + 6 * hour],
        "12Hutc": [day + 12 * hour, day],
        "12H": [day + 4 * hour],  # 00/12 UTC+8 = 16/04 UTC
        "4H": [day + 12 * hour, day + 8 * hour, day + 4 * hour],
    }
    for bar, opens in expected.items():
        rows = (
            await get(http, fixed_sim, "/api/v5/market/history-candles", instId="BTC-USDT", bar=bar)
        ).json()
        assert [int(r[0]) for r in rows["data"]] == opens, bar


async def test_books_layout_and_consistency(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    real = load_fixture("http_get_order_book.json")["data"][0]
    book = (await get(http, fixed_sim, "/api/v5/market/books", instId="BTC-USDT", sz=25)).json()["data"][0]
    assert list(book)[:3] == list(real) and isinstance(book["seqId"], int)
    assert len(book["asks"]) == len(book["bids"]) == 25 and all(
        len(lv) == 4 and lv[2] == "0" for lv in book["asks"]
    )
    asks = [Decimal(a[0]) for a in book["asks"]]
    bids = [Decimal(b[0]) for b in book["bids"]]
    assert asks == sorted(asks) and bids == sorted(bids, reverse=True) and bids[0] < asks[0]
    trades = (await get(http, fixed_sim, "/api/v5/market/trades", instId="BTC-USDT", limit=50)).json()["data"]
    last = next(t for t in trades if t["source"] == "0")
    assert last["px"] == (book["asks"][0][0] if last["side"] == "buy" else book["bids"][0][0])
    full = (await get(http, fixed_sim, "/api/v5/market/books-full", instId="BTC-USDT", sz=1000)).json()[
        "data"
    ][0]
    assert (
        len(full["asks"]) == 1000 and len(full["asks"][0]) == 3 and full["asks"][0][0] == book["asks"][0][0]
    )
    too_deep = await get(http, fixed_sim, "/api/v5/market/books", instId="BTC-USDT", sz=401)
    assert (too_deep.status_code, too_deep.json()["code"]) == (400, "51000")


async def test_rate_limit_window(http: httpx.AsyncClient) -> None:
    now = [FIXED_NOW_MS]
    async with SimulatorServer(config=SimulatorConfig(seed=2), clock=lambda: now[0]) as sim:
        await _rate_limited(sim, http)
        url = "/api/v5/market/history-trades"
        window_end = FIXED_NOW_MS - FIXED_NOW_MS % 2_000 + 2_000  # windows are fixed, aligned to the epoch
        now[0] = window_end - 1  # still the same 2-second window
        assert (await get(http, sim, url, instId="BTC-USDT", limit=1)).status_code == 429
        now[0] = window_end  # the next window: the count starts again
        codes = [(await get(http, sim, url, instId="BTC-USDT", limit=1)).status_code for _ in range(21)]
        assert codes == [200] * 20 + [429]
        stats = (await http.get(sim.control_url + "/stats")).json()
        assert (stats["http_429"], stats["requests"]) == (5, 46)


async def _rate_limited(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    codes = [
        (await get(http, fixed_sim, "/api/v5/market/history-trades", instId="BTC-USDT", limit=1)).status_code
        for _ in range(22)
    ]
    assert codes == [200] * 20 + [429, 429]
    r = await get(http, fixed_sim, "/api/v5/market/history-trades", instId="BTC-USDT")
    assert r.json() == load_fixture("http_error_rate_limit.json")
    assert list(r.json()) == ["msg", "code"]
    other = await get(http, fixed_sim, "/api/v5/market/trades", instId="BTC-USDT", limit=1)
    assert other.status_code == 200  # per-endpoint windows
    stats = (await http.get(fixed_sim.control_url + "/stats")).json()
    assert stats["http_429"] == 3 and stats["requests"] == 24


async def test_private_endpoint_without_credentials(
    fixed_sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    r = await get(http, fixed_sim, "/api/v5/asset/currencies")
    assert r.status_code == 401 and r.json()["code"] == "50103"


async def test_deterministic_per_seed(http: httpx.AsyncClient) -> None:
    async def first_rows(seed: int) -> list[dict[str, str]]:
        config = SimulatorConfig(seed=seed, history_hours=1)
        async with SimulatorServer(config=config, clock=lambda: FIXED_NOW_MS) as sim:
            return await tape(http, sim.control_url, "TON-USDT")

    a, b, c = await first_rows(3), await first_rows(3), await first_rows(4)
    assert a == b and a != c and len(a) > 1000


async def test_before_only_switch(http: httpx.AsyncClient) -> None:
    pages = {}
    for mode in ("newest", "adjacent"):
        config = SimulatorConfig(seed=5, history_hours=1, rate_limits=False, before_only=mode)
        async with SimulatorServer(config=config, clock=lambda: FIXED_NOW_MS) as sim:
            top = (await get(http, sim, "/api/v5/market/trades", instId="BTC-USDT", limit=1)).json()["data"][
                0
            ]
            below = int(top["tradeId"]) - 300
            rows = (
                await get(http, sim, "/api/v5/market/history-trades", instId="BTC-USDT", before=below)
            ).json()
            pages[mode] = [int(r["tradeId"]) for r in rows["data"]]
    top_id = below + 300
    assert pages["newest"] == list(range(top_id, top_id - 100, -1))
    assert pages["adjacent"] == list(range(below + 100, below, -1))


async def test_signed_private_request(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    import base64
    import hashlib
    import hmac

    creds = fixed_sim.config.credentials
    stamp = "2026-08-12T16:06:30.123Z"
    path = "/api/v5/asset/currencies"
    sign = base64.b64encode(
        hmac.new(creds.secret_key.encode(), f"{stamp}GET{path}".encode(), hashlib.sha256).digest()
    )
    headers = {
        "OK-ACCESS-KEY": creds.api_key,
        "OK-ACCESS-SIGN": sign.decode(),
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-PASSPHRASE": creds.passphrase,
        "x-simulated-trading": "1",
    }
    ok = await http.get(fixed_sim.rest_url + path, headers=headers)
    assert (ok.status_code, ok.json()) == (200, {"code": "0", "data": [], "msg": ""})
    bad = await http.get(fixed_sim.rest_url + path, headers={**headers, "OK-ACCESS-SIGN": "nope"})
    assert (bad.status_code, bad.json()["code"]) == (401, "50113")


async def test_tape_bounds(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    whole = await tape(http, fixed_sim.control_url, "UNI-USDT", start=0)
    assert (
        int(whole[0]["ts"]) >= FIXED_NOW_MS - 6 * 3_600_000 - 60_000 and int(whole[-1]["ts"]) <= FIXED_NOW_MS
    )
    ids = [int(t["tradeId"]) for t in whole]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    middle = int(whole[len(whole) // 2]["ts"])
    part = await tape(http, fixed_sim.control_url, "UNI-USDT", start=middle, to=middle + 60_000)
    assert part == [t for t in whole if middle <= int(t["ts"]) < middle + 60_000]
    assert list(part[0]) == ["instId", "side", "sz", "px", "source", "tradeId", "ts"]


async def test_ticker_top_of_book_equals_books(fixed_sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    for inst_id in ("PEPE-USDT", "TON-USDT"):
        tick = (await get(http, fixed_sim, "/api/v5/market/ticker", instId=inst_id)).json()["data"][0]
        book = (await get(http, fixed_sim, "/api/v5/market/books", instId=inst_id)).json()["data"][0]
        assert [tick["askPx"], tick["askSz"]] == book["asks"][0][:2]
        assert [tick["bidPx"], tick["bidSz"]] == book["bids"][0][:2]


async def test_bursts_and_quiet_minutes_in_history(
    fixed_sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    trades = await tape(http, fixed_sim.control_url, "BTC-USDT")
    per_minute: dict[int, int] = {}
    for trade in trades:
        minute = int(trade["ts"]) // 60_000
        per_minute[minute] = per_minute.get(minute, 0) + 1
    minutes = range(min(per_minute), max(per_minute) + 1)
    counts = [per_minute.get(m, 0) for m in minutes]
    mean_rate = 2.0 * 60  # the default trade_rate, per minute
    assert sum(1 for c in counts if c == 0) >= 5
    assert sum(1 for c in counts if c > 3 * mean_rate) >= 3
    assert 0.7 * mean_rate < sorted(counts)[len(counts) // 2] < 1.3 * mean_rate


async def test_history_trades_keep_three_months(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(seed=5, history_hours=24 * 92, rate_limits=False, pairs=("BTC-USDT",))
    async with SimulatorServer(config=config, clock=lambda: FIXED_NOW_MS) as sim:
        day = 86_400_000
        recent = await get(
            http,
            sim,
            "/api/v5/market/history-trades",
            instId="BTC-USDT",
            type=2,
            after=FIXED_NOW_MS - 89 * day,
        )
        old = await get(
            http,
            sim,
            "/api/v5/market/history-trades",
            instId="BTC-USDT",
            type=2,
            after=FIXED_NOW_MS - 91 * day,
        )
        assert len(recent.json()["data"]) == 100 and old.json() == {"code": "0", "data": [], "msg": ""}
        candles = await get(
            http,
            sim,
            "/api/v5/market/history-candles",
            instId="BTC-USDT",
            bar="1D",
            after=FIXED_NOW_MS - 91 * day,
        )
        # Candles reach further back than trades: the two 1D bars (16:00 UTC, 00:00 UTC+8) before `after`, down to
        # the bar holding the 92-day horizon (now is 12:46 UTC, so 91 days ago the bar opened at 16:00 the day before).
        opens = [int(row[0]) for row in candles.json()["data"]]
        first_bar = FIXED_NOW_MS - FIXED_NOW_MS % day - 8 * 3_600_000 - 91 * day
        assert opens == [first_bar, first_bar - day]
        truth = await http.get(
            sim.control_url + "/candles", params={"instId": "BTC-USDT", "bar": "1D", "to": first_bar + 1}
        )
        assert [json.loads(line) for line in truth.text.splitlines()] == list(
            reversed(candles.json()["data"])
        )


async def test_candles_keep_only_latest_1440_bars(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(seed=5, history_hours=26, rate_limits=False, pairs=("ETH-USDT",))
    async with SimulatorServer(config=config, clock=lambda: FIXED_NOW_MS) as sim:
        minute = FIXED_NOW_MS - FIXED_NOW_MS % 60_000
        cut = minute - 1439 * 60_000  # the oldest bar /market/candles still has
        params = {"instId": "ETH-USDT", "bar": "1m", "after": cut + 1}
        recent = (await get(http, sim, "/api/v5/market/candles", **params)).json()["data"]
        assert [int(r[0]) for r in recent] == [cut]
        params["after"] = cut
        assert (await get(http, sim, "/api/v5/market/candles", **params)).json()["data"] == []
        older = (await get(http, sim, "/api/v5/market/history-candles", **params)).json()["data"]
        assert int(older[0][0]) == cut - 60_000 and len(older) == 100


async def test_sim_candles_equal_rest_for_hk_bars(
    fixed_sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    for bar in ("1D", "6H", "4H", "1Dutc"):
        rest = (
            await get(http, fixed_sim, "/api/v5/market/history-candles", instId="SOL-USDT", bar=bar)
        ).json()
        response = await http.get(
            fixed_sim.control_url + "/candles", params={"instId": "SOL-USDT", "bar": bar}
        )
        truth = [json.loads(line) for line in response.text.splitlines()]
        assert list(reversed(rest["data"])) == truth and truth


async def test_utc_bars_switch(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(
        seed=5, history_hours=30, rate_limits=False, hk_aligned=False, pairs=("BTC-USDT",)
    )
    async with SimulatorServer(config=config, clock=lambda: FIXED_NOW_MS) as sim:
        for bar in ("1D", "1Dutc"):
            rows = (await get(http, sim, "/api/v5/market/history-candles", instId="BTC-USDT", bar=bar)).json()
            assert int(rows["data"][0][0]) % 86_400_000 == 0  # 00:00 UTC for both


async def test_rest_trades_aggregated_switch(http: httpx.AsyncClient) -> None:
    config = SimulatorConfig(seed=5, history_hours=1, rate_limits=False, rest_trades_aggregated=True)
    async with SimulatorServer(config=config, clock=lambda: FIXED_NOW_MS) as sim:
        truth = {int(t["tradeId"]): t for t in await tape(http, sim.control_url, "BTC-USDT")}
        rows: list[dict[str, str]] = []
        params: dict[str, Any] = {"instId": "BTC-USDT"}
        for _ in range(3):
            page = (await get(http, sim, "/api/v5/market/history-trades", **params)).json()["data"]
            assert len(page) == 100
            rows += page
            params["after"] = page[-1]["tradeId"]
    assert max(truth) == int(rows[0]["tradeId"])
    for row, older in itertools.pairwise(rows):
        fills = [truth[i] for i in range(int(older["tradeId"]) + 1, int(row["tradeId"]) + 1)]
        assert {f["px"] for f in fills} == {row["px"]} and {f["ts"] for f in fills} == {row["ts"]}
        assert sum(Decimal(f["sz"]) for f in fills) == Decimal(row["sz"])
    assert any(int(a["tradeId"]) - int(b["tradeId"]) > 1 for a, b in itertools.pairwise(rows))
