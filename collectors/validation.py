"""Domain checks for records built from outside data: the one place that says what a valid trade, book or ticker is.

Every path that turns exchange data into model records (the WebSocket parser, REST catch-up, backfill) calls
these before the record reaches the candle engine or the writer, so a negative price, an unknown side or a
timestamp from another century is refused once, with a reason, and never stored. Pure: no I/O, no clock.

A failed check raises :class:`~collectors.errors.InvalidRecord` (a :class:`~collectors.errors.ParseError`) that
names the field and the value. The checks are written for the hot path: a valid trade costs a few attribute
reads and comparisons.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from collectors.errors import InvalidRecord
from collectors.model import BookLevel, BookSnapshot, Side, Ticker, Trade

__all__ = [
    "MAX_INST_ID_LEN",
    "MAX_INT64",
    "POSITIVE_REASON",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "check_book_snapshot",
    "check_ticker",
    "check_trade",
    "check_ts_ms",
]

# Exchange timestamps must fall in [2000-01-01, 2100-01-01) UTC; anything else is a unit or parsing error
# (seconds for milliseconds, microseconds, a float).
TS_MIN_MS: Final = 946_684_800_000
TS_MAX_MS: Final = 4_102_444_800_000
# Longest instrument id we store (OKX's longest, option ids like BTC-USD-261225-100000-C, are 25 characters).
MAX_INST_ID_LEN: Final = 64
# Trade ids, sequence ids and counts are stored as 64-bit signed integers.
MAX_INT64: Final = 2**63 - 1
_SIDES: Final = frozenset(Side)
_ZERO: Final = Decimal(0)
_MAX_EXCHANGE_LEN: Final = 32
_MAX_SOURCE_LEN: Final = 16
# Reason texts shared with vectorised checks of the same rules (candles/batch.py).
POSITIVE_REASON: Final = "must be a finite number > 0"


def _fail(field: str, value: object, reason: str) -> InvalidRecord:
    return InvalidRecord(f"{field}={value!r}: {reason}", field=field, value=repr(value))


def check_ts_ms(value: object, field: str = "ts_ms") -> int:
    """``value`` as an epoch-millisecond ``int`` in [2000, 2100); raises :class:`InvalidRecord` otherwise."""
    if type(value) is not int:
        raise _fail(field, value, "must be int epoch milliseconds")
    if not TS_MIN_MS <= value < TS_MAX_MS:
        raise _fail(field, value, "outside 2000-01-01..2100-01-01 UTC")
    return value


def _positive(value: object, field: str) -> None:
    if type(value) is not Decimal:
        raise _fail(field, value, "must be a Decimal")
    if not value.is_finite() or value <= 0:
        raise _fail(field, value, POSITIVE_REASON)


def _non_negative(value: object, field: str) -> None:
    if type(value) is not Decimal:
        raise _fail(field, value, "must be a Decimal")
    if not value.is_finite() or value < 0:
        raise _fail(field, value, "must be a finite number >= 0")


def _text(value: object, field: str, max_len: int) -> None:
    if type(value) is not str or not value:
        raise _fail(field, value, "must be a non-empty str")
    if len(value) > max_len:
        raise _fail(field, value, f"longer than {max_len} characters")
    if "\x00" in value:
        raise _fail(field, value, "contains a NUL character")


def check_trade(trade: Trade) -> Trade:
    """Return ``trade`` if it is a valid fill, else raise :class:`InvalidRecord` naming the first bad field.

    Valid: exchange and inst_id non-empty text; trade_id an int >= 0; ts_ms an int in [2000, 2100);
    price and size finite Decimals > 0; side a :class:`Side` member (the plain string ``"buy"`` is refused:
    callers parse into ``Side``); recv_ms, when given, like ts_ms.

    Every trade of every path passes here, so the valid case is one expression of the same rules (no helper
    calls: about a quarter of the detailed walk's cost); only a trade that fails it takes the walk that names
    the field (:func:`_refuse_trade`).
    """
    exchange, inst_id, trade_id, ts_ms = trade.exchange, trade.inst_id, trade.trade_id, trade.ts_ms
    price, size, recv_ms, source = trade.price, trade.size, trade.recv_ms, trade.source
    if (
        type(exchange) is str and 0 < len(exchange) <= _MAX_EXCHANGE_LEN and "\x00" not in exchange
        and type(inst_id) is str and 0 < len(inst_id) <= MAX_INST_ID_LEN and "\x00" not in inst_id
        and type(trade_id) is int and 0 <= trade_id <= MAX_INT64
        and type(ts_ms) is int and TS_MIN_MS <= ts_ms < TS_MAX_MS
        and type(price) is Decimal and price.is_finite() and price > _ZERO
        and type(size) is Decimal and size.is_finite() and size > _ZERO
        and type(trade.side) is Side
        and (recv_ms is None or (type(recv_ms) is int and TS_MIN_MS <= recv_ms < TS_MAX_MS))
        and (source is None or (type(source) is str and 0 < len(source) <= _MAX_SOURCE_LEN and "\x00" not in source))
    ):  # fmt: skip
        return trade
    _refuse_trade(trade)
    raise AssertionError(f"check_trade and _refuse_trade disagree on {trade!r}")  # unreachable by the test


def _refuse_trade(trade: Trade) -> None:
    """The detailed walk of :func:`check_trade`'s rules: raises for the first bad field."""
    _text(trade.exchange, "exchange", _MAX_EXCHANGE_LEN)
    _text(trade.inst_id, "inst_id", MAX_INST_ID_LEN)
    if type(trade.trade_id) is not int or not 0 <= trade.trade_id <= MAX_INT64:
        raise _fail("trade_id", trade.trade_id, "must be an int in 0..2**63-1")
    check_ts_ms(trade.ts_ms)
    _positive(trade.price, "price")
    _positive(trade.size, "size")
    if type(trade.side) is not Side:
        raise _fail("side", trade.side, f"must be one of {sorted(s.value for s in _SIDES)} as a Side")
    if trade.recv_ms is not None:
        check_ts_ms(trade.recv_ms, "recv_ms")
    if trade.source is not None:
        _text(trade.source, "source", _MAX_SOURCE_LEN)


def _check_levels(levels: tuple[BookLevel, ...], field: str, *, descending: bool) -> None:
    if type(levels) is not tuple:
        raise _fail(field, levels, "must be a tuple of BookLevel")
    previous: Decimal | None = None
    for i, level in enumerate(levels):
        if type(level) is not BookLevel:
            raise _fail(f"{field}[{i}]", level, "must be a BookLevel")
        _positive(level.price, f"{field}[{i}].price")
        _non_negative(level.size, f"{field}[{i}].size")
        if level.orders is not None and (type(level.orders) is not int or not 0 <= level.orders <= MAX_INT64):
            raise _fail(f"{field}[{i}].orders", level.orders, "must be an int in 0..2**63-1")
        if previous is not None and (level.price >= previous if descending else level.price <= previous):
            order = "descending" if descending else "ascending"
            raise _fail(f"{field}[{i}].price", level.price, f"levels must be strictly {order} by price")
        previous = level.price


def check_book_snapshot(book: BookSnapshot) -> BookSnapshot:
    """Return ``book`` if valid: bids strictly descending, asks strictly ascending, prices > 0, sizes >= 0,
    best bid below best ask when both sides are present, timestamps as for trades."""
    _text(book.exchange, "exchange", _MAX_EXCHANGE_LEN)
    _text(book.inst_id, "inst_id", MAX_INST_ID_LEN)
    check_ts_ms(book.ts_ms)
    _check_levels(book.bids, "bids", descending=True)
    _check_levels(book.asks, "asks", descending=False)
    if book.bids and book.asks and book.bids[0].price >= book.asks[0].price:
        raise _fail("bids[0].price", book.bids[0].price, f"crosses the best ask {book.asks[0].price}")
    if book.seq_id is not None and (type(book.seq_id) is not int or abs(book.seq_id) > MAX_INT64):
        raise _fail("seq_id", book.seq_id, "must be a 64-bit int")
    if book.recv_ms is not None:
        check_ts_ms(book.recv_ms, "recv_ms")
    return book


_TICKER_POSITIVE: Final = ("last", "bid_price", "ask_price", "open_24h", "high_24h", "low_24h")
_TICKER_NON_NEGATIVE: Final = ("last_size", "bid_size", "ask_size", "volume_24h", "volume_ccy_24h")


def check_ticker(ticker: Ticker) -> Ticker:
    """Return ``ticker`` if valid: ``last`` and every price present > 0, every size or volume present >= 0.

    A bid above the ask is not refused: a ticker's best bid and ask can be momentarily stale against each other.
    """
    _text(ticker.exchange, "exchange", _MAX_EXCHANGE_LEN)
    _text(ticker.inst_id, "inst_id", MAX_INST_ID_LEN)
    check_ts_ms(ticker.ts_ms)
    for name in _TICKER_POSITIVE:
        value = getattr(ticker, name)
        if value is not None or name == "last":
            _positive(value, name)
    for name in _TICKER_NON_NEGATIVE:
        value = getattr(ticker, name)
        if value is not None:
            _non_negative(value, name)
    if ticker.recv_ms is not None:
        check_ts_ms(ticker.recv_ms, "recv_ms")
    return ticker
