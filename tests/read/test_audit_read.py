"""Audit of the read API (issue 11): the edges a researcher or a hostile caller reaches, on both databases.

Range bounds finer than a millisecond, instants no database can hold, pair names that cannot be stored,
timeframes finer than the roll-up source, trade ids past 2**53 sharing instants across chunk boundaries, and
every timeframe's stored candles against their roll-up from 1m.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from collectors.errors import QueryError
from collectors.model import SUPPORTED_TIMEFRAMES, Side, Timeframe, Trade
from collectors.read import MarketData
from tests.read.fill import HOUR, T0, assert_exact, engine_candles, grid_trades, write

SUB_MS = timedelta(microseconds=500)


def _ids(md: MarketData, start: object, end: object) -> list[int]:
    return md.trades("DOGE-USDT", start, end)["trade_id"].tolist()  # type: ignore[arg-type]


def test_a_trade_at_exactly_the_end_is_left_out_on_both_databases(
    both: tuple[MarketData, MarketData],
) -> None:
    for md in both:  # DOGE trades 1000, 1001 at T0+5 ms; 1002, 1003 at T0+1005 ms
        assert _ids(md, T0 + 5, T0 + 1005) == [1000, 1001]
        assert _ids(md, T0 + 5, T0 + 1006) == [1000, 1001, 1002, 1003]
        assert _ids(md, T0 + 6, T0 + 1006) == [1002, 1003]


def test_bounds_finer_than_a_millisecond_round_up(both: tuple[MarketData, MarketData]) -> None:
    """Stored instants are whole milliseconds: ``ts < T0+5.5 ms`` holds for a trade at T0+5 ms and
    ``ts >= T0+5.5 ms`` does not, so a bound between two milliseconds acts as the next one."""
    at5 = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(milliseconds=5)
    for md in both:
        assert _ids(md, T0, at5 + SUB_MS) == [1000, 1001]
        assert _ids(md, T0, "2024-01-01T00:00:00.005500Z") == [1000, 1001]
        assert _ids(md, T0, pd.Timestamp(T0 * 1_000_000 + 5_000_001, tz="UTC")) == [1000, 1001]
        assert _ids(md, at5 + SUB_MS, T0 + 1006) == [1002, 1003]
        assert _ids(md, "2024-01-01T00:00:00.0055+00:00", T0 + 1006) == [1002, 1003]


def test_zoned_instants_mean_their_utc_instant_and_days_open_at_utc_midnight(
    both: tuple[MarketData, MarketData],
) -> None:
    new_york = datetime(2023, 12, 31, 19, 0, 0, 5000, tzinfo=ZoneInfo("America/New_York"))  # T0+5 ms
    hong_kong = pd.Timestamp("2024-01-01T08:00:01.005", tz="Asia/Hong_Kong")  # T0+1005 ms
    for md in both:
        assert _ids(md, new_york, hong_kong) == [1000, 1001]
        days = md.candles("BTC-USDT", "1d", "2023-12-31T12:00+08:00", "2024-01-02T08:00+08:00")
        assert days["open_time"].tolist() == [pd.Timestamp("2024-01-01T00:00Z")]  # UTC, not HK midnight


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (T0, 2**63),
        (T0, 10**17),
        (-(10**15), T0),
        (T0, "9999-12-31T23:59:59.999999-01:00"),  # year 10000 in UTC
    ],
)
def test_instants_no_database_holds_are_query_errors_on_both(
    both: tuple[MarketData, MarketData], start: object, end: object
) -> None:
    """SQLite took 10**17 and answered, PostgreSQL raised a StorageError (an overflow in the driver): the same
    call must give the same answer, here a QueryError naming the limit."""
    for md in both:
        with pytest.raises(
            QueryError, match=r"outside 0001-01-01T00:00:00.000Z \.\. 9999-12-31T23:59:59.999Z"
        ):
            md.trades("BTC-USDT", start, end)  # type: ignore[arg-type]


def test_the_widest_range_reads_everything(both: tuple[MarketData, MarketData]) -> None:
    for md in both:
        everything = md.trades("BTC-USDT", "0001-01-01", "9999-12-31T23:59:59.999Z")
        assert len(everything) == len(grid_trades())


@pytest.mark.parametrize("pair", ["BTC\x00-USDT", "btc-usdt", "../../x", "BTC-USDT\n", ""])
def test_a_pair_that_cannot_be_stored_is_a_query_error_on_both(
    both: tuple[MarketData, MarketData], pair: str
) -> None:
    """PostgreSQL refused the NUL byte with a StorageError (a database failure, exit 1 in the CLI) where
    SQLite said 'unknown pair': both now check the name with the exchange's own symbol rule first."""
    for md in both:
        with pytest.raises(QueryError, match="pair"):
            md.trades(pair, T0, T0 + HOUR)


