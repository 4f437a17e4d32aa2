"""A fast path for the two trade frames that make up most of the traffic, in OKX's own key order.

``trades-all`` (docs and simulator order: instId, tradeId, px, sz, side, source, ts, optional seqId) and
``trades`` (2026 recording order: instId, tradeId, px, sz, side, ts, count, source, seqId), one row each,
compact JSON, no escapes. One regular expression reads and format-checks such a frame without building a dict:
ids and timestamps ASCII digits, px and sz in plain decimal notation, side ``buy`` or ``sell``, the row's
``instId`` the subscription's (a backreference), ``source`` digits.

Contract: :class:`TradeFastPath` returns the same :class:`TradesPush` that the general path would, or None, and
then the general path decides (anything else: other key orders, whitespace, several rows, escapes, bytes, a
value breaking a domain rule, which the general path turns into a rejection with its reason). Every trade it
returns passed ``collectors.validation.check_trade``. The fuzz test checks the two paths agree on mutated real
frames.

Cost (docs/performance.md, "Parse performance"): the regex, ``int()`` and ``Decimal()`` of the fields, the
model ``Trade`` and the push, ``check_trade``. The records are built by their positional builders
(``new_trade``, ``new_trades_push``: plain slot stores instead of the frozen ``__init__``'s
``object.__setattr__`` per field). Prices and sizes come from a bounded memo of this instance (text ->
``Decimal``; a ``Decimal`` is immutable and prices repeat), so each collector's parser has its own, and a
parser built with ``memo_size=0`` keeps no state at all.

Two implementations of this contract: :class:`TradeFastPath` here (the reference, and the fallback) and the
compiled ``_fastparse.TradeParser`` (``_fastparse.c``: the same frames, the same rules, the same records,
about 5x faster; docs/okx.md, "Fast path"). :func:`new_fast_path` gives the active one:
the compiled one when the extension is importable and ``OKX_COLLECTOR_PURE_PYTHON`` is not ``1``
(read once, at import); :func:`log_active_path` says which, once per process. Either way the general path
(parse.py) decides every frame the fast path leaves.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType
from typing import Final

from collectors.errors import InvalidRecord
from collectors.exchanges.okx.events import TradesPush, new_trades_push
from collectors.exchanges.okx.rows import SIDES
from collectors.model import Side, Trade, new_trade
from collectors.validation import TS_MAX_MS, TS_MIN_MS, check_trade

_fastparse: ModuleType | None
try:
    from collectors.exchanges.okx import _fastparse
except ImportError as exc:  # not built (no C compiler at install): the pure-Python path serves
    _fastparse, _IMPORT_ERROR = None, str(exc)
else:
    _IMPORT_ERROR = ""

__all__ = [
    "ACTIVE_PATH",
    "COMPILED",
    "DEFAULT_MEMO_SIZE",
    "PURE_PYTHON",
    "PURE_PYTHON_ENV",
    "FastPath",
    "TradeFastPath",
    "compiled_available",
    "log_active_path",
    "new_fast_path",
]

_log = logging.getLogger(__name__)

FastPath = Callable[[object, int], TradesPush | None]
"""``fast_path(text, recv_ms)``: a push or None (the module's contract)."""

COMPILED: Final = "compiled"
PURE_PYTHON: Final = "pure-python"
# Set to 1 to run the pure-Python fast path even when the extension is built (tests compare the two).
PURE_PYTHON_ENV: Final = "OKX_COLLECTOR_PURE_PYTHON"
_FORCED_PURE: Final = os.environ.get(PURE_PYTHON_ENV) == "1"
ACTIVE_PATH: Final = COMPILED if _fastparse is not None and not _FORCED_PURE else PURE_PYTHON

# Prices within a few thousand ticks of each other and common sizes; about 1 MB at most.
DEFAULT_MEMO_SIZE: Final = 8192

_PREFIX: Final = '{"arg":{"channel":"trades'
_INST: Final = r"([A-Z0-9][A-Z0-9-]{0,63})"
_DIGITS: Final = r"(\d{1,19})"
# possessive (?...)?+: nothing after a number can start with "." or a digit, so giving back never helps
_NUM: Final = r"(-?\d{1,40}(?:\.\d{1,40})?+)"
_SIDE: Final = r"(buy|sell)"
_SOURCE: Final = r"([0-9]{1,16})"
# seqId is a JSON number, not read here: no leading zero (not JSON) and at most 18 digits, since orjson turns
# an integer below -2**63 into a float, which the general path refuses
_SEQ_ID: Final = r"-?(?:0|[1-9]\d{0,17})"
_HEAD: Final = r'\{"arg":\{"channel":"%s","instId":"' + _INST + r'"\},"data":\[\{"instId":"\1",'
_TRADES_ALL: Final = re.compile(
    (_HEAD % "trades-all")
    + rf'"tradeId":"{_DIGITS}","px":"{_NUM}","sz":"{_NUM}","side":"{_SIDE}","source":"{_SOURCE}",'
    + rf'"ts":"{_DIGITS}"(?:,"seqId":{_SEQ_ID})?+\}}\]\}}',
    re.ASCII,
).fullmatch
_TRADES: Final = re.compile(
    (_HEAD % "trades")
    + rf'"tradeId":"{_DIGITS}","px":"{_NUM}","sz":"{_NUM}","side":"{_SIDE}","ts":"{_DIGITS}",'
    + rf'"count":"{_DIGITS}","source":"{_SOURCE}","seqId":{_SEQ_ID}\}}\]\}}',
    re.ASCII,
).fullmatch
_ONE: Final = (1,)


class TradeFastPath:
    """``fast.parse(text, recv_ms)``: the push of a one-row trade frame in OKX's key order, or None (module
    docstring).

    ``memo_size``: how many distinct price/size texts this instance keeps as ``Decimal`` (the memo is cleared
    when full: bounded memory, no eviction bookkeeping); 0 keeps none.
    """

    __slots__ = ("_decimals", "_memo_size")

    def __init__(self, *, memo_size: int = DEFAULT_MEMO_SIZE) -> None:
        if memo_size < 0:
            raise ValueError(f"memo_size must be >= 0, got {memo_size}")
        self._memo_size = memo_size
        self._decimals: dict[str, Decimal] = {}

    def parse(self, text: object, recv_ms: int) -> TradesPush | None:
        if type(text) is not str or not text.startswith(_PREFIX):
            return None
        m = _TRADES_ALL(text)
        if m is not None:
            inst_id, trade_id, px, sz, side, source, ts = m.groups()
            channel, counts = "trades-all", _ONE
        else:
            m = _TRADES(text)
            if m is None:
                return None
            inst_id, trade_id, px, sz, side, ts, count_text, source = m.groups()
            count = int(count_text)
            if not 1 <= count <= int(trade_id) + 1:  # the general path names the rule (rows.build_trade)
                return None
            channel, counts = "trades", (count,)
        memo = self._decimals
        price = memo.get(px)
        size = memo.get(sz)
        if price is None or size is None:  # a miss: build, and keep while there is room (else start over)
            price, size = price or Decimal(px), size or Decimal(sz)
            if self._memo_size:
                if len(memo) >= self._memo_size - 1:
                    memo.clear()
                memo[px], memo[sz] = price, size
        trade = new_trade("okx", inst_id, int(trade_id), int(ts), price, size, SIDES[side], recv_ms, source)
        try:
            check_trade(trade)
        except InvalidRecord:  # let the general path build the rejection
            return None
        return new_trades_push(channel, inst_id, (trade,), counts, recv_ms, ())


def compiled_available() -> bool:
    """Whether the compiled fast path (``_fastparse``) was built and imports."""
    return _fastparse is not None


def new_fast_path(*, memo_size: int = DEFAULT_MEMO_SIZE, compiled: bool | None = None) -> FastPath:
    """A fast path's ``parse``: the active one (``compiled=None``), or the one asked for.

    ``memo_size`` applies to the pure-Python path only (the compiled one keeps no memo: it would not pay).
    Raises RuntimeError when ``compiled=True`` and the extension is not built.
    """
    if memo_size < 0:
        raise ValueError(f"memo_size must be >= 0, got {memo_size}")
    if compiled is None:
        compiled = ACTIVE_PATH == COMPILED
    if not compiled:
        return TradeFastPath(memo_size=memo_size).parse
    if _fastparse is None:
        raise RuntimeError(f"the compiled fast path is not built: {_IMPORT_ERROR}")
    parser = _fastparse.TradeParser(
        trade_type=Trade,
        push_type=TradesPush,
        buy=Side.BUY,
        sell=Side.SELL,
        decimal_type=Decimal,
        ts_min_ms=TS_MIN_MS,
        ts_max_ms=TS_MAX_MS,
    )
    parse: FastPath = parser.parse
    return parse


_logged: list[bool] = []


def log_active_path() -> None:
    """Log which fast path runs, once per process: INFO for the compiled one, WARNING for the pure-Python one
    (a build without the extension parses trade frames at about a fifth of the speed)."""
    if _logged:
        return
    _logged.append(True)
    if ACTIVE_PATH == COMPILED:
        _log.info("OKX trade frames: compiled fast path (_fastparse) active")
    elif _FORCED_PURE:
        _log.warning("OKX trade frames: pure-Python fast path active (%s=1)", PURE_PYTHON_ENV)
    else:
        _log.warning(
            "OKX trade frames: pure-Python fast path active, the extension is not built: %s", _IMPORT_ERROR
        )
