"""Field readers shared by the frame parsers: one OKX field in, a checked Python value out.

Each raises :class:`~collectors.errors.ParseError` naming the OKX field when the value is not in OKX's wire
form (numbers are strings in plain decimal notation, ids and timestamps strings of ASCII digits), and
:func:`build_trade` passes the finished :class:`~collectors.model.Trade` through ``collectors.validation``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from collectors.errors import ParseError
from collectors.exchanges.okx.messages import OkxTradeRow
from collectors.model import Side, Trade
from collectors.validation import check_trade

__all__ = ["SIDES", "build_trade", "decimal_field", "digits_field", "frame_text"]

# OKX's wire forms (as in messages.py for candles): ``re.ASCII`` keeps other scripts' digits out, which
# Decimal and int would take; the length bounds keep int() and Decimal() cheap on hostile input.
DIGITS: Final = re.compile(r"\d{1,19}", re.ASCII)
NUMBER: Final = re.compile(r"-?\d{1,40}(?:\.\d{1,40})?", re.ASCII)
SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}


def frame_text(text: str | bytes) -> str:
    """The frame as text for ``rejected_messages``; invalid UTF-8 bytes become backslash escapes."""
    if isinstance(text, str):
        return text
    return bytes(text).decode("utf-8", "backslashreplace")


def digits_field(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    if type(value) is not str or not DIGITS.fullmatch(value):
        raise ParseError(f"{key}={value!r}: must be a string of 1-19 ASCII digits")
    return int(value)


def decimal_field(row: Mapping[str, Any], key: str, label: str | None = None) -> Decimal:
    value = row.get(key)
    if type(value) is not str or not NUMBER.fullmatch(value):
        raise ParseError(f"{label or key}={value!r}: must be a string in plain decimal notation")
    return Decimal(value)


def build_trade(row: OkxTradeRow, inst_id: str, recv_ms: int, count: int) -> tuple[Trade, int]:
    """The validated trade of one ``trades`` / ``trades-all`` row and the number of fills it stands for."""
    trade_id = digits_field(row, "tradeId")
    raw_side = row.get("side")
    side = SIDES.get(raw_side) if type(raw_side) is str else None  # a list or object is unhashable
    if side is None:
        raise ParseError(f"side={raw_side!r}: must be 'buy' or 'sell'")
    source = row.get("source")
    if source is not None and type(source) is not str:
        raise ParseError(f"source={source!r}: must be a string")
    if "seqId" in row and type(row["seqId"]) is not int:
        raise ParseError(f"seqId={row['seqId']!r}: must be an integer")
    if not 1 <= count <= trade_id + 1:
        raise ParseError(f"count={count!r}: must be 1..tradeId+1 (tradeId {trade_id})")
    trade = Trade(
        exchange="okx",
        inst_id=inst_id,
        trade_id=trade_id,
        ts_ms=digits_field(row, "ts"),
        price=decimal_field(row, "px"),
        size=decimal_field(row, "sz"),
        side=side,
        recv_ms=recv_ms,
        source=source,
    )
    return check_trade(trade), count
