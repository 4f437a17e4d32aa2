"""OKX REST endpoints as pure functions: (market, config, query, now) -> Reply. No aiohttp here.

Errors follow API.md: 51001 (HTTP 200) for an unknown instId, 50014 / 51000 (HTTP 400) for a missing or bad
parameter, 50039 (HTTP 200) for ``before`` with timestamp pagination.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from okx_simulator.candles import (
    HISTORY_BARS,
    REST_BARS,
    Bar,
    bar_for,
    bar_opens_back,
    candle_rows,
    candle_wire,
)
from okx_simulator.config import SimulatorConfig
from okx_simulator.instruments import instrument_row
from okx_simulator.market import Instrument, Market
from okx_simulator.replay import Capture
from okx_simulator.rest_trades import aggregated_rows
from okx_simulator.wire import book_body, book_levels, envelope, rest_trade, ticker_row

__all__ = ["RATE_LIMITS", "ROUTES", "ApiError", "Reply", "RestContext", "call"]

Query = Mapping[str, str]
MSG_51001: Final = "Instrument ID, Instrument ID code, or Spread ID doesn't exist."
MSG_50039: Final = 'Parameter "before" isn\'t supported for timestamp pagination'
_DERIVATIVES: Final = ("SWAP", "FUTURES", "OPTION", "MARGIN")


class Reply(NamedTuple):
    status: int
    body: Any


class ApiError(Exception):
    """An OKX error answer; raised by parameter checks, turned into a Reply by ``call``."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.reply = Reply(status, envelope([], code=code, msg=msg))


class RestContext(NamedTuple):
    market: Market
    config: SimulatorConfig
    now_ms: int
    capture: Capture | None = None


def _replayed(ctx: RestContext, query: Query) -> list[dict[str, str]] | None:
    """The capture's trades (oldest first) when replaying one that holds trades of the queried instId."""
    inst_id = query.get("instId", "")
    if ctx.capture is None or inst_id not in ctx.capture.trade_inst_ids():
        return None
    return ctx.capture.trades(inst_id)


def _required(query: Query, name: str) -> str:
    value = query.get(name, "")
    if not value:
        raise ApiError(400, "50014", f"Parameter {name} can not be empty.")
    return value


def _bad(name: str) -> ApiError:
    return ApiError(400, "51000", f"Parameter {name} error")


def _int(query: Query, name: str) -> int | None:
    raw = query.get(name, "")
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _bad(name) from None


def _limit(query: Query, default: int, maximum: int) -> int:
    value = _int(query, "limit")
    if value is None:
        return default
    if value <= 0:
        raise _bad("limit")
    return min(value, maximum)


def _instrument(ctx: RestContext, query: Query) -> Instrument:
    inst = ctx.market.get(_required(query, "instId"))
    if inst is None:
        raise ApiError(200, "51001", MSG_51001)
    return inst


def public_time(ctx: RestContext, query: Query) -> Reply:
    return Reply(200, envelope([{"ts": str(ctx.now_ms)}]))


def system_status(ctx: RestContext, query: Query) -> Reply:
    return Reply(200, envelope([]))


def instruments(ctx: RestContext, query: Query) -> Reply:
    inst_type = _required(query, "instType")
    if inst_type == "OPTION" and not (query.get("uly") or query.get("instFamily")):
        raise ApiError(400, "50014", "Parameter instFamily can not be empty.")
    if inst_type in _DERIVATIVES:
        return Reply(200, envelope([]))
    if inst_type != "SPOT":
        raise _bad("instType")
    wanted = query.get("instId")
    rows = [instrument_row(i.spec) for i in ctx.market.all() if not wanted or i.inst_id == wanted]
    if wanted and not rows:
        raise ApiError(200, "51001", MSG_51001)
    return Reply(200, envelope(rows))


def ticker(ctx: RestContext, query: Query) -> Reply:
    inst = _instrument(ctx, query)
    return Reply(200, envelope([ticker_row(inst.spec, inst.ticker(ctx.now_ms))]))


