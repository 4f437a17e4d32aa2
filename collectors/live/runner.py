"""The I/O around :class:`~collectors.live.core.PairCore`: pair collectors, one manager, shared connections.

A :class:`CollectorManager` runs many pairs in one process. It reads one event source per endpoint (an
``OkxWebSocket`` each for /public and /business), dispatches events by ``instId`` to the pair's core, ticks
every core on a clock, hands every record to the :class:`~collectors.storage.writer.BatchWriter`, and runs each
pair's REST requests (gap fills, catch-up polls) in that pair's own task through the shared
:class:`TradeHistory` (one client, one rate budget). Cancellation (SIGTERM/SIGINT in the command) stops
reading, then every core's pending candles and coverage are written and the writer is flushed.

Connections are the manager's to report (:meth:`CollectorManager.health` completes each core's health): every
new connection of an endpoint after its first is a reconnect; a channel is ``down`` while no connection of its
endpoint is up. A source that fails for good (a fatal close code such as 4001, refused credentials) stops the
pairs whose trade stream it carried (state ``failed``, one ERROR line naming them) and marks its other channels
``failed``; the other pairs go on. When no pair is left collecting, or every source failed, the run ends: the
pending rows are written, then :meth:`CollectorManager.run` raises that error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from collectors.errors import CollectorError
from collectors.exchanges.okx.events import (
    BooksPush,
    CandlePush,
    ErrorEvent,
    Event,
    Rejected,
    TickerPush,
    TradesPush,
)
from collectors.exchanges.okx.protocol import ChannelArg
from collectors.live.archive import Archive
from collectors.live.health import ChannelHealth, PairHealth
from collectors.live.pair import PairCollector, TradeHistory

__all__ = ["CollectorManager", "EventSource", "PairCollector", "RecordSink", "TradeHistory"]

log = logging.getLogger(__name__)

# what a pair's core is given: data pushes and rejected frames (acks and errors are the session's business)
_DATA: Final = (TradesPush, BooksPush, TickerPush, CandlePush, Rejected)


class EventSource(Protocol):
    """A self-healing WebSocket session (``OkxWebSocket``): session events and parsed frames, each handed to
    ``deliver(event, text)`` (``text``: the frame's exact text, for the raw archive) until it is closed."""

    name: str

    def subscribe(self, args: Iterable[ChannelArg]) -> None: ...

    def unsubscribe(self, args: Iterable[ChannelArg]) -> None: ...

    def resubscribe(self, args: Iterable[ChannelArg]) -> None: ...

    async def deliver_to(self, deliver: Callable[[Any, str | bytes | None], None]) -> None: ...

    async def aclose(self) -> None: ...


class RecordSink(Protocol):
    """The writer's front (``BatchWriter``)."""

    async def put_many(self, records: Iterable[Any]) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """Which source serves which channel of which pair."""

    source: str
    arg: ChannelArg


def _text(raw: str | bytes) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")


class CollectorManager:
    """Runs pair collectors over shared sources; :meth:`run` until cancelled or ``duration_s``."""

    def __init__(
        self,
        *,
        pairs: Sequence[PairCollector],
        sources: Sequence[EventSource],
        subscriptions: Sequence[Subscription],
        archive: Archive,
        sink: RecordSink,
        clock: Callable[[], int],
        tick_s: float = 0.2,
        drain_s: float = 0.05,
        trade_channels: frozenset[str] = frozenset({"trades", "trades-all"}),
    ) -> None:
        self.pairs = {p.inst_id: p for p in pairs}
        self.sources = list(sources)
        self.subscriptions = list(subscriptions)
        self.archive, self.sink, self.clock, self.tick_s = archive, sink, clock, tick_s
        self.drain_s = min(drain_s, tick_s)
        self.trade_channels = trade_channels
        self._trade_source = {
            s.arg.inst_id: s.source for s in subscriptions if s.arg.channel in trade_channels
        }
        self._trade_channel = {
            s.arg.inst_id: s.arg.channel for s in subscriptions if s.arg.channel in trade_channels
        }
        self._orphans: list[object] = []  # records of frames no pair owns (a truncated frame names none)
        self._connections = dict.fromkeys((s.name for s in self.sources), 0)  # connections opened
        self._open: dict[str, set[int]] = {s.name: set() for s in self.sources}  # connection numbers up now
        self._dead: dict[str, str] = {}  # source -> why it failed for good
        self._failed: dict[str, str] = {}  # instId -> why the pair was stopped
        self._rest_tasks: dict[str, asyncio.Task[None]] = {}
        self.stopped = False

    async def run(self, duration_s: float | None = None) -> None:
        """Subscribe, collect, and on any exit (cancellation, duration, every pair failed) write everything that
        is pending. Raises the permanent error that left no pair collecting (after the write)."""
        for source in self.sources:
            source.subscribe([s.arg for s in self.subscriptions if s.source == source.name])
        fatal: CollectorError | None = None
        try:
            async with asyncio.timeout(duration_s):
                fatal = await self._run_tasks()
        except TimeoutError:
            pass
        finally:
            await self._stop()
        if fatal is not None:
            raise fatal

    async def _run_tasks(self) -> CollectorError | None:
        fatal: CollectorError | None = None
        try:
            async with asyncio.TaskGroup() as group:
                for source in self.sources:
                    group.create_task(self._read(source), name=f"read-{source.name}")
                for inst, pair in self.pairs.items():
                    self._rest_tasks[inst] = group.create_task(pair.run_requests(), name=f"rest-{inst}")
                group.create_task(self._tick_forever(), name="tick")
        except* CollectorError as failed:  # raised by _read when nothing is left to collect
            first = failed.exceptions[0]
            fatal = first if isinstance(first, CollectorError) else None
            if fatal is None:
                raise
        return fatal

    def health(self, *, writer_lag_ms: int | None = None) -> list[PairHealth]:
        now = self.clock()
        return [
            self._pair_health(inst, p.core.health(now, writer_lag_ms=writer_lag_ms))
            for inst, p in self.pairs.items()
        ]

    def _reconnects(self, source: str) -> int:
        return max(0, self._connections.get(source, 0) - 1)

    def _pair_health(self, inst: str, core: PairHealth) -> PairHealth:
        """The core's health with what only the manager knows: connections, a stop, a failed endpoint."""
        mine = [s for s in self.subscriptions if s.arg.inst_id == inst]
        seen = {c.channel: c for c in core.channels}
        channels = [
            self._channel_health(inst, s.source, seen.pop(s.arg.channel, None), s.arg.channel) for s in mine
        ]
        channels += seen.values()  # a channel the pair never subscribed (a rejected frame naming it)
        error = self._failed.get(inst)
        state = core.state
        if error is not None:
            state = "failed"
        elif self.stopped:
            state = "stopped"
        elif inst not in self._trade_channel:  # no trade stream: the core's state speaks of none
            state = "live" if any(c.state == "live" for c in channels) else "down"
        return dataclasses.replace(
            core,
            state=state,
            channels=tuple(channels),
            reconnects=sum(self._reconnects(name) for name in dict.fromkeys(s.source for s in mine)),
            trades_channel=self._trade_channel.get(inst),
            error=error,
        )

    def _channel_health(self, inst: str, source: str, seen: ChannelHealth | None, name: str) -> ChannelHealth:
        base = seen or ChannelHealth(
            channel=name,
            state="waiting",
            last_message_age_ms=None,
            messages=0,
            messages_per_s=0.0,
            rejected=0,
        )
        error = base.error or self._dead.get(source)
        if error is not None:
            state = "failed"
        elif self.stopped or inst in self._failed:
            state = "stopped"
        elif not self._open.get(source):
            state = "down"
        else:
            state = "waiting" if base.last_message_age_ms is None else "live"
        return dataclasses.replace(base, state=state, error=error, reconnects=self._reconnects(source))

    async def _stop(self) -> None:
        now = self.clock()
        for source in self.sources:
            await source.aclose()
        for inst, pair in self.pairs.items():
            if inst not in self._failed:  # a failed pair was stopped when it failed
                pair.core.stop(now)
        await asyncio.shield(self._flush())
        self.stopped = True

    async def _tick_forever(self) -> None:
        """The cores tick every ``tick_s``; their records go to the writer every ``drain_s`` (and after each
        tick), so a trade waits at most ``drain_s`` before the writer has it, not a whole tick."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.tick_s
        while True:
            await asyncio.sleep(min(self.drain_s, max(0.0, next_tick - loop.time())))
            if loop.time() >= next_tick:
                next_tick = max(next_tick + self.tick_s, loop.time())
                now = self.clock()
                for inst, pair in self.pairs.items():
                    if inst not in self._failed:
                        pair.core.tick(now)
            await self._flush()

    async def _flush(self) -> None:
        records: list[object] = self._orphans
        self._orphans = []
        for pair in self.pairs.values():
            records.extend(pair.core.drain())
            if pair.core.has_requests:
                pair.poke()
        if records:
            await self.sink.put_many(records)

    async def _read(self, source: EventSource) -> None:
        name, dispatch = source.name, self._dispatch

        def deliver(item: Any, raw: str | bytes | None) -> None:  # on the session's reader task, per frame
            dispatch(name, item, raw if raw is None or type(raw) is str else _text(raw), type(item).__name__)

        try:
            await source.deliver_to(deliver)
        except CollectorError as exc:  # permanent: the session retries everything else itself
            self._source_failed(source.name, exc)

    def _source_failed(self, name: str, exc: CollectorError) -> None:
        """Stop the pairs whose trades came through ``name``; raise ``exc`` when nothing is left to collect."""
        now = self.clock()
        reason = f"{name} WebSocket failed for good: {exc}"
        self._dead[name] = reason
        stopped = [i for i, src in self._trade_source.items() if src == name and i not in self._failed]
        for inst in stopped:
            self._failed[inst] = reason
            task = self._rest_tasks.pop(inst, None)
            if task is not None:
                task.cancel()
            self.pairs[inst].core.stop(now)
            for source in self.sources:
                if source.name not in self._dead:
                    source.unsubscribe(s.arg for s in self.subscriptions if s.arg.inst_id == inst)
        lost = [
            f"{s.arg.inst_id} {s.arg.channel}"
            for s in self.subscriptions
            if s.source == name and s.arg.inst_id not in self._failed
        ]
        log.error(
            "%s; pairs stopped (their trade stream used it): %s; channels lost: %s",
            reason,
            ", ".join(stopped) or "none",
            ", ".join(lost) or "none",
        )
        if len(self._failed) == len(self.pairs) or len(self._dead) == len(self.sources):
            raise exc

    def _dispatch(self, source: str, item: Any, text: str | None, kind: str) -> None:
        now = self.clock()
        if kind == "Connected":
            self._connections[source] = self._connections.get(source, 0) + 1
            self._open.setdefault(source, set()).add(item.conn_number)
            return
        if kind == "Disconnected":
            live = self._open.setdefault(source, set())
            live.discard(item.conn_number)
            if live:  # a 64008 switch: the successor is already subscribed, the stream never stopped
                return
            for inst, pair in self.pairs.items():
                if self._trade_source.get(inst) == source and inst not in self._failed:
                    pair.core.stream_down(now)
            return
        if kind == "SubscriptionFailed":
            failed = self.pairs.get(item.arg.inst_id)
            log.warning(
                "%s: %s subscription refused by OKX: %s %s",
                item.arg.inst_id,
                item.arg.channel,
                item.code,
                item.message,
            )
            if failed is not None:
                failed.core.subscription_failed(item.arg.channel, f"{item.code} {item.message}")
            return
        self._dispatch_event(item, text, now)

    def _dispatch_event(self, event: Event, text: str | None, now: int) -> None:
        inst_id = getattr(event, "inst_id", None)
        pair = self.pairs.get(inst_id) if isinstance(inst_id, str) else None
        if pair is not None and isinstance(event, _DATA):
            if inst_id in self._failed:
                return
            pair.core.on_event(event, now, text)
            for channel in pair.core.resubscribe:
                self._resubscribe(ChannelArg(channel=channel, inst_id=pair.inst_id))
            pair.core.resubscribe.clear()
        elif isinstance(event, Rejected):
            self._orphans.append(
                self.archive.rejected(
                    channel=event.channel,
                    inst_id=event.inst_id,
                    recv_ms=now,
                    reason=event.reason,
                    text=event.text if text is None else text,
                )
            )
        elif isinstance(event, ErrorEvent) and pair is None:
            log.warning("OKX error %s: %s", event.code, event.msg)

    def _resubscribe(self, arg: ChannelArg) -> None:
        for sub in self.subscriptions:
            if sub.arg == arg:
                for source in self.sources:
                    if source.name == sub.source:
                        source.resubscribe([arg])
