"""The rows the read tests put into PostgreSQL and SQLite alike, and an exact frame comparison."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from collectors.candles import reaggregate_trades
from collectors.model import BookLevel, BookSnapshot, Candle, DataType, Side, Ticker, Trade
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.records import CoverageSpan, CoverageStatus, ExchangeCandle
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from tests.builders import BTC, DOGE, MINUTE, MONDAY_MS, grid_trade

T0 = MONDAY_MS  # 2024-01-01 00:00 UTC
HOUR = 60 * MINUTE
# Prices and sizes as the exchange sends them, scale included, and a Decimal built from exponent text.
ODD_PRICES = ("43210.50", "0.00000001", "1e-8", "43210.5", "100", "9.5", "0.10", "123456789.123456789")


def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'read.db'}")
    upgrade(engine)
    return engine


def write(engine: Engine, records: Iterable[Any], now_ms: int = T0 + 10 * HOUR) -> None:
    """Every record through the sink the writer uses (one batch per table)."""
    by_table: dict[Any, list[Any]] = {}
    for record in records:
        spec = spec_for(record)
        by_table.setdefault(spec, []).append(spec.to_row(record, now_ms))
    sink = open_sink(engine)
    try:
        for spec, rows in by_table.items():
            sink.write(spec, rows)
    finally:
        sink.close()


def odd_trades() -> list[Trade]:
    """DOGE-USDT trades with every odd price; two share a ts (the key is (ts, trade_id))."""
    out = []
    for i, price in enumerate(ODD_PRICES):
        out.append(
            Trade(
                exchange="okx", inst_id="DOGE-USDT", trade_id=1000 + i, ts_ms=T0 + 1000 * (i // 2) + 5,
                price=Decimal(price), size=Decimal(ODD_PRICES[-1 - i]), side=Side.BUY if i % 2 else Side.SELL,
                source="0" if i % 3 else None, recv_ms=None if i == 3 else T0 + 1000 * i + 9,
            )
        )  # fmt: skip
    return out


def grid_trades() -> list[Trade]:
    """BTC-USDT trades over 0:00-2:30, a few a minute with gaps of quiet minutes."""
    out = []
    trade_id = 5_000
    for minute in range(150):
        if minute % 7 == 3:
            continue  # a quiet minute: no 1m candle
        for k in range(1 + minute % 4):
            trade_id += 1
            ticks = 430_000 + (minute * 13 + k * 7) % 97
            out.append(
                grid_trade(BTC, trade_id, T0 + minute * MINUTE + k * 9_000 + 17, ticks, 1 + k * 3, k % 2 == 0)
            )
    return out


def engine_candles(trades: list[Trade], timeframes: tuple[str, ...]) -> dict[str, list[Candle]]:
    return reaggregate_trades(trades, exchange="okx", inst_id="BTC-USDT", timeframes=timeframes)


def _level(price: str, size: str, orders: int | None) -> BookLevel:
    return BookLevel(price=Decimal(price), size=Decimal(size), orders=orders)


def everything() -> list[Any]:
    """The same rows for both databases: instruments, trades, 1m candles only, books, tickers, OKX candles
    and coverage spans (a gap inside the collected time, backfilled)."""
    trades = grid_trades()
    one_minute = engine_candles(trades, ("1m",))["1m"]
    books = [
        BookSnapshot(
            exchange="okx", inst_id="DOGE-USDT", ts_ms=T0 + i * 500, seq_id=None if i == 2 else 77 + i,
            bids=(_level(ODD_PRICES[i], "0.10", 3), _level("1e-8", "5", None)),
            asks=() if i == 1 else (_level("43210.50", ODD_PRICES[-1 - i], None),),
            recv_ms=T0 + i * 500 + 3,
        )
        for i in range(4)
    ]  # fmt: skip
    tickers = [
        Ticker(
            exchange="okx", inst_id="DOGE-USDT", ts_ms=T0 + i * 250, last=Decimal(ODD_PRICES[i]),
            last_size=Decimal("0.00000001"), bid_price=None if i == 0 else Decimal("43210.50"),
            bid_size=Decimal("1e-8"), ask_price=Decimal("9.5"), ask_size=Decimal("100"),
            open_24h=Decimal("0.10"), high_24h=None, low_24h=Decimal("1"), volume_24h=Decimal("123.4500"),
            volume_ccy_24h=Decimal("5.0"), recv_ms=None,
        )
        for i in range(5)
    ]  # fmt: skip
    okx_candles = [
        ExchangeCandle(
            exchange="okx", inst_id="BTC-USDT", bar=bar, open_time_ms=T0 + i * HOUR, open=Decimal("43210.50"),
            high=Decimal("43300"), low=Decimal("43000.1"), close=Decimal("43210.5"), volume=Decimal("1e-8"),
            volume_ccy=Decimal("0.00043210"), volume_ccy_quote=Decimal("0.000432105"), confirmed=i == 0,
        )
        for bar in ("1H", "1Dutc")
        for i in range(3)
    ]  # fmt: skip
    coverage = [
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=T0,
                     end_ms=T0 + 150 * MINUTE, status=CoverageStatus.COLLECTED, reason=None),
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=T0 + 20 * MINUTE,
                     end_ms=T0 + 21 * MINUTE, status=CoverageStatus.GAP, reason="disconnect"),
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=T0 + 20 * MINUTE,
                     end_ms=T0 + 21 * MINUTE, status=CoverageStatus.BACKFILLED, reason=None),
        CoverageSpan(exchange="okx", inst_id="DOGE-USDT", data_type=DataType.BOOK, start_ms=T0,
                     end_ms=T0 + MINUTE, status=CoverageStatus.COLLECTED, reason=None),
    ]  # fmt: skip
    return [BTC, DOGE, *trades, *odd_trades(), *one_minute, *books, *tickers, *okx_candles, *coverage]


def cells(frame: pd.DataFrame) -> Iterator[tuple[str, int, str]]:
    for name in frame.columns:
        for i, value in enumerate(frame[name].tolist()):
            yield name, i, f"{type(value).__name__}:{value!r}"


def assert_exact(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, dtypes and, cell by cell, the same type and ``repr`` (a Decimal's scale included:
    ``Decimal('43210.50')`` differs from ``Decimal('43210.5')`` here)."""
    assert list(a.columns) == list(b.columns)
    assert [str(t) for t in a.dtypes] == [str(t) for t in b.dtypes]
    assert len(a) == len(b)
    assert list(cells(a)) == list(cells(b))