def test_one_second_candles_are_stored_only(both: tuple[MarketData, MarketData]) -> None:
    """1m candles do not nest in 1s: the roll-up raised ValueError (whole range) or ZeroDivisionError
    (chunks). 1s comes from the stored 1s candles only (none here: an empty frame); asking a roll-up is a
    QueryError."""
    for md in both:
        frame = md.candles("BTC-USDT", "1s", T0, T0 + HOUR)
        assert len(frame) == 0 and frame.attrs["origin"] == "stored"
        chunks = list(md.iter_candles("BTC-USDT", "1s", T0, T0 + HOUR))
        assert [len(c) for c in chunks] == [0]
        with pytest.raises(QueryError, match="1s candles cannot be rolled up from 1m"):
            md.candles("BTC-USDT", "1s", T0, T0 + HOUR, origin="rollup")


_VALUES = (
    "open_time", "open", "high", "low", "close", "volume", "quote_volume", "vwap", "trade_count", "buy_volume",
    "sell_volume", "first_trade_id", "last_trade_id", "first_trade_time", "last_trade_time",
)  # fmt: skip


def test_every_timeframe_rolled_up_equals_the_engines_stored_candles(
    both: tuple[MarketData, MarketData],
) -> None:
    """The candle engine's candles of every timeframe the config knows (1m..1w) on the grid trades, stored,
    against the roll-up of the stored 1m candles: the same values, on both databases; chunks of the roll-up
    add up to the whole."""
    names = tuple(t for t in SUPPORTED_TIMEFRAMES if t not in ("1s", "1m"))
    stored = engine_candles(grid_trades(), names)
    for md in both:
        write(md.engine, [c for tf in names for c in stored[tf]])
    start, end = T0 - 7 * 24 * HOUR, T0 + 7 * 24 * HOUR
    for tf in names:
        pg = [md.candles("BTC-USDT", tf, start, end, origin="stored") for md in both]
        rolled = [md.candles("BTC-USDT", tf, start, end, origin="rollup") for md in both]
        assert_exact(pg[0], pg[1])
        assert_exact(rolled[0], rolled[1])
        assert len(pg[0]) == len(stored[tf]) > 0
        assert_exact(rolled[0][list(_VALUES)], pg[0][list(_VALUES)])
        minutes = Timeframe.parse(tf).duration_ms // 60_000
        chunks = list(both[0].iter_candles("BTC-USDT", tf, start, end, origin="rollup", chunk_rows=minutes))
        assert_exact(pd.concat(chunks, ignore_index=True), rolled[0])


def test_a_revised_candle_reads_back_as_its_latest_revision(both: tuple[MarketData, MarketData]) -> None:
    first = engine_candles(grid_trades(), ("1m",))["1m"][0]
    revised = dataclasses.replace(first, close=Decimal("43999.90"), revision=1)
    for md in both:
        write(md.engine, [revised])
        frame = md.candles("BTC-USDT", "1m", T0, T0 + 60_000)
        assert frame["revision"].tolist() == [1] and frame["close"].tolist() == [Decimal("43999.90")]
        hour = md.candles("BTC-USDT", "1h", T0, T0 + HOUR)
        assert hour["open"][0] == first.open and hour["revision"][0] == 0


ID0 = 2**53 - 20  # ids past 2**53: a float would merge neighbours


def _crowd(n: int, per_ts: int) -> list[Trade]:
    return [
        Trade(
            exchange="okx", inst_id="DOGE-USDT", trade_id=ID0 + i, ts_ms=T0 + 10 * HOUR + (i // per_ts),
            price=Decimal("0.07") + Decimal(i) / 10**12, size=Decimal("123456789.12345678"),
            side=Side.BUY, source=None, recv_ms=None,
        )
        for i in range(n)
    ]  # fmt: skip


def test_chunks_cut_runs_of_equal_instants_without_losing_or_repeating_a_trade(
    both: tuple[MarketData, MarketData],
) -> None:
    crowd = _crowd(200, per_ts=7)
    for md in both:
        write(md.engine, crowd)
    start, end = T0 + 10 * HOUR, T0 + 11 * HOUR
    whole = [md.trades("DOGE-USDT", start, end) for md in both]
    assert_exact(whole[0], whole[1])
    assert whole[0]["trade_id"].tolist() == [t.trade_id for t in crowd]
    assert str(whole[0]["trade_id"].dtype) == "int64" and whole[0]["trade_id"].iloc[-1] == 2**53 + 179
    assert whole[0]["price"].tolist() == [t.price for t in crowd]
    for rows in (1, 3, 7, 10, 199):
        for md, full in zip(both, whole, strict=True):
            chunks = list(md.iter_trades("DOGE-USDT", start, end, chunk_rows=rows))
            assert all(len(c) <= rows for c in chunks)
            assert_exact(pd.concat(chunks, ignore_index=True), full)
