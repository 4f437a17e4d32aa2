"""What one OKX WebSocket frame means: the events :func:`collectors.exchanges.okx.parse.parse_frame` returns.

Every event is a frozen, slotted, keyword-only dataclass. A push carries model records that already passed
``collectors.validation`` (trades, tickers, top-of-book snapshots) or, for the full-depth ``books`` channel,
the raw levels the order book (``book.py``) needs. Anything that cannot be trusted is a :class:`Rejected` with
the reason and the exact frame text, for ``rejected_messages``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from collectors.exchanges.okx.messages import OkxBookLevel
from collectors.model import BookSnapshot, Ticker, Trade
from collectors.storage.records import ExchangeCandle

__all__ = [
    "BooksPush",
    "CandlePush",
    "ErrorEvent",
    "Event",
    "LoggedIn",
    "Notice",
    "Pong",
    "Rejected",
    "Subscribed",
    "TickerPush",
    "TradesPush",
    "Unsubscribed",
    "new_trades_push",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A frame (or one row of it, ``row`` its index in ``data``) that failed the wire format or a domain rule.

    ``channel`` and ``inst_id`` are the frame's ``arg`` when it could be read (None otherwise); ``text`` is the
    frame exactly as received (bytes are decoded as UTF-8 with backslash escapes for invalid bytes).
    """

    reason: str
    channel: str | None
    inst_id: str | None
    text: str
    row: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """The plain text ``pong`` answering our ``ping``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribed:
    """One ack per subscribed arg (``conn_id`` is absent in 2022 recordings)."""

    channel: str
    inst_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribed:
    channel: str
    inst_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedIn:
    conn_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent:
    """``{"event": "error", "code", "msg", "connId"}``. OKX names no ``arg`` here; for 60018 ("Wrong URL or
    channel:X,instId:Y doesn't exist") ``channel`` and ``inst_id`` are read from ``msg`` so the rejection can be
    surfaced for that pair and channel (best effort: None when the message has another form)."""

    code: str
    msg: str
    channel: str | None
    inst_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """``{"event": "notice", "code": "64008", ...}``: the server will close soon; reconnect (planned)."""

    code: str
    msg: str
    conn_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TradesPush:
    """Trades of one push, in frame order. ``counts[i]`` is how many fills ``trades[i]`` stands for: 1 on
    ``trades-all``; on aggregated ``trades`` OKX's ``count`` (1 when absent, as in 2022), so the row covers
    trade ids ``trade_id - count + 1 .. trade_id``. ``rejected``: rows refused (the good rows are kept)."""

    channel: str
    inst_id: str
    trades: tuple[Trade, ...]
    counts: tuple[int, ...]
    recv_ms: int
    rejected: tuple[Rejected, ...] = ()

    def id_spans(self) -> tuple[tuple[int, int], ...]:
        """``(first_id, last_id)`` per trade, both inclusive."""
        return tuple((t.trade_id - c + 1, t.trade_id) for t, c in zip(self.trades, self.counts, strict=True))


class _TradesPushBuilder:
    """Fills a :class:`TradesPush` by plain slot stores, then becomes one: the fast path builds a push per
    frame (``collectors.model._TradeBuilder`` says why and how; ``tests/test_model.py`` checks the slots)."""

    __slots__ = TradesPush.__slots__

    def __init__(
        self,
        channel: str,
        inst_id: str,
        trades: tuple[Trade, ...],
        counts: tuple[int, ...],
        recv_ms: int,
        rejected: tuple[Rejected, ...],
    ) -> None:
        self.channel = channel
        self.inst_id = inst_id
        self.trades = trades
        self.counts = counts
        self.recv_ms = recv_ms
        self.rejected = rejected
        self.__class__ = TradesPush  # type: ignore[assignment]


new_trades_push: Final[
    Callable[[str, str, tuple[Trade, ...], tuple[int, ...], int, tuple[Rejected, ...]], TradesPush]
] = _TradesPushBuilder  # type: ignore[assignment]  # its instances become TradesPush in __init__
"""``new_trades_push(channel, inst_id, trades, counts, recv_ms, rejected)``: a :class:`TradesPush`, positional."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BooksPush:
    """A book frame, never partial: one bad level rejects the whole frame.

    ``books5`` / ``bbo-tbt``: ``snapshot`` is the validated top of book (``action`` None). ``books``: ``action``
    is "snapshot" or "update" and the raw levels, ``seq_id``, ``prev_seq_id`` and ``checksum`` go to the
    order book (``book.py``); ``snapshot`` is None there, since an update is not a book.
    """

    channel: str
    inst_id: str
    action: Literal["snapshot", "update"] | None
    ts_ms: int
    bids: tuple[OkxBookLevel, ...]
    asks: tuple[OkxBookLevel, ...]
    seq_id: int | None
    prev_seq_id: int | None
    checksum: int | None
    recv_ms: int
    snapshot: BookSnapshot | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TickerPush:
    inst_id: str
    tickers: tuple[Ticker, ...]
    recv_ms: int
    rejected: tuple[Rejected, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CandlePush:
    """``candle<bar>`` rows as stored records (``bar`` is OKX's name: 1m, 1H, 1Dutc, ...)."""

    channel: str
    inst_id: str
    bar: str
    candles: tuple[ExchangeCandle, ...]
    recv_ms: int
    rejected: tuple[Rejected, ...] = ()


Event = (
    Pong
    | Subscribed
    | Unsubscribed
    | LoggedIn
    | ErrorEvent
    | Notice
    | TradesPush
    | BooksPush
    | TickerPush
    | CandlePush
    | Rejected
)
