"""OKX wire types: every field of an OKX array gets a name here, and only here are OKX arrays indexed.

A candle comes from REST (``/market/candles``, ``/market/history-candles``, newest first) and from the WS
``candle<bar>`` channel as ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``, all strings (shared/okx/
API.md section 1.5 and 2.2). :class:`OkxCandleRow` names those nine fields with OKX's own names;
:func:`to_exchange_candle` is the one place that turns a row into the stored record
(:class:`~collectors.storage.records.ExchangeCandle`, whose volume columns are ``volume``, ``volume_ccy`` and
``volume_ccy_quote``), and everything downstream (storage, reconciliation) uses that record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final, NamedTuple, TypedDict

from collectors.errors import InvalidRecord, ParseError
from collectors.storage.records import ExchangeCandle
from collectors.validation import check_ts_ms

__all__ = [
    "EVENT_ERROR",
    "EVENT_LOGIN",
    "EVENT_NOTICE",
    "EVENT_SUBSCRIBE",
    "EVENT_UNSUBSCRIBE",
    "PONG",
    "OkxArg",
    "OkxBookData",
    "OkxBookLevel",
    "OkxCandleRow",
    "OkxTickerRow",
    "OkxTradeRow",
    "parse_candles",
    "to_exchange_candle",
]


class OkxCandleRow(NamedTuple):
    """One OKX candle array with named fields (``ts`` is the bar's open time in ms).

    For SPOT ``vol`` is base volume and ``volCcy`` and ``volCcyQuote`` are quote volume; for derivatives
    ``vol`` is contracts and ``volCcy`` base currency. ``confirm`` "1" means the bar is final.
    """

    ts_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vol: Decimal
    vol_ccy: Decimal
    vol_ccy_quote: Decimal
    confirmed: bool

    @classmethod
    def parse(cls, row: Sequence[object]) -> OkxCandleRow:
        """Parse ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``.

        Raises :class:`ParseError` when the row does not fit the wire format: not 9 ``str`` values, ``ts`` not
        ASCII digits, a number not in OKX's plain decimal form (ASCII digits with an optional ``-`` and
        fraction, at most 64 characters: no exponent, whitespace, underscore, NaN or Infinity), ``confirm``
        other than "0"/"1". Raises its subclass :class:`InvalidRecord` (naming the OKX field) for a row that
        breaks a candle's rules: ``ts`` outside 2000..2100, a price <= 0, a negative volume (``-0`` too), a
        high below the open, close or low, or a low above the open, close or high.
        """
        if len(row) != 9 or not all(type(v) is str for v in row) or row[8] not in ("0", "1"):
            raise ParseError(f"OKX candle row must be 9 strings ending in confirm 0/1: {row!r}")
        ts, o, h, low, c, vol, vol_ccy, vol_ccy_quote, confirm = (str(v) for v in row)
        if not _TS.fullmatch(ts):
            raise ParseError(f"OKX candle ts must be integer milliseconds: {row!r}")
        parsed = cls(
            ts_ms=check_ts_ms(int(ts), "ts"),
            open=_price(o, "o", row),
            high=_price(h, "h", row),
            low=_price(low, "l", row),
            close=_price(c, "c", row),
            vol=_volume(vol, "vol", row),
            vol_ccy=_volume(vol_ccy, "volCcy", row),
            vol_ccy_quote=_volume(vol_ccy_quote, "volCcyQuote", row),
            confirmed=confirm == "1",
        )
        if parsed.low > min(parsed.open, parsed.close, parsed.high):
            raise InvalidRecord(
                f"l={low!r}: above o/c/h in OKX candle row {row!r}", field="l", value=repr(low)
            )
        if parsed.high < max(parsed.open, parsed.close, parsed.low):
            raise InvalidRecord(f"h={h!r}: below o/c/l in OKX candle row {row!r}", field="h", value=repr(h))
        return parsed


# OKX's wire forms: ms timestamps as ASCII digits (at most 19: check_ts_ms bounds the value, and int() of
# thousands of digits raises ValueError), numbers in plain decimal notation. ``re.ASCII`` keeps ``\d`` from
# matching other scripts' digits, which Decimal and int would take.
_TS: Final = re.compile(r"\d{1,19}", re.ASCII)
_NUMBER: Final = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
_MAX_NUMBER_LEN: Final = 64


def _decimal(text: str, field: str, row: Sequence[object]) -> Decimal:
    if len(text) > _MAX_NUMBER_LEN or not _NUMBER.fullmatch(text):
        raise ParseError(f"bad number {text!r} for {field} in OKX candle row {row!r}")
    return Decimal(text)


def _price(text: str, field: str, row: Sequence[object]) -> Decimal:
    value = _decimal(text, field, row)
    if value <= 0:
        raise InvalidRecord(
            f"{field}={text!r}: must be > 0 in OKX candle row {row!r}", field=field, value=repr(text)
        )
    return value


def _volume(text: str, field: str, row: Sequence[object]) -> Decimal:
    value = _decimal(text, field, row)
    if text.startswith("-"):
        raise InvalidRecord(
            f"{field}={text!r}: must be >= 0 in OKX candle row {row!r}", field=field, value=repr(text)
        )
    return value


def to_exchange_candle(row: OkxCandleRow, *, inst_id: str, bar: str) -> ExchangeCandle:
    """The stored record of an OKX candle row: the one conversion between the two models."""
    return ExchangeCandle(
        exchange="okx",
        inst_id=inst_id,
        bar=bar,
        open_time_ms=row.ts_ms,
        open=row.open,
        high=row.high,
        low=row.low,
        close=row.close,
        volume=row.vol,
        volume_ccy=row.vol_ccy,
        volume_ccy_quote=row.vol_ccy_quote,
        confirmed=row.confirmed,
    )


def parse_candles(rows: Iterable[Sequence[object]], *, inst_id: str, bar: str) -> list[ExchangeCandle]:
    """A REST ``data`` array or a WS push's ``data`` as stored records, in the given order; raises ParseError."""
    return [to_exchange_candle(OkxCandleRow.parse(r), inst_id=inst_id, bar=bar) for r in rows]


