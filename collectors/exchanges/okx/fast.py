"""A fast path for the two trade frames that make up most of the traffic, in OKX's own key order.

``trades-all`` (docs and simulator order: instId, tradeId, px, sz, side, source, ts, optional seqId) and
``trades`` (2026 recording order: instId, tradeId, px, sz, side, ts, count, source, seqId), one row each,
compact JSON, no escapes. One regular expression reads and format-checks such a frame without building a dict.

Contract: :func:`parse_trades_fast` returns the same :class:`TradesPush` that the general path would, or
None, and then the general path decides (anything else: other key orders, whitespace, several rows, escapes,
bytes, a value breaking a domain rule). The fuzz test checks the two paths agree on mutated real frames.

Where the time goes (profiled, docs/okx.md): the regex, ``Decimal()``, the frozen dataclasses' ``__init__``
(``object.__setattr__`` per field) and ``check_trade``. So prices and sizes come from a bounded memo (a
``Decimal`` is immutable; prices repeat), and the :class:`Trade` and the push are filled through their slot
descriptors (what their ``__init__`` does, minus the per-field ``object.__setattr__`` lookups) when their
field lists are the ones this module knows; otherwise through the constructors. ``check_trade`` still
validates every trade.
"""

from __future__ import annotations

import re
from dataclasses import fields
from decimal import Decimal
from typing import Any, Final

from collectors.errors import InvalidRecord
from collectors.exchanges.okx.events import TradesPush
from collectors.exchanges.okx.rows import SIDES
from collectors.model import Trade
from collectors.validation import check_trade

__all__ = ["parse_trades_fast"]

_INST: Final = r"([A-Z0-9][A-Z0-9-]{0,63})"
_DIGITS: Final = r"(\d{1,19})"
_NUM: Final = r"(-?\d{1,40}(?:\.\d{1,40})?)"
_SIDE: Final = r"(buy|sell)"
_SOURCE: Final = r"([0-9]{1,16})"
_HEAD: Final = r'\{"arg":\{"channel":"%s","instId":"' + _INST + r'"\},"data":\[\{"instId":"' + _INST + r'",'
_TRADES_ALL: Final = re.compile(
    (_HEAD % "trades-all")
    + rf'"tradeId":"{_DIGITS}","px":"{_NUM}","sz":"{_NUM}","side":"{_SIDE}","source":"{_SOURCE}",'
    + rf'"ts":"{_DIGITS}"(?:,"seqId":-?\d{{1,19}})?\}}\]\}}',
    re.ASCII,
)
_TRADES: Final = re.compile(
    (_HEAD % "trades")
    + rf'"tradeId":"{_DIGITS}","px":"{_NUM}","sz":"{_NUM}","side":"{_SIDE}","ts":"{_DIGITS}",'
    + rf'"count":"{_DIGITS}","source":"{_SOURCE}","seqId":-?\d{{1,19}}\}}\]\}}',
    re.ASCII,
)

# text -> Decimal memo for prices and sizes; cleared when full (bounded memory, no eviction bookkeeping)
_DECIMALS: dict[str, Decimal] = {}
_DECIMALS_MAX: Final = 65_536


def _decimal(text: str) -> Decimal:
    value = _DECIMALS.get(text)
    if value is None:
        if len(_DECIMALS) >= _DECIMALS_MAX:
            _DECIMALS.clear()
        value = _DECIMALS[text] = Decimal(text)
    return value


_TRADE_FIELDS: Final = (
    "exchange",
    "inst_id",
    "trade_id",
    "ts_ms",
    "price",
    "size",
    "side",
    "recv_ms",
    "source",
)
_PUSH_FIELDS: Final = ("channel", "inst_id", "trades", "counts", "recv_ms", "rejected")


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The slot setters of ``cls`` in ``names`` order, or None when its fields are not exactly ``names``."""
    if tuple(f.name for f in fields(cls)) != names or hasattr(cls, "__post_init__"):
        return None
    return tuple(cls.__dict__[name].__set__ for name in names)


_TRADE_SET: Final = _setters(Trade, _TRADE_FIELDS)
_PUSH_SET: Final = _setters(TradesPush, _PUSH_FIELDS)


_new = object.__new__


def _trade(*values: Any) -> Trade:
    if _TRADE_SET is None:
        return Trade(**dict(zip(_TRADE_FIELDS, values, strict=True)))
    exchange, inst_id, trade_id, ts_ms, price, size, side, recv_ms, source = _TRADE_SET
    trade = _new(Trade)
    exchange(trade, values[0]), inst_id(trade, values[1]), trade_id(trade, values[2])
    ts_ms(trade, values[3]), price(trade, values[4]), size(trade, values[5])
    side(trade, values[6]), recv_ms(trade, values[7]), source(trade, values[8])
    return trade


def _push(*values: Any) -> TradesPush:
    if _PUSH_SET is None:
        return TradesPush(**dict(zip(_PUSH_FIELDS, values, strict=True)))
    channel, inst_id, trades, counts, recv_ms, rejected = _PUSH_SET
    push = _new(TradesPush)
    channel(push, values[0]), inst_id(push, values[1]), trades(push, values[2])
    counts(push, values[3]), recv_ms(push, values[4]), rejected(push, values[5])
    return push


def parse_trades_fast(text: object, recv_ms: int) -> TradesPush | None:
    """The push of a one-row trade frame in OKX's key order, or None to let the general path decide."""
    if type(text) is not str or not text.startswith('{"arg":{"channel":"trades'):
        return None
    m = _TRADES_ALL.fullmatch(text)
    if m is not None:
        inst_id, row_inst, trade_id, px, sz, side, source, ts = m.groups()
        channel, count = "trades-all", 1
    else:
        m = _TRADES.fullmatch(text)
        if m is None:
            return None
        inst_id, row_inst, trade_id, px, sz, side, ts, count_text, source = m.groups()
        channel, count = "trades", int(count_text)
    tid = int(trade_id)
    if row_inst != inst_id or not 1 <= count <= tid + 1:
        return None
    trade = _trade("okx", inst_id, tid, int(ts), _decimal(px), _decimal(sz), SIDES[side], recv_ms, source)
    try:
        check_trade(trade)
    except InvalidRecord:  # let the general path build the rejection
        return None
    return _push(channel, inst_id, (trade,), (count,), recv_ms, ())
