"""OKX wire format: turn ticks/lots into the exact JSON shapes OKX sends (pure).

Every number is a string except ``seqId``, ``prevSeqId`` and ``checksum`` (ints); key order follows the real
samples (tests/fixtures/okx/). REST envelopes use the key order of real traffic: code, data, msg.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from okx_simulator.book import Book, Level
from okx_simulator.instruments import InstrumentSpec
from okx_simulator.market import TickerState
from okx_simulator.tape import Fill

__all__ = [
    "NOT_FOUND_BODY",
    "RATE_LIMIT_BODY",
    "TradesAllEncoder",
    "ack",
    "aggregate",
    "book_levels",
    "encode",
    "envelope",
    "error_event",
    "rest_trade",
    "ticker_row",
    "trades_all_row",
    "ws_trade_row",
]

Json = dict[str, Any]

NOT_FOUND_BODY: Final[Json] = {
    "code": 404,
    "data": {},
    "detailMsg": "",
    "error_code": "404",
    "error_message": "Not Found",
    "msg": "Not Found",
}
RATE_LIMIT_BODY: Final[Json] = {"msg": "Too Many Requests", "code": "50011"}
_TEXT_CACHE: Final = 100_000  # cached price / size texts per instrument


def envelope(data: Any, *, code: str = "0", msg: str = "") -> Json:
    """The REST envelope, keys in the order real answers use."""
    return {"code": code, "data": data, "msg": msg}


def side(fill: Fill) -> str:
    return "buy" if fill.buy else "sell"


def rest_trade(spec: InstrumentSpec, fill: Fill) -> Json:
    """A ``/market/trades`` / ``history-trades`` row (one fill), key order of the real 2025 answer."""
    return {
        "instId": spec.inst_id,
        "side": side(fill),
        "sz": spec.size(fill.sz),
        "px": spec.price(fill.px),
        "source": str(fill.source),
        "tradeId": str(fill.trade_id),
        "ts": str(fill.ts_ms),
    }


def trades_all_row(spec: InstrumentSpec, fill: Fill) -> Json:
    """A ``trades-all`` push row (one fill), key order of the docs example."""
    return {
        "instId": spec.inst_id,
        "tradeId": str(fill.trade_id),
        "px": spec.price(fill.px),
        "sz": spec.size(fill.sz),
        "side": side(fill),
        "source": str(fill.source),
        "ts": str(fill.ts_ms),
    }


class _StepText:
    """Wire text of whole multiples of a power-of-ten step (tickSz, lotSz), without Decimal arithmetic.

    ``text(n)`` equals ``InstrumentSpec.price``/``size`` of ``n`` (plain notation, no trailing zeros); other
    steps fall back to the Decimal path. Prices repeat, so their texts are cached (bounded).
    """

    __slots__ = ("_cache", "_decimals", "_fallback")

    def __init__(self, step: Decimal, fallback: Callable[[int], str]) -> None:
        sign, digits, exponent = step.normalize().as_tuple()
        power_of_ten = digits == (1,) and not sign and isinstance(exponent, int) and exponent <= 0
        self._decimals = -int(exponent) if power_of_ten else None
        self._fallback = fallback
        self._cache: dict[int, str] = {}

    def text(self, n: int) -> str:
        cached = self._cache.get(n)
        if cached is not None:
            return cached
        k = self._decimals
        if k is None or n < 0:
            out = self._fallback(n)
        elif k == 0 or n == 0:
            out = str(n)
        else:
            digits = str(n).rjust(k + 1, "0")
            whole, frac = digits[:-k], digits[-k:].rstrip("0")
            out = f"{whole}.{frac}" if frac else whole
        if len(self._cache) >= _TEXT_CACHE:
            self._cache.clear()
        self._cache[n] = out
        return out


class TradesAllEncoder:
    """The exact wire text of one ``trades-all`` push (one fill), built from a pre-encoded template.

    Equal, byte for byte, to the compact JSON of ``{"arg": ..., "data": [trades_all_row(...)]}`` (the tests
    compare both); ``seq_id`` appends the int ``seqId`` of the ``trades_all_seq_id`` switch.
    """

    __slots__ = ("_head", "_px", "_sz")

    def __init__(self, spec: InstrumentSpec) -> None:
        inst = spec.inst_id
        self._head = (
            f'{{"arg":{{"channel":"trades-all","instId":"{inst}"}},"data":[{{"instId":"{inst}","tradeId":"'
        )
        self._px = _StepText(spec.tick_sz, spec.price).text
        self._sz = _StepText(spec.lot_sz, spec.size).text

    def frame(self, fill: Fill, seq_id: int | None = None) -> str:
        side = "buy" if fill.buy else "sell"
        tail = "" if seq_id is None else f',"seqId":{seq_id}'
        return (
            f'{self._head}{fill.trade_id}","px":"{self._px(fill.px)}","sz":"{self._sz(fill.sz)}",'
            f'"side":"{side}","source":"{fill.source}","ts":"{fill.ts_ms}"{tail}}}]}}'
        )


def aggregate(fills: list[Fill]) -> list[list[Fill]]:
    """Group consecutive fills of one taker order (same order, price and source) as the ``trades`` channel does."""
    groups: list[list[Fill]] = []
    for fill in fills:
        if groups and groups[-1][-1].order == fill.order and groups[-1][-1].px == fill.px:
            groups[-1].append(fill)
        else:
            groups.append([fill])
    return groups


def ws_trade_row(spec: InstrumentSpec, group: list[Fill], seq_id: int) -> Json:
    """An aggregated ``trades`` push row: tradeId is the LAST fill id, count the number of fills."""
    last = group[-1]
    return {
        "instId": spec.inst_id,
        "tradeId": str(last.trade_id),
        "px": spec.price(last.px),
        "sz": spec.size(sum(f.sz for f in group)),
        "side": side(last),
        "ts": str(last.ts_ms),
        "count": str(len(group)),
        "source": str(last.source),
        "seqId": seq_id,
    }


def ticker_row(spec: InstrumentSpec, state: TickerState) -> Json:
    """A ticker (REST and WS), key order of the real 2026 push."""
    last = state.last
    bid = state.book.bids[0] if state.book.bids else None
    ask = state.book.asks[0] if state.book.asks else None
    return {
        "instType": "SPOT",
        "instId": spec.inst_id,
        "last": spec.price(last.px) if last else "",
        "lastSz": spec.size(last.sz) if last else "",
        "askPx": spec.price(ask.px) if ask else "",
        "askSz": spec.size(ask.sz) if ask else "",
        "bidPx": spec.price(bid.px) if bid else "",
        "bidSz": spec.size(bid.sz) if bid else "",
        "open24h": spec.price(state.open24h),
        "high24h": spec.price(state.high24h),
        "low24h": spec.price(state.low24h),
        "sodUtc0": spec.price(state.sod_utc0),
        "sodUtc8": spec.price(state.sod_utc8),
        "volCcy24h": spec.notional(state.notional24h),
        "vol24h": spec.size(state.vol24h),
        "ts": str(state.ts_ms),
    }


def book_levels(
    spec: InstrumentSpec, levels: list[Level] | tuple[Level, ...], *, full: bool = False
) -> list[list[str]]:
    """``[px, sz, "0", orders]`` levels (``[px, sz, orders]`` for books-full)."""
    if full:
        return [[spec.price(lv.px), spec.size(lv.sz), str(lv.orders)] for lv in levels]
    return [[spec.price(lv.px), spec.size(lv.sz), "0", str(lv.orders)] for lv in levels]


def book_body(spec: InstrumentSpec, book: Book, ts_ms: int) -> Json:
    return {"asks": book_levels(spec, book.asks), "bids": book_levels(spec, book.bids), "ts": str(ts_ms)}


def encode(message: Json) -> str:
    """Compact JSON, as OKX sends it."""
    return json.dumps(message, separators=(",", ":"))


def _with_id(request_id: str | None) -> Json:
    return {} if request_id is None else {"id": request_id}


def ack(event: str, arg: Json, conn_id: str, request_id: str | None) -> Json:
    """``{"id"?, "event", "arg", "connId"}``: one per subscribed or unsubscribed arg."""
    return {**_with_id(request_id), "event": event, "arg": arg, "connId": conn_id}


def error_event(code: str, msg: str, conn_id: str, request_id: str | None = None) -> Json:
    """``{"id"?, "event": "error", "msg", "code", "connId"}`` (live key order: msg before code)."""
    return {**_with_id(request_id), "event": "error", "msg": msg, "code": code, "connId": conn_id}
