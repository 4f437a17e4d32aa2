"""The I/O around :class:`~collectors.live.core.PairCore`: pair collectors, one manager, shared connections.

A :class:`CollectorManager` runs many pairs in one process. It reads one event source per endpoint (an
``OkxWebSocket`` each for /public and /business), dispatches events by ``instId`` to the pair's core, ticks
every core on a clock, hands every record to the :class:`~collectors.storage.writer.BatchWriter`, and runs each
pair's REST requests (gap fills, catch-up polls) in that pair's own task through the shared
:class:`TradeHistory` (one client, one rate budget). Cancellation (SIGTERM/SIGINT in the command) stops
reading, then every core's pending candles and coverage are written and the writer is flushed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collectors.errors import CollectorError
from collectors.exchanges.okx.events import ErrorEvent, Event, Rejected
from collectors.exchanges.okx.protocol import ChannelArg
from collectors.live.archive import Archive
from collectors.live.core import FillRequest, PairCore
from collectors.live.health import PairHealth
from collectors.model import Trade

__all__ = ["CollectorManager", "EventSource", "PairCollector", "RecordSink", "TradeHistory"]

log = logging.getLogger(__name__)


class TradeRangeLike(Protocol):
    @property
    def trades(self) -> tuple[Trade, ...]: ...

    @property
    def unrecoverable(self) -> tuple[int, int] | None: ...

    @property
    def rejected(self) -> Sequence[RejectedRowLike]: ...


class RejectedRowLike(Protocol):
    @property
    def reason(self) -> str: ...

    @property
    def text(self) -> str: ...


class TradeHistory(Protocol):
    """REST trades (``OkxRestClient``): retries and the rate budget live there."""

    async def recent_trades(self, inst_id: str, *, limit: int = 500) -> list[Trade]: ...

    async def trades_between(
        self, inst_id: str, *, after_id: int, before_id: int | None = None
    ) -> TradeRangeLike: ...


class EventSource(Protocol):
    """A self-healing WebSocket session (``OkxWebSocket``): session events and parsed frames."""

    name: str

    def subscribe(self, args: Iterable[ChannelArg]) -> None: ...

    def resubscribe(self, args: Iterable[ChannelArg]) -> None: ...

    def events(self) -> AsyncIterator[Any]: ...

    async def aclose(self) -> None: ...


class RecordSink(Protocol):
    """The writer's front (``BatchWriter``)."""

    async def put_many(self, records: Iterable[Any]) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """Which source serves which channel of which pair."""

    source: str
    arg: ChannelArg


class PairCollector:
    """One pair: its core, and a task running its REST requests one at a time."""

    def __init__(self, *, core: PairCore, history: TradeHistory, clock: Callable[[], int]) -> None:
        self.core, self.history, self.clock = core, history, clock
        self._wake = asyncio.Event()
        self._failures = (
            0  # REST requests failed in a row: the first is logged, the recovery too, not each poll
        )

    @property
    def inst_id(self) -> str:
        return self.core.inst_id

    def poke(self) -> None:
        self._wake.set()

    async def run_requests(self) -> None:
        """Serve the core's REST requests until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for request in self.core.take_requests():
                await self._serve(request)

    async def _serve(self, request: FillRequest) -> None:
        inst = self.core.inst_id
        try:
            if request.kind == "recent":
                trades = await self.history.recent_trades(inst)
                self._answered(inst)
                self.core.on_fill(request, trades, None, self.clock())
                return
            answer = await self.history.trades_between(
                inst, after_id=request.after_id, before_id=request.before_id
            )
        except CollectorError as exc:  # the client already retried what can be retried
            self._failures += 1
            log.log(
                logging.WARNING if self._failures == 1 else logging.DEBUG,
                "%s: REST %s after %s failed: %s%s",
                inst,
                request.kind,
                request.after_id,
                exc,
                " (not logged again until REST answers)" if self._failures == 1 else "",
            )
            self.core.fill_failed(request, str(exc), self.clock())
            return
        self._answered(inst)
        now = self.clock()
        if answer.rejected:
            self.core.rest_rejected([(row.reason, row.text) for row in answer.rejected], now)
        self.core.on_fill(request, list(answer.trades), answer.unrecoverable, now)

    def _answered(self, inst: str) -> None:
        if self._failures:
            log.info("%s: REST answers again after %d failed requests", inst, self._failures)
            self._failures = 0


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
        trade_channels: frozenset[str] = frozenset({"trades", "trades-all"}),
    ) -> None:
        self.pairs = {p.inst_id: p for p in pairs}
        self.sources = list(sources)
        self.subscriptions = list(subscriptions)
        self.archive, self.sink, self.clock, self.tick_s = archive, sink, clock, tick_s
        self.trade_channels = trade_channels
        self._trade_source = {
            s.arg.inst_id: s.source for s in subscriptions if s.arg.channel in trade_channels
        }
        self._orphans: list[object] = []  # records of frames no pair owns (a truncated frame names none)
        self.stopped = False

    async def run(self, duration_s: float | None = None) -> None:
        """Subscribe, collect, and on any exit (cancellation, duration) write everything that is pending."""
        for source in self.sources:
            source.subscribe([s.arg for s in self.subscriptions if s.source == source.name])
        try:
            async with asyncio.timeout(duration_s), asyncio.TaskGroup() as group:
                for source in self.sources:
                    group.create_task(self._read(source), name=f"read-{source.name}")
                for pair in self.pairs.values():
                    group.create_task(pair.run_requests(), name=f"rest-{pair.inst_id}")
                group.create_task(self._tick_forever(), name="tick")
        except TimeoutError:
            pass
        finally:
            await self._stop()

    def health(self, *, writer_lag_ms: int | None = None) -> list[PairHealth]:
        now = self.clock()
        return [p.core.health(now, writer_lag_ms=writer_lag_ms) for p in self.pairs.values()]

    async def _stop(self) -> None:
        now = self.clock()
        for source in self.sources:
            await source.aclose()
        for pair in self.pairs.values():
            pair.core.stop(now)
        await asyncio.shield(self._flush())
        self.stopped = True

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            now = self.clock()
            for pair in self.pairs.values():
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
        text: str | None = None
        async for item in source.events():
            kind = type(item).__name__
            if kind == "RawFrame":
                text = _text(item.text)
                continue
            self._dispatch(source.name, item, text, kind)
            text = None

    def _dispatch(self, source: str, item: Any, text: str | None, kind: str) -> None:
        now = self.clock()
        if kind == "Disconnected":
            for inst, pair in self.pairs.items():
                if self._trade_source.get(inst) == source:
                    pair.core.stream_down(now)
            return
        if kind == "Connected":
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
        if pair is not None:
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
        elif isinstance(event, ErrorEvent):
            log.warning("OKX error %s: %s", event.code, event.msg)

    def _resubscribe(self, arg: ChannelArg) -> None:
        for sub in self.subscriptions:
            if sub.arg == arg:
                for source in self.sources:
                    if source.name == sub.source:
                        source.resubscribe([arg])
