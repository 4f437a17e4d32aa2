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
from typing import Final, NamedTuple

from collectors.errors import InvalidRecord, ParseError
from collectors.storage.records import ExchangeCandle
from collectors.validation import check_ts_ms

__all__ = ["OkxCandleRow", "parse_candles", "to_exchange_candle"]


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
