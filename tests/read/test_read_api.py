"""The read API gives the same exact frames on PostgreSQL and SQLite, the values put, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from collectors.errors import QueryError
from collectors.model import Candle, CandleSource, DataType, Timeframe
from collectors.read import MarketData
from collectors.storage.reads import candle_from_row
from collectors.storage.records import CoverageSpan, CoverageStatus
from tests.builders import BTC, MINUTE
from tests.read.fill import (
    HOUR,
    ODD_PRICES,
    T0,
    assert_exact,
    engine_candles,
    grid_trades,
    sqlite_engine,
    write,
)


def _each(pg: MarketData, lite: MarketData, name: str, *args: object, **kwargs: object) -> pd.DataFrame:
    a = getattr(pg, name)(*args, **kwargs)
    b = getattr(lite, name)(*args, **kwargs)
    assert_exact(a, b)
    assert a.attrs == b.attrs
    return a


def test_trades_keep_every_price_exactly_on_both_databases(both: tuple[MarketData, MarketData]) -> None:
    frame = _each(*both, "trades", "DOGE-USDT", T0, T0 + HOUR)
    assert frame["trade_id"].tolist() == list(range(1000, 1000 + len(ODD_PRICES)))
    assert [repr(p) for p in frame["price"]] == [repr(Decimal(p)) for p in ODD_PRICES]
    assert [str(p) for p in frame["price"][:2]] == ["43210.50", "1E-8"]
    assert frame["price"][2] == Decimal("0.00000001")  # '1e-8' read back as the same number and exponent
    assert frame["size"].tolist() == [Decimal(p) for p in reversed(ODD_PRICES)]
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["ts"][0] == pd.Timestamp("2024-01-01T00:00:00.005Z")
    assert frame["ts"][1] == frame["ts"][0]  # same instant, ordered by trade id
    assert pd.isna(frame["recv_time"][3]) and frame["recv_time"][4] == pd.Timestamp(
        "2024-01-01T00:00:04.009Z"
    )
    assert frame["side"].tolist()[:2] == ["sell", "buy"]
    assert frame["source"][0] is None and frame["source"][1] == "0"
    assert frame.attrs == {"kind": "trades", "exchange": "okx", "inst_id": "DOGE-USDT"}


def test_range_is_half_open_and_takes_every_instant_form(both: tuple[MarketData, MarketData]) -> None:
    pg, _ = both
    ids = [1002, 1003, 1004, 1005]  # ts T0+1005 .. T0+2005
    for start, end in (
        (T0 + 1005, T0 + 3005),
        ("2024-01-01T00:00:01.005", "2024-01-01T00:00:03.005Z"),
        (datetime(2024, 1, 1, 8, 0, 1, 5000, tzinfo=timezone(timedelta(hours=8))), pd.Timestamp(T0 + 3005, unit="ms", tz="UTC")),
    ):  # fmt: skip
        assert pg.trades("DOGE-USDT", start, end)["trade_id"].tolist() == ids


def test_chunks_are_keyset_pages_of_the_whole(both: tuple[MarketData, MarketData]) -> None:
    pg, lite = both
    for md in (pg, lite):
        whole = md.trades("DOGE-USDT", T0, T0 + HOUR)
        chunks = list(md.iter_trades("DOGE-USDT", T0, T0 + HOUR, chunk_rows=3))
        assert [len(c) for c in chunks] == [3, 3, 2]  # pages cut inside a run of equal ts too
        assert_exact(pd.concat(chunks, ignore_index=True), whole)
        btc = list(md.iter_trades("BTC-USDT", T0, T0 + 3 * HOUR, chunk_rows=50))
        assert sum(map(len, btc)) == len(grid_trades())
        assert max(map(len, btc)) == 50
    pg_chunks = list(pg.iter_trades("BTC-USDT", T0, T0 + 3 * HOUR, chunk_rows=50))
    lite_chunks = list(lite.iter_trades("BTC-USDT", T0, T0 + 3 * HOUR, chunk_rows=50))
    for a, b in zip(pg_chunks, lite_chunks, strict=True):
        assert_exact(a, b)


def test_stored_candles(both: tuple[MarketData, MarketData]) -> None:
    frame = _each(*both, "candles", "BTC-USDT", "1m", T0, T0 + 10 * MINUTE)
    assert frame.attrs["origin"] == "stored"
    expected = [c for c in engine_candles(grid_trades(), ("1m",))["1m"] if c.open_time_ms < T0 + 10 * MINUTE]
    assert [_candle(r) for r in frame.itertuples()] == expected
    assert len(frame) == 9  # minute 3 was quiet


def _candle(row: object) -> Candle:
    values = {
        k: (int(v.value // 1_000_000) if isinstance(v, pd.Timestamp) else v) for k, v in row._asdict().items()
    }  # type: ignore[attr-defined]
    values = {k: (None if v is pd.NaT else v) for k, v in values.items()}
    return candle_from_row(type("R", (), values))


def test_rolled_up_candles_equal_the_engine_on_the_trades(both: tuple[MarketData, MarketData]) -> None:
    pg, lite = both
    engine = engine_candles(grid_trades(), ("1h", "5m", "1d"))
    for timeframe, end in (("1h", T0 + 3 * HOUR), ("5m", T0 + 150 * MINUTE), ("1d", T0 + 24 * HOUR)):
        frame = _each(pg, lite, "candles", "BTC-USDT", timeframe, T0, end)
        assert frame.attrs["origin"] == "rollup:1m"
        got = [_candle(r) for r in frame.itertuples()]
        want = [c for c in engine[timeframe] if c.open_time_ms < end]
        assert len(got) == len(want) > 0
        for g, w in zip(got, want, strict=True):
            bucket_end = g.open_time_ms + Timeframe.parse(timeframe).duration_ms
            assert g.is_closed is (bucket_end <= T0 + 149 * MINUTE)  # the newest stored minute opens at 2:29
            # watched (collected, the gap backfilled) up to 2:30 only: a bucket ending later is incomplete
            assert g.is_complete is (bucket_end <= T0 + 150 * MINUTE)
            assert (g.open, g.high, g.low, g.close, g.volume, g.quote_volume, g.trade_count) == (
                w.open,
                w.high,
                w.low,
                w.close,
                w.volume,
                w.quote_volume,
                w.trade_count,
            )
            assert (g.buy_volume, g.sell_volume, g.first_trade_id, g.last_trade_id) == (
                w.buy_volume,
                w.sell_volume,
                w.first_trade_id,
                w.last_trade_id,
            )
            assert (g.first_trade_ms, g.last_trade_ms, g.vwap) == (w.first_trade_ms, w.last_trade_ms, w.vwap)
            assert g.source is CandleSource.REAGGREGATE and g.revision == 0
    chunks = list(pg.iter_candles("BTC-USDT", "1h", T0, T0 + 3 * HOUR, chunk_rows=60))
    assert [len(c) for c in chunks] == [1, 1, 1]  # one hour of minutes per chunk
    assert_exact(pd.concat(chunks, ignore_index=True), pg.candles("BTC-USDT", "1h", T0, T0 + 3 * HOUR))


def test_books_tickers_exchange_candles_and_coverage(both: tuple[MarketData, MarketData]) -> None:
    books = _each(*both, "books", "DOGE-USDT", T0, T0 + HOUR)
    assert books["bids"][0] == (
        (Decimal("43210.50"), Decimal("0.10"), 3),
        (Decimal("1E-8"), Decimal("5"), None),
    )
    assert repr(books["bids"][0][0][0]) == "Decimal('43210.50')"
    assert books["asks"][1] == () and books["bid_price"][1] == Decimal("0.00000001")
    assert books["seq_id"].tolist()[:3] == [77, 78, pd.NA] and str(books["seq_id"].dtype) == "Int64"
    tickers = _each(*both, "tickers", "DOGE-USDT", T0, T0 + HOUR)
    assert tickers["last"].tolist() == [Decimal(p) for p in ODD_PRICES[:5]]
    assert tickers["bid_price"][0] is None and repr(tickers["volume_24h"][0]) == "Decimal('123.4500')"
    okx = _each(*both, "exchange_candles", "BTC-USDT", "1h", T0, T0 + 2 * HOUR)  # our name -> OKX's 1H
    assert okx["timeframe"].tolist() == ["1H", "1H"] and okx["confirmed"].tolist() == [True, False]
    assert repr(okx["volume_ccy_quote"][0]) == "Decimal('0.000432105')"
    same = _each(*both, "exchange_candles", "BTC-USDT", "1Dutc", T0, T0 + HOUR)
    assert len(same) == 1
    spans = _each(*both, "coverage", "BTC-USDT", T0 + 20 * MINUTE + 5, T0 + 20 * MINUTE + 6)
    assert spans["status"].tolist() == ["collected", "gap", "backfilled"]
    assert spans["reason"].tolist() == [None, "disconnect", None]
    assert spans["end_time"][1] == pd.Timestamp("2024-01-01T00:21:00Z")
    books_only = _each(*both, "coverage", "DOGE-USDT", T0, T0 + HOUR, data_type="book")
    assert books_only["data_type"].tolist() == ["book"]


def test_empty_reads_have_the_columns_and_dtypes_of_full_ones(both: tuple[MarketData, MarketData]) -> None:
    pg, lite = both
    later = (T0 + 100 * HOUR, T0 + 101 * HOUR)
    for name, args in (("trades", ()), ("candles", ("1m",)), ("candles", ("4h",)), ("books", ())):
        full = getattr(pg, name)("DOGE-USDT" if name == "books" else "BTC-USDT", *args, T0, T0 + 3 * HOUR)
        for md in (pg, lite):
            empty = getattr(md, name)("DOGE-USDT" if name == "books" else "BTC-USDT", *args, *later)
            assert len(empty) == 0 and list(empty.columns) == list(full.columns)
            assert list(map(str, empty.dtypes)) == list(map(str, full.dtypes))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda md: md.trades("XRP-USDT", T0, T0 + HOUR), "unknown pair 'XRP-USDT' on okx: nothing stored for it; known: BTC-USDT, DOGE-USDT"),
        (lambda md: md.trades("BTC-USDT", T0 + HOUR, T0), "empty or reversed range"),
        (lambda md: md.trades("BTC-USDT", T0, T0), "empty or reversed range"),
        (lambda md: md.candles("BTC-USDT", "7m", T0, T0 + HOUR), "unknown timeframe '7m'"),
        (lambda md: md.exchange_candles("BTC-USDT", "7H", T0, T0 + HOUR), "unknown bar '7H' for okx"),
        (lambda md: md.trades("BTC-USDT", "yesterday", T0), "start: not an ISO 8601 date or date-time: 'yesterday'"),
        (lambda md: md.trades("BTC-USDT", datetime(2024, 1, 1), T0 + HOUR), "start: naive datetime 2024-01-01T00:00:00"),
        (lambda md: md.iter_trades("BTC-USDT", T0, T0 + HOUR, chunk_rows=0), "chunk_rows must be a whole number >= 1"),
        (lambda md: md.coverage("BTC-USDT", T0, T0 + HOUR, data_type="quotes"), "unknown data type 'quotes'"),
        (lambda md: md.candles("BTC-USDT", "1h", T0, T0 + HOUR, origin="guess"), "origin must be"),
    ],
)  # fmt: skip
def test_bad_input_is_a_query_error(both: tuple[MarketData, MarketData], call: object, message: str) -> None:
    for md in both:
        with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
            call(md)  # type: ignore[operator]


def test_a_url_reader_owns_its_engine(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    write(engine, [BTC])
    engine.dispose()
    with MarketData(f"sqlite:///{tmp_path / 'read.db'}") as md:
        assert md.pairs() == ["BTC-USDT"]
        assert len(md.trades("BTC-USDT", datetime(2024, 1, 1, tzinfo=UTC), T0 + 1)) == 0


def test_rolled_up_candles_are_incomplete_where_the_ledger_shows_a_loss(
    both: tuple[MarketData, MarketData],
) -> None:
    lost = CoverageSpan(
        exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=T0 + 30 * MINUTE,
        end_ms=T0 + 31 * MINUTE, status=CoverageStatus.UNRECOVERABLE, reason="REST history ends",
    )  # fmt: skip
    for md in both:
        before = md.candles("BTC-USDT", "15m", T0, T0 + HOUR)
        write(md.engine, [lost])
        after = md.candles("BTC-USDT", "15m", T0, T0 + HOUR)
        assert before["is_complete"].tolist() == [True, True, True, True]
        assert after["is_complete"].tolist() == [True, True, False, True]  # 0:30-0:45 holds the lost minute
        assert_exact(after.drop(columns="is_complete"), before.drop(columns="is_complete"))


def test_auto_origin_looks_at_the_range(both: tuple[MarketData, MarketData]) -> None:
    """A timeframe stored only from 2:00 on (added to the config then): earlier ranges are rolled up."""
    late = engine_candles(grid_trades(), ("1h",))["1h"][2]
    for md in both:
        write(md.engine, [late])
        early = md.candles("BTC-USDT", "1h", T0, T0 + 2 * HOUR)
        assert early.attrs["origin"] == "rollup:1m" and len(early) == 2
        stored = md.candles("BTC-USDT", "1h", T0 + 2 * HOUR, T0 + 3 * HOUR)
        assert stored.attrs["origin"] == "stored" and _candle(next(stored.itertuples())) == late
        forced = md.candles("BTC-USDT", "1h", T0 + 2 * HOUR, T0 + 3 * HOUR, origin="rollup")
        assert forced.attrs["origin"] == "rollup:1m" and forced["close"].tolist() == [late.close]
