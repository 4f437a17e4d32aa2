"""A fast path for the two trade frames that make up most of the traffic, in OKX's own key order.

``trades-all`` (docs and simulator order: instId, tradeId, px, sz, side, source, ts, optional seqId) and
``trades`` (2026 recording order: instId, tradeId, px, sz, side, ts, count, source, seqId), one row each,
compact JSON, no escapes. One regular expression reads such a frame without building a dict.

Contract: :func:`parse_trades_fast` returns the same :class:`TradesPush` that the general path would, or
None, and then the general path decides (anything else: other key orders, whitespace, several rows, escapes,
bytes, a value breaking a domain rule). The fuzz test checks the two paths agree on mutated real frames.
"""

from __future__ import annotations

import re
from typing import Final

from collectors.errors import ParseError
from collectors.exchanges.okx.events import TradesPush
from collectors.exchanges.okx.rows import build_trade

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


def parse_trades_fast(text: object, recv_ms: int) -> TradesPush | None:
    """The push of a one-row trade frame in OKX's key order, or None to let the general path decide."""
    if type(text) is not str or not text.startswith('{"arg":{"channel":"trades'):
        return None
    m = _TRADES_ALL.fullmatch(text)
    if m is not None:
        inst_id, row_inst, trade_id, px, sz, side, source, ts = m.groups()
        channel, count = "trades-all", "1"
    else:
        m = _TRADES.fullmatch(text)
        if m is None:
            return None
        inst_id, row_inst, trade_id, px, sz, side, ts, count, source = m.groups()
        channel = "trades"
    if row_inst != inst_id:
        return None
    row = {"tradeId": trade_id, "px": px, "sz": sz, "side": side, "ts": ts, "source": source}
    try:
        trade, n = build_trade(row, inst_id, recv_ms, int(count))  # type: ignore[arg-type]
    except ParseError:
        return None
    return TradesPush(channel=channel, inst_id=inst_id, trades=(trade,), counts=(n,), recv_ms=recv_ms)
