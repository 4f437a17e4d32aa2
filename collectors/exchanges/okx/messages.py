"""OKX wire types: every field of an OKX array gets a name here, and only here are OKX arrays indexed.

A candle comes from REST (``/market/candles``, ``/market/history-candles``, newest first) and from the WS
``candle<bar>`` channel as ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``, all strings (shared/okx/
API.md section 1.5 and 2.2). :class:`OkxCandleRow` names those nine fields with OKX's own names;
:func:`to_exchange_candle` is the one place that turns a row into the stored record
(:class:`~collectors.storage.records.ExchangeCandle`, whose volume columns are ``volume``, ``volume_ccy`` and
``volume_ccy_quote``), and everything downstream (storage, reconciliation) uses that record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from collectors.errors import ParseError
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

        Raises :class:`ParseError` when the row does not fit the wire format (length, non-strings, numbers
        that are not finite decimals, ``confirm`` other than "0"/"1"), and its subclass ``InvalidRecord`` for
        a ``ts`` outside 2000..2100.
        """
        if len(row) != 9 or not all(type(v) is str for v in row) or row[8] not in ("0", "1"):
            raise ParseError(f"OKX candle row must be 9 strings ending in confirm 0/1: {row!r}")
        ts, o, h, low, c, vol, vol_ccy, vol_ccy_quote, confirm = (str(v) for v in row)
        if not ts.isdigit():
            raise ParseError(f"OKX candle ts must be integer milliseconds: {row!r}")
        return cls(
            ts_ms=check_ts_ms(int(ts), "ts"),
            open=_decimal(o, row),
            high=_decimal(h, row),
            low=_decimal(low, row),
            close=_decimal(c, row),
            vol=_decimal(vol, row),
            vol_ccy=_decimal(vol_ccy, row),
            vol_ccy_quote=_decimal(vol_ccy_quote, row),
            confirmed=confirm == "1",
        )


def _decimal(text: str, row: Sequence[object]) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ParseError(f"bad number {text!r} in OKX candle row {row!r}") from exc
    if not value.is_finite():
        raise ParseError(f"non-finite number {text!r} in OKX candle row {row!r}")
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
