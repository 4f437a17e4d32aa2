"""What an OKX WebSocket session adds to the parsed frames: session events, the connect limiter, error mapping.

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
from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from collectors.errors import ApiError, CollectorError, TransportError
from collectors.exchanges.okx.protocol import ChannelArg

__all__ = [
    "CONNECT_KEY",
    "FATAL_CLOSE_CODES",
    "ConnectLimiter",
    "Connected",
    "Disconnected",
    "KeyedLimiter",
    "RawFrame",
    "SessionEvent",
    "SubscriptionFailed",
    "error_from_close",
    "error_from_transport",
]

# The key a session acquires on its limiter for each new connection (OKX: 3 per second per IP, API.md 1.2).
CONNECT_KEY: Final = "ws_connect"

# OKX close codes (API.md 1.2) that say the request, the key or the subscription set is wrong: reconnecting and
# sending the same again cannot help. 4004 (idle), 4005 (buffer full), 4006 (abnormal) and the rest reconnect.
FATAL_CLOSE_CODES: Final = frozenset({1009, 4001, 4002, 4003, 4007, 4008, 4009})


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

    ``collectors.ratelimit.RateLimiter`` has this shape (give it a quota under :data:`CONNECT_KEY`).
    """

    async def acquire(self, key: str) -> None: ...


class ConnectLimiter:
    """At most ``limit`` grants per ``window_s`` seconds (sliding, on the loop's monotonic clock), any key.

    A minimal limiter for new connections; build one per process and pass it to every session.
    """

    def __init__(self, *, limit: int = 3, window_s: float = 1.0) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a connect limiter needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._granted: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, key: str = CONNECT_KEY) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            while True:
                now = loop.time()
                while self._granted and self._granted[0] <= now - self.window_s:
                    self._granted.popleft()
                if len(self._granted) < self.limit:
                    self._granted.append(now)
                    return
                await asyncio.sleep(self._granted[0] + self.window_s - now)


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
