"""The outgoing side of one WebSocket connection: its queue of frames and how a batch of them is written.

The queue (``Outbox``) is a deque plus an event: putting a frame costs an append, and the writer takes
everything waiting at once. An uncompressed batch goes to the transport as one write (server frames are
not masked, so a text frame is a 2-10 byte header and the UTF-8 payload), which is what lets one core
push tens of thousands of frames per second; with permessage-deflate negotiated, aiohttp compresses and
writes each frame.
"""

from __future__ import annotations

import asyncio
import collections
import struct
from dataclasses import dataclass
from typing import Final

from aiohttp import web

__all__ = ["Close", "Outbox", "text_frame", "write_texts"]

_BATCH: Final = 4_096  # frames per transport write at most
_PAUSED_POLL_S: Final = 0.001  # how often a writer whose transport is full looks again
_FIN_TEXT: Final = 0x81  # FIN bit + text opcode
_LEN2: Final = struct.Struct("!BBH")
_LEN8: Final = struct.Struct("!BBQ")


@dataclass(frozen=True, slots=True)
class Close:
    """A close frame to send after everything queued before it."""

    code: int
    reason: str


class Outbox:
    """Frames (text) and close requests waiting for the writer, oldest first."""

    def __init__(self) -> None:
        self._items: collections.deque[str | Close] = collections.deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: str | Close) -> None:
        self._items.append(item)
        if not self._ready.is_set():
            self._ready.set()

    def clear(self) -> None:
        self._items.clear()

    async def take(self) -> list[str | Close]:
        """Wait for at least one item; return up to ``_BATCH`` of them, oldest first."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        items = self._items
        return [items.popleft() for _ in range(min(len(items), _BATCH))]


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 5.2) holding ``text``."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65_536:
        return _LEN2.pack(_FIN_TEXT, 126, n) + payload
    return _LEN8.pack(_FIN_TEXT, 127, n) + payload


async def write_texts(ws: web.WebSocketResponse, request: web.Request, texts: list[str]) -> bool:
    """Send ``texts`` as text frames, in order; False when the connection is gone."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return False
    if ws.compress:
        for text in texts:
            await ws.send_str(text)
        return True
    transport.write(b"".join([text_frame(t) for t in texts]))
    protocol = request.protocol
    while True:  # flow control: while the transport's buffer is over its high-water mark, let it drain
        if not protocol.writing_paused or transport.is_closing():
            return True
        await asyncio.sleep(_PAUSED_POLL_S)
