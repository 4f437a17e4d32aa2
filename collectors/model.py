"""Exchange-agnostic market-data types.

Invariants every type here keeps:

* Prices and sizes are :class:`decimal.Decimal`, exactly as the exchange sent them (``Decimal("43210.50")``
  keeps its trailing zero). Never ``float``. Vectorised batch code may convert them to integer multiples of the
  instrument's tick and lot size (:meth:`Instrument.price_ticks`), which is exact too.
* Timestamps are ``int`` milliseconds since the Unix epoch, UTC, and their names end in ``_ms``.
  ``ts_ms`` is the exchange's event time; ``recv_ms`` is when our process received the message.
* Every type is frozen, slotted and keyword-only: ``Trade(price=..., size=...)``, never positional.

Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Final, Protocol, TypeVar

__all__ = [
    "DEFAULT_TIMEFRAMES",
    "SUPPORTED_TIMEFRAMES",
    "BookLevel",
    "BookSnapshot",
    "Candle",
    "CandleSource",
    "DataType",
    "Instrument",
    "Side",
    "Ticker",
    "Timeframe",
    "Trade",
    "format_decimal",
    "new_trade",
    "validate_inst_id",
]

_MS_PER: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
SUPPORTED_TIMEFRAMES: Final = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "12h",
    "1d",
    "1w",
)
DEFAULT_TIMEFRAMES: Final = ("1m", "5m", "15m", "1h", "4h", "1d")
# 1970-01-01 was a Thursday; weekly buckets open on Monday 00:00 UTC, four days later.
_WEEK_OFFSET_MS: Final = 4 * 86_400_000

_Times = TypeVar("_Times", bound="_Modular")


class _Modular(Protocol):
    """Millisecond times: an ``int``, or a numpy integer array in the vectorised batch path."""

    def __sub__(self: _Times, other: Any, /) -> _Times: ...

    def __mod__(self: _Times, other: int, /) -> _Times: ...


def format_decimal(value: Decimal) -> str:
    """Plain positional text of ``value`` (no exponent), keeping its scale: ``1E-8`` -> ``"0.00000001"``."""
    return format(value, "f")


class Side(str, Enum):
    """Taker side of a trade."""

    BUY = "buy"
    SELL = "sell"


class DataType(str, Enum):
    """Kinds of data tracked in the coverage ledger and in validation."""

    TRADES = "trades"
    BOOK = "book"
    TICKERS = "tickers"
    CANDLES = "candles"


class CandleSource(str, Enum):
    """Which path produced a candle row."""

    LIVE = "live"
    BACKFILL = "backfill"
    REAGGREGATE = "reaggregate"


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A candle duration aligned to UTC: the one place that says where buckets open and which nest.

    Buckets are half-open ``[start, start + duration_ms)``. Buckets of up to one day open at multiples of the
    duration since the Unix epoch (so ``1d`` opens at 00:00 UTC and ``4h`` at 00:00, 04:00, ... UTC); ``1w``
    opens on Monday 00:00 UTC (:attr:`offset_ms` after a multiple of a week).
    """

    name: str
    duration_ms: int

    @classmethod
    def parse(cls, name: str) -> Timeframe:
        """``"5m"`` -> ``Timeframe(name="5m", duration_ms=300000)``; raises ``ValueError`` for unsupported names."""
        if name not in SUPPORTED_TIMEFRAMES:
            raise ValueError(f"unknown timeframe {name!r}; supported: {', '.join(SUPPORTED_TIMEFRAMES)}")
        return cls(name=name, duration_ms=int(name[:-1]) * _MS_PER[name[-1]])

    @property
    def offset_ms(self) -> int:
        """Where bucket starts fall modulo ``duration_ms``: 0, except Monday 00:00 UTC for ``1w``."""
        return _WEEK_OFFSET_MS if self.name == "1w" else 0

    def bucket_start_ms(self, ts_ms: _Times) -> _Times:
        """Open time of the bucket that contains ``ts_ms`` (an ``int``, or elementwise an int64 array)."""
        return ts_ms - (ts_ms - self.offset_ms) % self.duration_ms

    def bucket_end_ms(self, ts_ms: int) -> int:
        """End (exclusive) of the bucket that contains ``ts_ms``: the next bucket's open time."""
        return self.bucket_start_ms(ts_ms) + self.duration_ms

    def nests_in(self, other: Timeframe) -> bool:
        """Whether every bucket of ``other`` is a union of whole buckets of this timeframe (1m in 1w: yes;
        5m in 3m: no; 1d in 1w: yes, the week opens on a day edge)."""
        if other.duration_ms % self.duration_ms:
            return False
        return (other.offset_ms - self.offset_ms) % self.duration_ms == 0

    def __str__(self) -> str:
        return self.name


