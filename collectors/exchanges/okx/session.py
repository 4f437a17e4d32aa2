"""What an OKX WebSocket session adds to the parsed frames: session events, the connect limiter, error mapping,
and one physical connection (:class:`Link`: its outbox, batched writes and the keepalive watchdog).

:class:`~collectors.exchanges.okx.ws.OkxWebSocket` yields these beside the events of ``parse_frame``. Every event
is a frozen, slotted, keyword-only dataclass; ``name`` is the session's name (its constructor argument) and
``conn_number`` counts the physical connections of that session from 1.

Which failures are worth a reconnect is decided here, once (:func:`error_from_transport`,
:func:`error_from_close`): network trouble, a handshake answered 429 or 5xx and every close code OKX does not
document as our own fault are :class:`~collectors.errors.TransportError` (retryable); a handshake refused with
another status and the close codes that say the request or the key is wrong (1009, 4001-4003, 4007-4009) are
permanent errors, so the session stops instead of reconnecting for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from collectors.errors import ApiError, CollectorError, TransportError
from collectors.exchanges.okx.protocol import PING, ChannelArg, subscription_requests
from collectors.ratelimit import Quota, RateLimiter

__all__ = [
    "CONNECT_KEY",
    "FATAL_CLOSE_CODES",
    "LINK_ERRORS",
    "WS_CONNECT_QUOTA",
    "Connect",
    "Connected",
    "Disconnected",
    "KeyedLimiter",
    "Link",
    "RawFrame",
    "SessionEvent",
    "SubscriptionFailed",
    "connect_limiter",
    "default_connect",
    "error_from_close",
    "error_from_transport",
    "request_texts",
    "wall_clock_ms",
]

# The key a session acquires on its limiter for each new connection, and OKX's quota for it.
CONNECT_KEY: Final = "ws_connect"
WS_CONNECT_QUOTA: Final = Quota(limit=3, window_ms=1_000, source="shared/okx/API.md 1.2 (OKX docs D1, D2)")

# OKX close codes (API.md 1.2) that say the request, the key or the subscription set is wrong: reconnecting and
# sending the same again cannot help. 4004 (idle), 4005 (buffer full), 4006 (abnormal) and the rest reconnect.
FATAL_CLOSE_CODES: Final = frozenset({1009, 4001, 4002, 4003, 4007, 4008, 4009})
# What a broken or refused connection raises (mapped by error_from_transport).
LINK_ERRORS: Final = (WebSocketException, OSError)


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """Connection ``conn_number`` is open, logged in (when credentials are set) and its subscriptions sent."""

    name: str
    conn_number: int
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected:
    """Connection ``conn_number`` ended (``reason``: close code, network error, pong timeout, planned).

    ``will_reconnect`` False means the session stops: it was closed, or the error is permanent (``events()``
    raises it next). A planned reconnect (64008) reports the old connection after its successor is subscribed.
    """

    name: str
    conn_number: int
    at_ms: int
    reason: str
    will_reconnect: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionFailed:
    """OKX refused ``arg`` (60018 and the like); the session drops it from its subscriptions, others go on."""

    name: str
    arg: ChannelArg
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RawFrame:
    """The exact text of one received frame, yielded just before its parsed event (for the raw archive)."""

    name: str
    conn_number: int
    text: str | bytes
    recv_ms: int


SessionEvent = Connected | Disconnected | SubscriptionFailed | RawFrame


class KeyedLimiter(Protocol):
    """What a session needs of a shared limiter: ``await acquire(key)`` waits until one more request fits.

    ``collectors.ratelimit.RateLimiter`` is one (with :data:`WS_CONNECT_QUOTA` under :data:`CONNECT_KEY`).
    """

    async def acquire(self, key: str) -> None: ...


def connect_limiter(*, headroom: float = 1.0) -> RateLimiter:
    """A limiter holding only :data:`WS_CONNECT_QUOTA`, for a process without REST clients.

    A process with REST clients passes one limiter for both: ``RateLimiter(quotas={**OKX_REST_QUOTAS,
    CONNECT_KEY: WS_CONNECT_QUOTA})``.
    """
    return RateLimiter(quotas={CONNECT_KEY: WS_CONNECT_QUOTA}, headroom=headroom)


def error_from_close(exc: ConnectionClosed, *, endpoint: str) -> CollectorError:
    """Our error for a closed connection: permanent for :data:`FATAL_CLOSE_CODES`, else retryable."""
    frame = exc.rcvd
    code, reason = (frame.code, frame.reason) if frame is not None else (1006, "no close frame")
    message = f"WebSocket closed: {code} {reason}".rstrip()
    if code in FATAL_CLOSE_CODES:
        return ApiError(message, code=str(code), endpoint=endpoint)
    return TransportError(message, endpoint=endpoint)


def error_from_transport(exc: WebSocketException | OSError, *, endpoint: str) -> CollectorError:
    """Our error for a failed connect or a broken connection (``raise ... from exc`` at the call site)."""
    if isinstance(exc, ConnectionClosed):
        return error_from_close(exc, endpoint=endpoint)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        message = f"WebSocket handshake refused: HTTP {status}"
        if status == 429 or status >= 500:
            return TransportError(message, endpoint=endpoint)
        return ApiError(message, code=str(status), endpoint=endpoint)
    return TransportError(f"WebSocket transport failed: {type(exc).__name__}: {exc}", endpoint=endpoint)


Connect = Callable[[str], Awaitable[ClientConnection]]
Op = Literal["subscribe", "unsubscribe"]
OutItem = tuple[Op, tuple[ChannelArg, ...]] | str | SecretStr | None


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _DropLoginFrames(logging.Filter):
    """websockets logs every frame it sends at DEBUG with the frame as an argument; the login frame carries the
    passphrase and the signature, so its records are dropped here, before any handler or formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            data = getattr(arg, "data", None)
            if isinstance(data, bytes | bytearray | memoryview) and _LOGIN_MARK in bytes(data):
                return False
        return True