def tickers(ctx: RestContext, query: Query) -> Reply:
    inst_type = _required(query, "instType")
    if inst_type in _DERIVATIVES:
        return Reply(200, envelope([]))
    if inst_type != "SPOT":
        raise _bad("instType")
    return Reply(200, envelope([ticker_row(i.spec, i.ticker(ctx.now_ms)) for i in ctx.market.all()]))


def books(ctx: RestContext, query: Query) -> Reply:
    inst = _instrument(ctx, query)
    depth = _depth(query, 400)
    body = book_body(inst.spec, inst.book_at(ctx.now_ms, depth), ctx.now_ms)
    body["seqId"] = inst.seq_at(ctx.now_ms, slot=9)
    return Reply(200, envelope([body]))


def books_full(ctx: RestContext, query: Query) -> Reply:
    inst = _instrument(ctx, query)
    book = inst.book_at(ctx.now_ms, _depth(query, 5000))
    body = {
        "asks": book_levels(inst.spec, book.asks, full=True),
        "bids": book_levels(inst.spec, book.bids, full=True),
        "ts": str(ctx.now_ms),
    }
    return Reply(200, envelope([body]))


def _depth(query: Query, maximum: int) -> int:
    depth = _int(query, "sz")
    if depth is None:
        return 1
    if not 1 <= depth <= maximum:
        raise _bad("sz")
    return depth


def trades(ctx: RestContext, query: Query) -> Reply:
    replayed = _replayed(ctx, query)
    inst = _instrument(ctx, query) if replayed is None else None
    limit = _limit(query, 100, 500)
    if replayed is not None:
        return Reply(200, envelope(replayed[::-1][:limit]))
    assert inst is not None
    if ctx.config.rest_trades_aggregated:
        rows = aggregated_rows(
            inst.tape, inst.spec, below=None, above=None, before_ts=None, limit=limit, now_ms=ctx.now_ms
        )
        return Reply(200, envelope(rows))
    fills = inst.tape.newest_by_id(below=None, above=None, limit=limit, now_ms=ctx.now_ms)
    return Reply(200, envelope([rest_trade(inst.spec, f) for f in fills]))


def history_trades(ctx: RestContext, query: Query) -> Reply:
    replayed = _replayed(ctx, query)
    inst = _instrument(ctx, query) if replayed is None else None
    kind = query.get("type") or "1"
    if kind not in ("1", "2"):
        raise _bad("type")
    after, before = _int(query, "after"), _int(query, "before")
    limit = _limit(query, 100, 100)
    if kind == "2" and before is not None:
        raise ApiError(200, "50039", MSG_50039)
    if replayed is not None:
        return Reply(200, envelope(_replayed_page(ctx, replayed, kind, after, before, limit)))
    assert inst is not None
    tape = inst.tape
    oldest = ctx.now_ms - ctx.config.history_trades_days * 86_400_000
    if ctx.config.rest_trades_aggregated:
        cutoff_ts = None if kind == "1" else (ctx.now_ms + 1 if after is None else min(after, ctx.now_ms + 1))
        rows = aggregated_rows(
            tape,
            inst.spec,
            below=after if kind == "1" else None,
            above=before,
            before_ts=cutoff_ts,
            limit=limit,
            now_ms=ctx.now_ms,
        )
        return Reply(200, envelope([r for r in rows if int(r["ts"]) >= oldest]))
    if kind == "2":
        cutoff = ctx.now_ms + 1 if after is None else min(after, ctx.now_ms + 1)
        fills = tape.newest_before_ts(before_ms=cutoff, limit=limit)
    elif before is not None and after is None and ctx.config.before_only == "adjacent":
        fills = tape.oldest_above(above=before, limit=limit, now_ms=ctx.now_ms)
    else:
        fills = tape.newest_by_id(below=after, above=before, limit=limit, now_ms=ctx.now_ms)
    return Reply(200, envelope([rest_trade(inst.spec, f) for f in fills if f.ts_ms >= oldest]))