# --- WebSocket pushes and events (shared/okx/API.md 1.3 and 1.5) -----------------------------------------
# Every OKX field name the WebSocket layer reads is written here and nowhere else; parse.py reads rows through
# these TypedDicts (what arrives is checked field by field before it is trusted: a TypedDict is only a name).


class OkxArg(TypedDict, total=False):
    """``arg`` of a push, an ack or a request: ``{"channel": ..., "instId": ...}``."""

    channel: str
    instId: str


class OkxTradeRow(TypedDict, total=False):
    """A ``trades`` (aggregated) or ``trades-all`` (one fill) row; all strings but ``seqId``.

    ``trades``: ``tradeId`` is the LAST id of the aggregation and ``count`` the number of fills merged, so the
    row covers ids ``tradeId - count + 1 .. tradeId``; 2022 rows have no ``count``, ``source`` or ``seqId``.
    ``trades-all``: one fill, no ``count``; ``seqId`` only on some (the simulator's switch; unverified on OKX).
    """

    instId: str
    tradeId: str
    px: str
    sz: str
    side: str
    ts: str
    count: str
    source: str
    seqId: int


class OkxBookData(TypedDict, total=False):
    """A ``books`` / ``books5`` / ``bbo-tbt`` data object. Levels are ``[px, sz, "0", numOrders]`` strings.

    ``books``: ``action`` (on the frame) "snapshot" or "update", ``checksum`` (int; 0 since 2026),
    ``prevSeqId`` (-1 on a snapshot) and ``seqId``; books5 has ``instId`` and ``seqId``, no checksum.
    """

    asks: list[list[str]]
    bids: list[list[str]]
    instId: str
    ts: str
    checksum: int
    prevSeqId: int
    seqId: int


class OkxTickerRow(TypedDict, total=False):
    """A ``tickers`` row (all strings). Spot: ``vol24h`` base volume, ``volCcy24h`` quote volume."""

    instType: str
    instId: str
    last: str
    lastSz: str
    askPx: str
    askSz: str
    bidPx: str
    bidSz: str
    open24h: str
    high24h: str
    low24h: str
    volCcy24h: str
    vol24h: str
    sodUtc0: str
    sodUtc8: str
    ts: str


class OkxBookLevel(NamedTuple):
    """One book level with OKX's raw strings kept (the legacy checksum is computed over them)."""

    px: str
    sz: str
    orders: str

    @classmethod
    def parse(cls, level: object) -> OkxBookLevel:
        """``[px, sz, "0", numOrders]`` (4 strings; ``numOrders`` ASCII digits); raises :class:`ParseError`."""
        if type(level) is not list or len(level) != 4 or not all(type(v) is str for v in level):
            raise ParseError(f"OKX book level must be 4 strings: {level!r}")
        px, sz, _deprecated, orders = level
        if not _TS.fullmatch(orders):
            raise ParseError(f"OKX book level numOrders must be digits: {level!r}")
        return cls(px=px, sz=sz, orders=orders)


# Event frames: {"event": ..., ...}. "error" carries code and msg; "notice" code 64008; acks carry arg.
EVENT_SUBSCRIBE: Final = "subscribe"
EVENT_UNSUBSCRIBE: Final = "unsubscribe"
EVENT_LOGIN: Final = "login"
EVENT_ERROR: Final = "error"
EVENT_NOTICE: Final = "notice"
PONG: Final = "pong"  # the plain text answer to the plain text "ping"
