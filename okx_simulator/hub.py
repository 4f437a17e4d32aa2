"""Fan-out of channel frames to WebSocket connections, and firing of one-shot faults (asyncio layer).

The hub owns one ``InstFeed`` per instrument that has subscribers and steps them every ``tick_ms``; it never
blocks on a client: each connection has its own queue and writer task.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from okx_simulator.faults import Fault
from okx_simulator.pushes import InstFeed
from okx_simulator.replay import Capture, ReplayFrame
from okx_simulator.state import SimState
from okx_simulator.wire import encode

__all__ = ["Hub", "Subscriber", "encode"]

Json = dict[str, Any]


class Subscriber(Protocol):
    """What the hub needs from a connection."""

    conn_id: str
    endpoint: str
    path: str
    subs: set[tuple[str, str]]

    def push(self, channel: str, inst_id: str, message: Json | None, text: str) -> None: ...

    def send_event(self, message: Json | str) -> None: ...

    def abort(self) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def notice(self, fault: Fault) -> None: ...

    def skip_next_books(self, inst_id: str | None) -> None: ...


class Hub:
    """Subscriptions of every connection and the per-instrument channel feeds."""

    def __init__(self, *, state: SimState, capture: Capture | None = None) -> None:
        self.state = state
        self.capture = capture
        self.connections: set[Subscriber] = set()
        self.subs: dict[tuple[str, str], set[Subscriber]] = {}
        self.feeds: dict[str, InstFeed] = {}
        # Replay cursors: (connection, channel, instId) -> [subscribe time, frames, next index].
        self._replays: dict[tuple[Subscriber, str, str], tuple[int, list[ReplayFrame], list[int]]] = {}

    def known_inst_ids(self) -> set[str]:
        """instIds a subscription may name: the market's, plus the capture's in replay mode."""
        extra = self.capture.inst_ids() if self.capture is not None else set()
        return set(self.state.market.instruments) | extra

    def _feed(self, inst_id: str, now_ms: int) -> InstFeed:
        feed = self.feeds.get(inst_id)
        if feed is None:
            inst = self.state.market.instruments[inst_id]
            feed = InstFeed(inst=inst, config=self.state.config, now_ms=now_ms)
            self.feeds[inst_id] = feed
        return feed

    def subscribe(self, conn: Subscriber, channel: str, inst_id: str) -> None:
        """Register a subscription and push the current state to ``conn`` (not again if already subscribed)."""
        key = (channel, inst_id)
        if key in conn.subs:
            return
        conn.subs.add(key)
        now = self.state.clock()
        if self.capture is not None and key in self.capture.keys():
            self._replays[(conn, channel, inst_id)] = (now, self.capture.for_key(channel, inst_id), [0])
            return
        self.subs.setdefault(key, set()).add(conn)
        for message in self._feed(inst_id, now).initial(channel, now):
            conn.push(channel, inst_id, message, encode(message))

    def unsubscribe(self, conn: Subscriber, channel: str, inst_id: str) -> None:
        key = (channel, inst_id)
        conn.subs.discard(key)
        self._replays.pop((conn, channel, inst_id), None)
        subscribers = self.subs.get(key)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self.subs[key]

    def remove(self, conn: Subscriber) -> None:
        for channel, inst_id in list(conn.subs):
            self.unsubscribe(conn, channel, inst_id)
        self.connections.discard(conn)

    def tick(self, now_ms: int) -> None:
        """Step every instrument with subscribers and deliver its frames."""
        wanted: dict[str, set[str]] = {}
        for channel, inst_id in self.subs:
            wanted.setdefault(inst_id, set()).add(channel)
        for inst_id, channels in wanted.items():
            targets = {c: tuple(self.subs.get((c, inst_id), ())) for c in channels}
            for channel, message, text in self._feed(inst_id, now_ms).step(channels, now_ms):
                for conn in targets[channel]:
                    conn.push(channel, inst_id, message, text)
        for inst_id in set(self.feeds) - set(wanted):
            del self.feeds[inst_id]
        self._play(now_ms)
        self._fire_faults(now_ms)

    def _play(self, now_ms: int) -> None:
        """Send each replay subscriber the recorded frames whose offset has elapsed since it subscribed."""
        for (conn, channel, inst_id), (start, frames, cursor) in list(self._replays.items()):
            while cursor[0] < len(frames) and frames[cursor[0]].offset_ms <= now_ms - start:
                text = frames[cursor[0]].text
                conn.push(channel, inst_id, json.loads(text), text)
                cursor[0] += 1

    def _fire_faults(self, now_ms: int) -> None:
        for fault in self.state.faults.due_one_shots(now_ms):
            if fault.kind == "seq_reset":
                for inst_id, feed in self.feeds.items():
                    if fault.matches(inst_id=inst_id):
                        feed.reset_sequence()
                continue
            for conn in list(self.connections):
                if self._applies(fault, conn):
                    fault.hits += 1
                    self._apply(fault, conn)

    def _applies(self, fault: Fault, conn: Subscriber) -> bool:
        if (
            fault.kind == "notice"
            and conn.endpoint == "business"
            and not self.state.config.notice_on_business
        ):
            return False
        if fault.path is not None and fault.path != conn.path:
            return False
        if fault.inst_id is None and fault.channel is None:
            return True
        return any(fault.matches(inst_id=i, channel=c, path=conn.path) for c, i in conn.subs)

    @staticmethod
    def _apply(fault: Fault, conn: Subscriber) -> None:
        if fault.kind == "drop":
            conn.abort()
        elif fault.kind == "close":
            conn.close(int(fault.number("code", 1000)), str(fault.params.get("reason", "")))
        elif fault.kind == "notice":
            conn.notice(fault)
        elif fault.kind == "book_gap":
            conn.skip_next_books(fault.inst_id)

    async def run(self) -> None:
        """Tick forever (until cancelled)."""
        period = self.state.config.tick_ms / 1000
        while True:
            self.tick(self.state.clock())
            await asyncio.sleep(period)
