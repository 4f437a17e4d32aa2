"""Sans-I/O parser of OKX WebSocket frames: one frame's text and its receive time in, one event out.

:func:`parse_frame` never raises for bad input. A frame that is not JSON, not one of OKX's envelopes, or
carries a row that breaks the wire format (``messages.py``) or a domain rule (``collectors.validation``)
becomes :class:`~collectors.exchanges.okx.events.Rejected` with the reason and the exact text.

Rejection rules (docs/okx.md):

* Frame level: not JSON, not an object, unknown ``event``, ``arg`` without a string ``channel``/``instId``,
  an unsupported channel, ``data`` not a non-empty list: the whole frame is rejected.
* Trades, tickers and candles: each row stands alone. A bad row (a missing field, a number not in OKX's plain
  decimal form, price <= 0, an unknown side, an ``instId`` other than the frame's ``arg``) is refused and
  listed in the push's ``rejected``; the good rows of the same frame are kept. When no row is good, the event
  is one :class:`Rejected` for the frame (its reason lists every row's).
* Books (``books``, ``books5``, ``bbo-tbt``): a frame is one state change, so one bad level rejects the whole
  frame (applying part of an update would corrupt the book; the collector resubscribes).

Prices and sizes are ``Decimal`` of OKX's string exactly as sent; timestamps ``int`` ms. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import orjson

from collectors.errors import ParseError
from collectors.exchanges.okx.events import (
    BooksPush,
    CandlePush,
    ErrorEvent,
    Event,
    LoggedIn,
    Notice,
    Pong,
    Rejected,
    Subscribed,
    TickerPush,
    TradesPush,
    Unsubscribed,
)
from collectors.exchanges.okx.fast import DEFAULT_MEMO_SIZE, log_active_path, new_fast_path
from collectors.exchanges.okx.messages import (
    EVENT_ERROR,
    EVENT_LOGIN,
    EVENT_NOTICE,
    EVENT_SUBSCRIBE,
    EVENT_UNSUBSCRIBE,
    PONG,
    OkxBookData,
    OkxBookLevel,
    OkxCandleRow,
    OkxTickerRow,
    OkxTradeRow,
    to_exchange_candle,
)
from collectors.exchanges.okx.rows import build_trade, decimal_field, digits_field, frame_text
from collectors.model import BookLevel, BookSnapshot, Ticker
from collectors.validation import check_book_snapshot, check_ticker, check_ts_ms

__all__ = ["FrameParser", "parse_frame"]

_PONG: Final = Pong()
_TRADE_CHANNELS: Final = frozenset({"trades", "trades-all"})
_TOP_CHANNELS: Final = frozenset({"books5", "bbo-tbt"})
# 60018 (and its 2024-2025 form): "... wrong URL or channel:candle1m,instId:BTC-USDT doesn't exist. ..."
_WRONG_CHANNEL: Final = re.compile(r"channel:([^,\s]{1,64}),instId:(\S{1,64}) doesn't exist", re.IGNORECASE)


class FrameParser:
    """``parser.parse(text, recv_ms=...)``: :func:`parse_frame` with the state one connection's reader keeps
    between frames (the pure-Python fast path's bounded ``Decimal`` memo, ``fast.py``). Same events as
    :func:`parse_frame`.

    ``compiled``: None runs the active fast path (``fast.ACTIVE_PATH``); True or False picks one (tests run
    both). The first parser built logs which path is active.
    """

    __slots__ = ("_fast",)

    def __init__(self, *, memo_size: int = DEFAULT_MEMO_SIZE, compiled: bool | None = None) -> None:
        self._fast = new_fast_path(memo_size=memo_size, compiled=compiled)
        log_active_path()

    def parse(self, text: str | bytes, *, recv_ms: int) -> Event:
        return self._fast(text, recv_ms) or _parse(text, recv_ms)


_STATELESS: Final = new_fast_path(memo_size=0)


def parse_frame(text: str | bytes, *, recv_ms: int) -> Event:
    """The event one received frame stands for; never raises for any ``text``. Keeps no state (no memo).

    ``recv_ms`` (epoch ms, our receive time) is stored on the records built from the frame.
    """
    return _STATELESS(text, recv_ms) or _parse(text, recv_ms)


def _parse(text: str | bytes, recv_ms: int) -> Event:
    """The general path: every frame the fast path leaves."""
    if text == PONG or text == b"pong":
        return _PONG
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return _reject(f"not JSON: {exc}", text)
    if type(frame) is not dict:
        return _reject("frame is not a JSON object", text)
    if "event" in frame:
        return _event(frame, text)
    if "arg" in frame and "data" in frame:
        return _push(frame, text, recv_ms)
    return _reject("frame has neither 'event' nor 'arg' and 'data'", text)


def _reject(
    reason: str, text: str | bytes, channel: str | None = None, inst_id: str | None = None
) -> Rejected:
    return Rejected(reason=reason, channel=channel, inst_id=inst_id, text=frame_text(text))


def _opt_str(frame: dict[str, Any], key: str) -> str | None:
    value = frame.get(key)
    return value if type(value) is str else None


def _event(frame: dict[str, Any], text: str | bytes) -> Event:
    kind, conn_id = frame["event"], _opt_str(frame, "connId")
    if kind in (EVENT_SUBSCRIBE, EVENT_UNSUBSCRIBE):
        arg = frame.get("arg")
        if type(arg) is not dict or type(arg.get("channel")) is not str:
            return _reject(f"{kind!r} ack without a string arg.channel", text)
        inst_id = _opt_str(arg, "instId")
        ack = Subscribed if kind == EVENT_SUBSCRIBE else Unsubscribed
        return ack(channel=arg["channel"], inst_id=inst_id, conn_id=conn_id)
    if kind == EVENT_LOGIN:
        if str(frame.get("code", "0")) != "0":
            return _reject("login event with a non-zero code", text)
        return LoggedIn(conn_id=conn_id)
    if kind in (EVENT_ERROR, EVENT_NOTICE):
        code, msg = frame.get("code"), frame.get("msg", "")
        if type(code) not in (str, int) or type(msg) is not str:
            return _reject(f"{kind!r} event without a string code and msg", text)
        if kind == EVENT_NOTICE:
            return Notice(code=str(code), msg=msg, conn_id=conn_id)
        hint = _WRONG_CHANNEL.search(msg)
        channel, inst_id = (hint.group(1), hint.group(2)) if hint else (None, None)
        return ErrorEvent(code=str(code), msg=msg, channel=channel, inst_id=inst_id, conn_id=conn_id)
    return _reject(f"unknown event {kind!r}", text)


def _push(frame: dict[str, Any], text: str | bytes, recv_ms: int) -> Event:
    arg, data = frame["arg"], frame["data"]
    if type(arg) is not dict or type(arg.get("channel")) is not str or type(arg.get("instId")) is not str:
        return _reject("push without a string arg.channel and arg.instId", text)
    channel, inst_id = arg["channel"], arg["instId"]
    if type(data) is not list or not data:
        return _reject("push data is not a non-empty list", text, channel, inst_id)
    if channel in _TRADE_CHANNELS:
        return _rows(_trade_row, frame, text, recv_ms, _trades_push)
    if channel == "books" or channel in _TOP_CHANNELS:
        try:
            return _books(frame, channel, inst_id, recv_ms)
        except ParseError as exc:
            return _reject(str(exc), text, channel, inst_id)
    if channel == "tickers":
        return _rows(_ticker_row, frame, text, recv_ms, _ticker_push)
    if channel.startswith("candle") and len(channel) > 6:
        return _rows(_candle_row, frame, text, recv_ms, _candle_push)
    return _reject(f"unsupported channel {channel!r}", text, channel, inst_id)


_Row = Callable[[Any, str, str, int], Any]
_Build = Callable[[str, str, list[Any], list[int], int, tuple[Rejected, ...]], Event]


def _rows(parse_row: _Row, frame: dict[str, Any], text: str | bytes, recv_ms: int, build: _Build) -> Event:
    """Parse each row on its own; keep the good ones, list the bad ones (module docstring)."""
    channel, inst_id = frame["arg"]["channel"], frame["arg"]["instId"]
    good: list[Any] = []
    counts: list[int] = []
    bad: list[Rejected] = []
    for i, row in enumerate(frame["data"]):
        try:
            record, count = parse_row(row, channel, inst_id, recv_ms)
        except ParseError as exc:
            reason = f"data[{i}]: {exc}"
            bad.append(
                Rejected(reason=reason, channel=channel, inst_id=inst_id, text=frame_text(text), row=i)
            )
            continue
        good.append(record)
        counts.append(count)
    if good:
        return build(channel, inst_id, good, counts, recv_ms, tuple(bad))
    if len(bad) == 1:
        return bad[0]
    return _reject("; ".join(b.reason for b in bad), text, channel, inst_id)


def _check_inst(row: dict[str, Any], inst_id: str, *, required: bool) -> None:
    got = row.get("instId")
    if got is None and not required:
        return
    if got != inst_id:
        raise ParseError(f"instId {got!r} does not match the subscription's {inst_id!r}")


def _trade_row(row: Any, channel: str, inst_id: str, recv_ms: int) -> tuple[Any, int]:
    if type(row) is not dict:
        raise ParseError(f"trade row is not an object: {row!r}")
    wire: OkxTradeRow = row  # type: ignore[assignment]  # checked field by field in build_trade
    _check_inst(row, inst_id, required=True)
    count = 1
    if channel == "trades" and "count" in wire:
        count = digits_field(wire, "count")
    return build_trade(wire, inst_id, recv_ms, count)


def _trades_push(
    channel: str, inst_id: str, good: list[Any], counts: list[int], recv_ms: int, bad: tuple[Rejected, ...]
) -> Event:
    return TradesPush(
        channel=channel,
        inst_id=inst_id,
        trades=tuple(good),
        counts=tuple(counts),
        recv_ms=recv_ms,
        rejected=bad,
    )


_TICKER_OPTIONAL: Final = (
    ("lastSz", "last_size"), ("bidPx", "bid_price"), ("bidSz", "bid_size"), ("askPx", "ask_price"),
    ("askSz", "ask_size"), ("open24h", "open_24h"), ("high24h", "high_24h"), ("low24h", "low_24h"),
    ("vol24h", "volume_24h"), ("volCcy24h", "volume_ccy_24h"),
)  # fmt: skip


def _ticker_row(row: Any, channel: str, inst_id: str, recv_ms: int) -> tuple[Any, int]:
    if type(row) is not dict:
        raise ParseError(f"ticker row is not an object: {row!r}")
    wire: OkxTickerRow = row  # type: ignore[assignment]
    _check_inst(row, inst_id, required=True)
    optional: dict[str, Decimal | None] = {}
    for okx_name, name in _TICKER_OPTIONAL:
        optional[name] = None if row.get(okx_name, "") == "" else decimal_field(row, okx_name)
    ticker = Ticker(
        exchange="okx",
        inst_id=inst_id,
        ts_ms=check_ts_ms(digits_field(wire, "ts"), "ts"),
        last=decimal_field(row, "last"),
        recv_ms=recv_ms,
        **optional,
    )
    return check_ticker(ticker), 1


def _ticker_push(
    channel: str, inst_id: str, good: list[Any], counts: list[int], recv_ms: int, bad: tuple[Rejected, ...]
) -> Event:
    return TickerPush(inst_id=inst_id, tickers=tuple(good), recv_ms=recv_ms, rejected=bad)


def _candle_row(row: Any, channel: str, inst_id: str, recv_ms: int) -> tuple[Any, int]:
    if type(row) is not list:
        raise ParseError(f"candle row is not an array: {row!r}")
    return to_exchange_candle(OkxCandleRow.parse(row), inst_id=inst_id, bar=channel[6:]), 1


def _candle_push(
    channel: str, inst_id: str, good: list[Any], counts: list[int], recv_ms: int, bad: tuple[Rejected, ...]
) -> Event:
    return CandlePush(
        channel=channel, inst_id=inst_id, bar=channel[6:], candles=tuple(good), recv_ms=recv_ms, rejected=bad
    )


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if type(value) is not int:
        raise ParseError(f"{key} must be an integer: {value!r}")
    return value


def _levels(data: dict[str, Any], side: str) -> tuple[OkxBookLevel, ...]:
    levels = data.get(side)
    if type(levels) is not list:
        raise ParseError(f"{side} must be a list of levels")
    return tuple(OkxBookLevel.parse(level) for level in levels)


def _model_levels(levels: tuple[OkxBookLevel, ...], side: str) -> tuple[BookLevel, ...]:
    return tuple(
        BookLevel(
            price=decimal_field({"px": lv.px}, "px", f"{side}[{i}].px"),
            size=decimal_field({"sz": lv.sz}, "sz", f"{side}[{i}].sz"),
            orders=int(lv.orders),
        )
        for i, lv in enumerate(levels)
    )


def _books(frame: dict[str, Any], channel: str, inst_id: str, recv_ms: int) -> BooksPush:
    """A book frame, whole or not at all; raises ParseError (InvalidRecord for a domain rule)."""
    if len(frame["data"]) != 1 or type(frame["data"][0]) is not dict:
        raise ParseError("a book push must hold exactly one data object")
    data: OkxBookData = frame["data"][0]  # type: ignore[assignment]  # read field by field below
    _check_inst(frame["data"][0], inst_id, required=False)
    action = frame.get("action")
    if (channel == "books") != (action in ("snapshot", "update")):
        raise ParseError(f"action {action!r} does not fit channel {channel!r}")
    bids, asks = _levels(frame["data"][0], "bids"), _levels(frame["data"][0], "asks")
    ts_ms = check_ts_ms(digits_field(data, "ts"), "ts")
    seq_id, prev = _opt_int(frame["data"][0], "seqId"), _opt_int(frame["data"][0], "prevSeqId")
    checksum = _opt_int(frame["data"][0], "checksum")
    model_bids, model_asks = _model_levels(bids, "bids"), _model_levels(asks, "asks")
    common = {"exchange": "okx", "inst_id": inst_id, "ts_ms": ts_ms, "seq_id": seq_id, "recv_ms": recv_ms}
    snapshot: BookSnapshot | None = None
    if action == "update":  # each side ordered and positive; sizes may be 0 (delete); sides may cross
        check_book_snapshot(BookSnapshot(bids=model_bids, asks=(), **common))  # type: ignore[arg-type]
        check_book_snapshot(BookSnapshot(bids=(), asks=model_asks, **common))  # type: ignore[arg-type]
    else:
        full = check_book_snapshot(BookSnapshot(bids=model_bids, asks=model_asks, **common))  # type: ignore[arg-type]
        snapshot = full if action is None else None
    return BooksPush(
        channel=channel,
        inst_id=inst_id,
        action=action,
        ts_ms=ts_ms,
        bids=bids,
        asks=asks,
        seq_id=seq_id,
        prev_seq_id=prev,
        checksum=checksum,
        recv_ms=recv_ms,
        snapshot=snapshot,
    )