def _replayed_page(
    ctx: RestContext, rows: list[dict[str, str]], kind: str, after: int | None, before: int | None, limit: int
) -> list[dict[str, str]]:
    """A history-trades page of recorded rows, newest first, with the generated tape's cursor rules.

    The recording is served whole: no 3-month cut (a 2022 capture would otherwise be empty).
    """
    key = "tradeId" if kind == "1" else "ts"
    picked = [
        r
        for r in rows
        if (after is None or int(r[key]) < after) and (before is None or int(r["tradeId"]) > before)
    ]
    if before is not None and after is None and ctx.config.before_only == "adjacent":
        return picked[:limit][::-1]
    return picked[::-1][:limit]


def _bar(query: Query, allowed: frozenset[str], hk_aligned: bool) -> Bar:
    bar = bar_for(query.get("bar") or "1m", allowed=allowed, hk_aligned=hk_aligned)
    if bar is None:
        raise _bad("bar")
    return bar


def _candles(ctx: RestContext, query: Query, *, history: bool) -> Reply:
    inst = _instrument(ctx, query)
    bar = _bar(query, HISTORY_BARS if history else REST_BARS, ctx.config.hk_aligned)
    limit = _limit(query, 100, ctx.config.history_candles_max if history else 300)
    after, before = _int(query, "after"), _int(query, "before")
    newest = bar.open_of(ctx.now_ms if after is None else min(after - 1, ctx.now_ms))
    lowest = bar.open_of(inst.tape.history_from_ms)
    if not history:
        lowest = max(lowest, bar_opens_back(bar, bar.open_of(ctx.now_ms), 1440))
    if before is not None:
        lowest = max(lowest, bar.next_open(bar.open_of(before)))
    if before is not None and after is None and ctx.config.before_only == "adjacent":
        rows = list(candle_rows(inst.tape, bar, first_open=lowest, last_open=newest, now_ms=ctx.now_ms))[
            :limit
        ]
    else:
        first = max(lowest, bar_opens_back(bar, newest, limit))
        rows = list(candle_rows(inst.tape, bar, first_open=first, last_open=newest, now_ms=ctx.now_ms))
    if not rows or rows[0].open_ms < lowest:
        rows = [r for r in rows if r.open_ms >= lowest]
    return Reply(200, envelope([candle_wire(inst.tape, r) for r in reversed(rows)]))


def candles(ctx: RestContext, query: Query) -> Reply:
    return _candles(ctx, query, history=False)


def history_candles(ctx: RestContext, query: Query) -> Reply:
    return _candles(ctx, query, history=True)


Handler = Callable[[RestContext, Query], Reply]

ROUTES: Final[dict[str, Handler]] = {
    "/api/v5/public/time": public_time,
    "/api/v5/system/status": system_status,
    "/api/v5/public/instruments": instruments,
    "/api/v5/market/ticker": ticker,
    "/api/v5/market/tickers": tickers,
    "/api/v5/market/books": books,
    "/api/v5/market/books-full": books_full,
    "/api/v5/market/trades": trades,
    "/api/v5/market/history-trades": history_trades,
    "/api/v5/market/candles": candles,
    "/api/v5/market/history-candles": history_candles,
}

# Requests per 2-second window per client IP and endpoint (API.md 2.2).
RATE_LIMITS: Final[dict[str, int]] = {
    "/api/v5/public/time": 10,
    "/api/v5/public/instruments": 20,
    "/api/v5/market/ticker": 20,
    "/api/v5/market/tickers": 20,
    "/api/v5/market/books": 40,
    "/api/v5/market/books-full": 10,
    "/api/v5/market/trades": 100,
    "/api/v5/market/history-trades": 20,
    "/api/v5/market/candles": 40,
    "/api/v5/market/history-candles": 20,
}


def call(handler: Handler, ctx: RestContext, query: Query) -> Reply:
    """Run ``handler``, turning parameter errors into OKX error replies."""
    try:
        return handler(ctx, query)
    except ApiError as exc:
        return exc.reply
