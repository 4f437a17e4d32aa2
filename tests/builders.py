"""The one home of test builders: instruments from real recorded OKX rows, trades, candles and a fake clock.

Instruments come from ``tests/fixtures/okx/rest_instruments_spot_2022_rows.json`` (real OKX SPOT rows, see
SOURCES.md there), so tick and lot grids are OKX's own. ``DOGE`` stands in wherever a fine price grid
(0.000001) matters; no real PEPE-USDT row exists in the fixtures, so tests do not invent one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from decimal import Context, Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from collectors.model import Candle, Instrument, Side, Trade

__all__ = [
    "BASE_TS",
    "BTC",
    "DOGE",
    "ETH",
    "ETH_USDC",
    "FIXTURES",
    "INSTRUMENTS",
    "MINUTE",
    "MONDAY_MS",
    "FakeClock",
    "candle",
    "grid_trade",
    "instrument_from_okx_row",
    "load_fixture",
    "trade",
]

FIXTURES: Final = Path(__file__).parent / "fixtures" / "okx"
# A real OKX ts from the 2026 ticker recording.
BASE_TS: Final = 1_786_613_174_873
# 2024-01-01 00:00 UTC was a Monday: a minute, hour, day and week boundary.
MONDAY_MS: Final = 1_704_067_200_000
MINUTE: Final = 60_000
_WIDE: Final = Context(prec=200)  # test data must not be rounded on its way in


def load_fixture(name: str) -> Any:
    """The parsed JSON of ``tests/fixtures/okx/<name>``."""
    return json.loads((FIXTURES / name).read_text())


def instrument_from_okx_row(row: Mapping[str, str]) -> Instrument:
    """A model instrument from one OKX ``/api/v5/public/instruments`` row (strings, as OKX sends them)."""
    return Instrument(
        exchange="okx",
        inst_id=row["instId"],
        base_ccy=row["baseCcy"],
        quote_ccy=row["quoteCcy"],
        tick_size=Decimal(row["tickSz"]),
        lot_size=Decimal(row["lotSz"]),
        min_size=Decimal(row["minSz"]),
        inst_type=row["instType"],
        state=row["state"],
        list_time_ms=int(row["listTime"]) if row.get("listTime") else None,
    )


INSTRUMENTS: Final[Mapping[str, Instrument]] = MappingProxyType(
    {
        row["instId"]: instrument_from_okx_row(row)
        for row in load_fixture("rest_instruments_spot_2022_rows.json")["data"]
    }
)
BTC: Final = INSTRUMENTS["BTC-USDT"]  # tick 0.1, lot 0.00000001
ETH: Final = INSTRUMENTS["ETH-USDT"]  # tick 0.01, lot 0.000001
DOGE: Final = INSTRUMENTS["DOGE-USDT"]  # tick 0.000001, lot 0.000001: the fine price grid
ETH_USDC: Final = INSTRUMENTS["ETH-USDC"]


def trade(
    trade_id: int = 1,
    *,
    inst_id: str = "BTC-USDT",
    ts_ms: int | None = None,
    price: str | Decimal = "63707.3",
    size: str | Decimal = "0.00164251",
    side: Side | None = None,
    recv_ms: int | None = None,
    source: str | None = "0",
    exchange: str = "okx",
) -> Trade:
    """A valid trade with real-looking values. Defaults: ``ts_ms = BASE_TS + trade_id``, the side alternating
    with the id (odd ids buy), ``recv_ms`` 7 ms after ``ts_ms``."""
    ts = BASE_TS + trade_id if ts_ms is None else ts_ms
    return Trade(
        exchange=exchange,
        inst_id=inst_id,
        trade_id=trade_id,
        ts_ms=ts,
        price=Decimal(price),
        size=Decimal(size),
        side=side if side is not None else (Side.BUY if trade_id % 2 else Side.SELL),
        source=source,
        recv_ms=ts + 7 if recv_ms is None else recv_ms,
    )


def grid_trade(instrument: Instrument, trade_id: int, ts_ms: int, ticks: int, lots: int, buy: bool) -> Trade:
    """A trade at exactly ``ticks`` x tick size and ``lots`` x lot size of ``instrument``."""
    return Trade(
        exchange=instrument.exchange,
        inst_id=instrument.inst_id,
        trade_id=trade_id,
        ts_ms=ts_ms,
        price=_WIDE.multiply(Decimal(ticks), instrument.tick_size),
        size=_WIDE.multiply(Decimal(lots), instrument.lot_size),
        side=Side.BUY if buy else Side.SELL,
    )


_CANDLE: Final = Candle(
    exchange="okx",
    inst_id="BTC-USDT",
    timeframe="1m",
    open_time_ms=BASE_TS - BASE_TS % MINUTE,
    open=Decimal("63707.3"),
    high=Decimal("63710"),
    low=Decimal("63700.1"),
    close=Decimal("63709.9"),
    volume=Decimal("0.5"),
    quote_volume=Decimal("31853.65"),
    trade_count=4,
    buy_volume=Decimal("0.3"),
    sell_volume=Decimal("0.2"),
    first_trade_id=1,
    last_trade_id=4,
    first_trade_ms=BASE_TS,
    last_trade_ms=BASE_TS + 30,
)


def candle(**changes: Any) -> Candle:
    """A consistent 1m BTC-USDT candle of four trades; keyword arguments replace fields."""
    return dataclasses.replace(_CANDLE, **changes)


class FakeClock:
    """A millisecond clock the test moves by hand: ``clock()`` reads it, ``clock.advance(ms)`` moves it."""

    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        self.now_ms += ms
        return self.now_ms