_LOGIN_MARK: Final = b'"op":"login"'
# The logger websockets writes frame traces to (DEBUG): ours, so the login filter applies to it.
WIRE_LOGGER: Final = logging.getLogger("collectors.exchanges.okx.wire")
WIRE_LOGGER.addFilter(_DropLoginFrames())


async def default_connect(url: str) -> ClientConnection:
    """websockets' client without its own keepalive (ours is the text ``ping`` OKX asks for), uncompressed,
    tracing frames to :data:`WIRE_LOGGER` (login frames never logged)."""
    return await ws_connect(
        url,
        ping_interval=None,
        compression=None,
        open_timeout=10,
        close_timeout=2,
        max_size=2**23,
        logger=WIRE_LOGGER,
    )


class Link:
    """One physical connection: its socket, its outbox, and what it was asked and answered."""

    def __init__(self, ws: ClientConnection, number: int) -> None:
        self.ws = ws
        self.number = number
        self.outbox: asyncio.Queue[OutItem] = asyncio.Queue()
        self.login: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending: set[ChannelArg] = set()  # subscribed, neither acked nor refused yet
        self.acked = asyncio.Event()  # pending is empty
        self.signal = asyncio.Event()  # a notice came or the link ended
        self.notice = False
        self.ended = asyncio.Event()
        self.error: CollectorError | None = None
        self.live = False  # subscriptions applied: subscribe() sends here too
        self.announced = False  # Connected was yielded
        self.healthy = False  # a frame was received
        self.planned = False  # closed by us for a planned reconnect
        self.closing = False
        self.dead: TransportError | None = None  # the keepalive found the socket dead (see watch)
        self.last_rx = 0.0  # loop time of the last frame received
        self._loop = asyncio.get_running_loop()
        self._watch: asyncio.TimerHandle | None = None
        self._pinged_at: float | None = None  # loop time of a ping not answered yet
        self._ping_after_s = self._pong_timeout_s = 0.0
        self._endpoint = ""

    async def wait_ended(self) -> None:
        await self.ended.wait()

    def send(self, item: OutItem) -> None:
        self.outbox.put_nowait(item)

    def add_pending(self, args: Iterable[ChannelArg]) -> None:
        self.pending.update(args)
        if self.pending:
            self.acked.clear()

    def settle(self, arg: ChannelArg) -> None:
        self.pending.discard(arg)
        if not self.pending:
            self.acked.set()

    def watch(self, ping_after_s: float, pong_timeout_s: float, *, endpoint: str) -> None:
        """Start the keepalive: after ``ping_after_s`` without a frame a text ``ping`` is sent; no frame within
        ``pong_timeout_s`` after it means the socket is open but dead (a silent stall): :attr:`dead` is set and
        the connection aborted, so the reader's ``recv`` ends.

        One timer per link, re-armed when it fires (at most once per ``ping_after_s`` while frames flow), not a
        timeout per frame: the reader only stamps :attr:`last_rx` (:meth:`received`)."""
        self._ping_after_s, self._pong_timeout_s, self._endpoint = ping_after_s, pong_timeout_s, endpoint
        self.last_rx = self._loop.time()
        self._watch = self._loop.call_at(self.last_rx + ping_after_s, self._check)

    def received(self) -> None:
        """A frame came (the reader calls it for every frame)."""
        self.last_rx = self._loop.time()

    def unwatch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _check(self) -> None:
        now = self._loop.time()
        if self._pinged_at is not None and self.last_rx <= self._pinged_at:
            if now - self._pinged_at >= self._pong_timeout_s:
                self._watch = None
                self.dead = TransportError(
                    f"no frame within {self._pong_timeout_s} s after ping", endpoint=self._endpoint
                )
                self.ws.transport.abort()
                return
            self._watch = self._loop.call_at(self._pinged_at + self._pong_timeout_s, self._check)
            return
        self._pinged_at = None
        if now - self.last_rx >= self._ping_after_s:
            self.send(PING)
            self._pinged_at = now
            self._watch = self._loop.call_at(now + self._pong_timeout_s, self._check)
        else:
            self._watch = self._loop.call_at(self.last_rx + self._ping_after_s, self._check)

    async def write_outbox(self) -> None:
        """Send the outbox in order until its ``None``; consecutive (un)subscribe asks of one op go out as
        batched requests. A send failure ends it: the reader sees the same failure and reports it."""
        while True:
            items = [await self.outbox.get()]
            while not self.outbox.empty():
                items.append(self.outbox.get_nowait())
            for text in request_texts(items):
                if text is None:
                    return
                try:
                    await self.ws.send(text.get_secret_value() if isinstance(text, SecretStr) else text)
                except LINK_ERRORS:
                    return


def request_texts(items: list[OutItem]) -> Iterator[str | SecretStr | None]:
    """Outbox items as request texts: runs of one op merged into ``subscription_requests`` batches."""
    op: Op | None = None
    run: list[ChannelArg] = []
    for item in items:
        if isinstance(item, tuple) and item[0] == op:
            run.extend(item[1])
            continue
        if op is not None:
            yield from subscription_requests(run, op=op)
        op, run = (item[0], list(item[1])) if isinstance(item, tuple) else (None, [])
        if not isinstance(item, tuple):
            yield item
    if op is not None:
        yield from subscription_requests(run, op=op)