_INST_ID = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """A tradable spot instrument and its precision rules."""

    exchange: str
    inst_id: str
    base_ccy: str
    quote_ccy: str
    tick_size: Decimal
    lot_size: Decimal
    min_size: Decimal
    inst_type: str = "SPOT"
    state: str = "live"
    list_time_ms: int | None = None

    def price_ticks(self, price: Decimal) -> int:
        """``price`` as an integer number of ticks; raises ``ValueError`` if it is off the tick grid."""
        return _to_steps(price, self.tick_size, "price")

    def size_lots(self, size: Decimal) -> int:
        """``size`` as an integer number of lots; raises ``ValueError`` if it is off the lot grid."""
        return _to_steps(size, self.lot_size, "size")


def _to_steps(value: Decimal, step: Decimal, what: str) -> int:
    steps, remainder = divmod(value, step)
    if remainder != 0:
        raise ValueError(f"{what} {value} is not a multiple of {step}")
    return int(steps)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One fill on the public tape."""

    exchange: str
    inst_id: str
    trade_id: int
    ts_ms: int
    price: Decimal
    size: Decimal
    side: Side
    recv_ms: int | None = None
    # OKX's ``source``: "0" normal order, "1" enhanced liquidity program (ELP) fill.
    source: str | None = None


class _TradeBuilder:
    """Fills a :class:`Trade`'s slots with plain stores, then becomes a ``Trade`` (a hot path's constructor).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (the frozen
    ``__setattr__`` refuses plain stores), about 6x the cost of this; a parser building one trade per frame
    pays it on every frame. This class has the same slots in the same order, so switching the instance's
    class is allowed (CPython checks the layouts match) and yields an ordinary ``Trade``: frozen, equal and
    hashing as if built by keyword. Positional, so only for code that names every field in order
    (:data:`new_trade`); ``tests/test_model.py`` checks the slot lists stay the same.
    """

    __slots__ = Trade.__slots__  # dataclass(slots=True) set it: the same names, in order

    def __init__(
        self,
        exchange: str,
        inst_id: str,
        trade_id: int,
        ts_ms: int,
        price: Decimal,
        size: Decimal,
        side: Side,
        recv_ms: int | None,
        source: str | None,
    ) -> None:
        self.exchange = exchange
        self.inst_id = inst_id
        self.trade_id = trade_id
        self.ts_ms = ts_ms
        self.price = price
        self.size = size
        self.side = side
        self.recv_ms = recv_ms
        self.source = source
        self.__class__ = Trade  # type: ignore[assignment]


new_trade: Final[Callable[[str, str, int, int, Decimal, Decimal, Side, int | None, str | None], Trade]] = (
    _TradeBuilder  # type: ignore[assignment]  # its instances become Trade in __init__
)
"""``new_trade(exchange, inst_id, trade_id, ts_ms, price, size, side, recv_ms, source)``: a :class:`Trade`,
unchecked (pass it to ``collectors.validation.check_trade``), for hot paths; elsewhere use ``Trade(...)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BookLevel:
    """One price level: price, total size, and the number of orders when the exchange says."""

    price: Decimal
    size: Decimal
    orders: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BookSnapshot:
    """The top of an order book at one instant (bids best first, asks best first)."""

    exchange: str
    inst_id: str
    ts_ms: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    seq_id: int | None = None
    recv_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticker:
    """Best bid/ask, last trade and 24 h statistics."""

    exchange: str
    inst_id: str
    ts_ms: int
    last: Decimal
    last_size: Decimal | None = None
    bid_price: Decimal | None = None
    bid_size: Decimal | None = None
    ask_price: Decimal | None = None
    ask_size: Decimal | None = None
    open_24h: Decimal | None = None
    high_24h: Decimal | None = None
    low_24h: Decimal | None = None
    volume_24h: Decimal | None = None  # base currency for spot
    volume_ccy_24h: Decimal | None = None  # quote currency for spot
    recv_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle:
    """OHLCV over ``[open_time_ms, open_time_ms + timeframe)``.

    ``volume`` is in base currency, ``quote_volume`` is the exact sum of price x size. A candle with
    ``trade_count == 0`` is an empty interval carried from the previous close (``carry`` policy).
    ``is_complete`` is False while part of the interval is known to lack data (a disconnect not yet backfilled).
    """

    exchange: str
    inst_id: str
    timeframe: str
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    buy_volume: Decimal
    sell_volume: Decimal
    first_trade_id: int | None = None
    last_trade_id: int | None = None
    first_trade_ms: int | None = None
    last_trade_ms: int | None = None
    is_closed: bool = False
    is_complete: bool = True
    source: CandleSource = CandleSource.LIVE
    revision: int = 0

    @property
    def vwap(self) -> Decimal | None:
        """Volume-weighted average price (a rounded quotient, 28 significant digits); None when empty."""
        if self.volume == 0:
            return None
        return self.quote_volume / self.volume


def validate_inst_id(inst_id: str) -> str:
    """Check a spot pair name of the form ``BASE-QUOTE`` (``BTC-USDT``); returns it or raises ``ValueError``."""
    if not _INST_ID.fullmatch(inst_id):
        raise ValueError(f"unknown pair format {inst_id!r}: expected BASE-QUOTE in capitals, like 'BTC-USDT'")
    return inst_id
