"""One WebSocket connection (asyncio layer): reader loop, writer task, idle watchdog, per-connection faults.

Every task is owned by ``Connection.run`` and cancelled and awaited before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any, Final

from aiohttp import WSMsgType, web

from okx_simulator.faults import MALFORMED_VARIANTS, Fault, malform
from okx_simulator.hub import Hub, encode
from okx_simulator.state import SimState
from okx_simulator.ws_out import Close, Outbox, write_texts
from okx_simulator.ws_protocol import handle_text

__all__ = ["Connection"]

Json = dict[str, Any]
_QUEUE_LIMIT: Final = 200_000
_REORDER_HOLD_S: Final = 1.0  # a reordered frame waits for the next push at most this long
_STALL_POLL_S: Final = 0.02  # how often a writer held by a stall looks whether it has ended
_NOTICE_MSG: Final = "The connection will soon be closed for a service upgrade. Please reconnect."


class Connection:
    """Server side of one client WebSocket on /ws/v5/public or /ws/v5/business."""

    def __init__(
        self, *, state: SimState, hub: Hub, ws: web.WebSocketResponse, request: web.Request, endpoint: str
    ) -> None:
        self.state = state
        self.hub = hub
        self.ws = ws
        self.request = request
        self.endpoint = endpoint
        self.path = request.path  # narrows faults that name a "path"
        self.conn_id = secrets.token_hex(4)
        self.subs: set[tuple[str, str]] = set()
        self.connected_ms = state.clock()
        self.last_push_ms = self.connected_ms
        self.subscribed = False
        self.logged_in = False
        self._skip_books: set[str | None] = set()
        self._held: str | None = None
        self._held_handle: asyncio.TimerHandle | None = None
        self._stall_held: list[tuple[str, str, str]] = []  # (channel, instId, text) held by a narrowed stall
        self._stall_seen = False
        self._stall_end_ms = 0  # the idle clock restarts when a stall that silenced this connection ends
        self._out = Outbox()
        # The 4005 limit counts only the client's own backlog: not what a stall piled up (the writer held by a
        # whole-connection stall, or pushes released at once when a narrowed stall ends). ``_excused`` is how
        # many of the queued frames a stall left there; it shrinks as the writer sends them.
        self._holding = False
        self._excused = 0
        self._notice_handle: asyncio.TimerHandle | None = None

    # -- hub side (synchronous) -----------------------------------------------------------------------
    def push(self, channel: str, inst_id: str, message: Json | None, text: str) -> None:
        """Queue a data push, applying the active wire faults (the truth is never touched). ``message`` is
        the decoded ``text`` when the caller has it (None: decoded here only if a fault needs it)."""
        faults = self.state.faults
        if not faults.faults and self._held is None and not self._stall_held:
            self._enqueue(text)  # the common case, kept cheap for the firehose
            return
        if message is None:
            message = json.loads(text)
        now = self.state.clock()
        narrow = {"inst_id": inst_id, "channel": channel, "path": self.path}
        self._release_stall_held(now)
        if self._narrow_stall(now, inst_id, channel) is not None:
            self._stall_held.append((channel, inst_id, text))  # delivered in order when the stall ends
            return
        if channel == "books" and message.get("action") == "update" and self._take_gap(inst_id):
            return
        mal = faults.active("malformed", now, **narrow)
        if mal is not None and faults.roll(mal.number("rate", 1.0)):
            text = self._malformed(mal, channel, inst_id, message, now)
        dup = faults.active("duplicate", now, **narrow)
        if dup is not None and faults.roll(dup.number("rate", 1.0)):
            dup.hits += 1
            self._enqueue(text)
        reorder = faults.active("reorder", now, **narrow)
        if reorder is not None and self._held is None and faults.roll(reorder.number("rate", 1.0)):
            reorder.hits += 1
            self._held = text
            # Never hold a frame forever: without a next push it goes out after _REORDER_HOLD_S.
            self._held_handle = asyncio.get_running_loop().call_later(_REORDER_HOLD_S, self._release_held)
            return
        self._enqueue(text)
        self._release_held()

    def _narrow_stall(self, now: int, inst_id: str, channel: str) -> Fault | None:
        """An active stall narrowed to this instId or channel (a whole-connection stall pauses the writer)."""
        for fault in self.state.faults.faults:
            if (
                fault.kind == "stall"
                and (fault.inst_id is not None or fault.channel is not None)
                and fault.active(now)
                and fault.matches(inst_id=inst_id, channel=channel, path=self.path)
            ):
                return fault
        return None

    def _release_stall_held(self, now: int) -> None:
        """Queue, in order, the held pushes whose narrowed stall has ended."""
        if not self._stall_held:
            return
        still: list[tuple[str, str, str]] = []
        released: list[str] = []
        for channel, inst_id, text in self._stall_held:
            if self._narrow_stall(now, inst_id, channel) is None:
                released.append(text)
            else:
                still.append((channel, inst_id, text))
        self._stall_held = still
        self._excused += len(released)
        for text in released:
            self._out.put(text)

    def _release_held(self) -> None:
        if self._held_handle is not None:
            self._held_handle.cancel()
            self._held_handle = None
        if self._held is not None:
            held, self._held = self._held, None
            self._enqueue(held)

    def _stalled(self) -> bool:
        """A whole-connection stall: the writer holds every frame, pings go unanswered, the watchdog waits."""
        faults = self.state.faults
        return bool(faults.faults) and faults.stalling(self.state.clock(), self.path) is not None

    def _silenced(self, now: int) -> bool:
        """A stall keeps this connection's data back: a whole-connection one, or one narrowed to an instId or
        channel it subscribes to. The 4004 watchdog waits while it lasts (the silence is the server's)."""
        faults = self.state.faults
        if not faults.faults:
            return False
        if faults.stalling(now, self.path) is not None:
            return True
        return any(self._narrow_stall(now, inst_id, channel) is not None for channel, inst_id in self.subs)

    def _malformed(self, fault: Fault, channel: str, inst_id: str, message: Json, now: int) -> str:
        faults = self.state.faults
        variant = faults.choose(list(fault.params.get("variants") or MALFORMED_VARIANTS))
        text, applied = malform(message, variant)
        fault.hits += 1
        faults.log.append(
            {
                "fault_id": fault.id,
                "ts_ms": now,
                "connId": self.conn_id,
                "channel": channel,
                "instId": inst_id,
                "variant": applied,
                "frame": text,
            }
        )
        return text

    def _take_gap(self, inst_id: str) -> bool:
        for key in (inst_id, None):
            if key in self._skip_books:
                self._skip_books.discard(key)
                return True
        return False

    def send_event(self, message: Json | str) -> None:
        """Queue an event (ack, error, pong, notice); a stall delays it like any other frame.

        An unsubscribe ack waits behind the pushes a narrowed stall holds for its channel and instId, so no
        push of a channel ever follows the ack that ended it."""
        if isinstance(message, str):
            self._enqueue(message)
            return
        text = encode(message)
        arg = message.get("arg")
        if message.get("event") == "unsubscribe" and self._stall_held and isinstance(arg, dict):
            key = (arg.get("channel"), arg.get("instId"))
            if any((channel, inst_id) == key for channel, inst_id, _ in self._stall_held):
                self._stall_held.append((str(key[0]), str(key[1]), text))
                return
        self._enqueue(text)

    def _enqueue(self, text: str) -> None:
        if len(self._out) >= _QUEUE_LIMIT + self._excused and not self._holding:
            # A client this slow gets what OKX gives it: the backlog is dropped and the socket closed with 4005.
            self._out.clear()
            self._excused = 0
            self.close(4005, "Buffer is full, cannot write data")
            return
        self._out.put(text)

    def abort(self) -> None:
        """Drop the TCP connection at once: no close frame (an abrupt close, 1006 for the client)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def close(self, code: int, reason: str) -> None:
        self._out.put(Close(code, reason))

    def notice(self, fault: Fault) -> None:
        self.send_event({"event": "notice", "msg": _NOTICE_MSG, "code": "64008", "connId": self.conn_id})
        delay = fault.number("seconds", self.state.config.notice_close_s)
        loop = asyncio.get_running_loop()
        if self.state.config.notice_clean_close:
            self._notice_handle = loop.call_later(delay, self.close, 1000, "")
        else:
            self._notice_handle = loop.call_later(delay, self.abort)

    def skip_next_books(self, inst_id: str | None) -> None:
        self._skip_books.add(inst_id)

    # -- asyncio side ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until the client leaves or the server closes it."""
        self.hub.connections.add(self)
        tasks = [asyncio.create_task(self._writer()), asyncio.create_task(self._watchdog())]
        try:
            await self._reader()
        finally:
            self.hub.remove(self)
            if self._notice_handle is not None:
                self._notice_handle.cancel()
            if self._held_handle is not None:
                self._held_handle.cancel()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _reader(self) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.TEXT:
                self._on_text(msg.data)
            elif msg.type == WSMsgType.PING:
                if not self._stalled():
                    await self.ws.pong(msg.data)

    def _on_text(self, text: str) -> None:
        out = handle_text(
            text,
            endpoint=self.endpoint,
            conn_id=self.conn_id,
            inst_ids=self.hub.known_inst_ids(),
            credentials=self.state.config.credentials,
            now_ms=self.state.clock(),
        )
        self.logged_in = self.logged_in or out.logged_in
        for reply in out.replies:
            self.send_event(reply)
        if out.login_failed and self.state.config.login_failure_close:
            self.close(4001, "Login Failed")
        for channel, inst_id, _ in out.subscribe:
            if not self.subscribed:
                self.subscribed = True
                self.last_push_ms = self.state.clock()
            self.hub.subscribe(self, channel, inst_id)
        for channel, inst_id in out.unsubscribe:
            self.hub.unsubscribe(self, channel, inst_id)

    async def _writer(self) -> None:
        """Write queued frames in order, in batches; a whole-connection stall holds them until it ends."""
        while True:
            batch = await self._out.take()
            self._excused = min(self._excused, len(self._out))
            if self._stalled():
                self._holding = True
                await self._stall_over()
                self._holding = False
                self._excused = len(self._out)  # piled up by the stall: the client is not behind by these
            texts = [item for item in batch if isinstance(item, str)]
            if len(texts) < len(batch):  # a close request: send what was queued before it, then close
                close = next(item for item in batch if isinstance(item, Close))
                texts = texts[: batch.index(close)]
            else:
                close = None
            try:
                if texts and not await write_texts(self.ws, self.request, texts):
                    return
            except ConnectionResetError:
                return  # the client is gone (or a drop fault aborted the transport)
            self.state.stats.frames_sent += len(texts)
            self.last_push_ms = self.state.clock()
            if close is not None:
                await self.ws.close(code=close.code, message=close.reason.encode())
                return

    async def _stall_over(self) -> None:
        """Return once no whole-connection stall is active (it may be cleared early, so look again often)."""
        while True:
            if not self._stalled():
                return
            await asyncio.sleep(_STALL_POLL_S)

    async def _watchdog(self) -> None:
        idle_ms = self.state.config.idle_timeout_s * 1000
        while True:
            await asyncio.sleep(min(0.5, idle_ms / 10000))
            now = self.state.clock()
            self._release_stall_held(now)
            if self._silenced(now):
                self._stall_seen = True
                continue
            if self._stall_seen:  # the server's own silence is over: the client is not to blame for it
                self._stall_seen = False
                self._stall_end_ms = now
            since = now - max(self.last_push_ms if self.subscribed else self.connected_ms, self._stall_end_ms)
            if since > idle_ms:
                self.close(4004, "No data received in 30s.")
                return
