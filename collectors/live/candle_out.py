"""Candle rows of a live pair: closes and revisions at once, open-candle updates at most once per interval.

:class:`LiveCandles` drives the pair's candle engine: delivered trades are fed in one call before the engine's
next other call (the engine's result does not depend on how a tape is split into calls; one call per tick
instead of one per push saves its per-call cost), and the open candles changed since the last tick are read
then (``CandleEngine.updates()``: one update per candle however many trades changed it).
"""

from __future__ import annotations

from collections.abc import Iterable

from collectors.candles import (
    CandleClosed,
    CandleEngine,
    CandleEvent,
    CandleRevised,
    CandleUpdated,
    RevisionRequired,
)
from collectors.model import Candle, Trade

__all__ = ["CandleOut", "LiveCandles"]

_Key = tuple[str, int]


class CandleOut:
    """Throttles ``CandleUpdated`` to one row per candle per ``update_interval_ms``; the newest state wins."""

    def __init__(self, *, update_interval_ms: int) -> None:
        self.update_interval_ms = update_interval_ms
        self._written_ms: dict[_Key, int] = {}
        self._pending: dict[_Key, CandleUpdated] = {}
        self.revision_requests: list[RevisionRequired] = []

    def take(self, events: Iterable[CandleEvent], now_ms: int) -> list[Candle]:
        rows: list[Candle] = []
        for event in events:
            if isinstance(event, CandleUpdated):
                # the event's own key: building the candle here would cost ~4 us for every superseded update
                self._pending[(event.timeframe, event.open_time_ms)] = event
            elif isinstance(event, CandleClosed | CandleRevised):
                candle = event.candle
                key = (candle.timeframe, candle.open_time_ms)
                self._pending.pop(key, None)
                self._written_ms.pop(key, None)
                rows.append(candle)
            else:
                self.revision_requests.append(event)
        rows.extend(self.due(now_ms))
        return rows

    def due(self, now_ms: int) -> list[Candle]:
        """Pending updates whose candle was last written ``update_interval_ms`` ago or never."""
        rows: list[Candle] = []
        for key in list(self._pending):
            last = self._written_ms.get(key)
            if last is None or now_ms - last >= self.update_interval_ms:
                rows.append(self._pending.pop(key).candle)
                self._written_ms[key] = now_ms
        return rows

    def flush(self) -> list[Candle]:
        """Every pending update now (stopping)."""
        rows = [event.candle for event in self._pending.values()]
        self._pending.clear()
        return rows


class LiveCandles:
    """One pair's engine and its rows; every method returns the candle rows to write."""

    def __init__(self, *, engine: CandleEngine, update_interval_ms: int) -> None:
        self.engine = engine
        self.out = CandleOut(update_interval_ms=update_interval_ms)
        self._unfed: list[Trade] = []

    @property
    def revision_requests(self) -> list[RevisionRequired]:
        return self.out.revision_requests

    def add(self, trades: list[Trade]) -> None:
        """Delivered trades (id order): fed before the engine's next other call."""
        self._unfed.extend(trades)

    def tick(self, now_ms: int) -> list[Candle]:
        """Candles the clock closes, then the open candles changed since the last tick."""
        rows = self._feed(now_ms)
        events = self.engine.advance(now_ms)
        events += self.engine.updates()
        return rows + self.out.take(events, now_ms)

    def no_data(self, start_ms: int, end_ms: int) -> list[Candle]:
        return self._feed(end_ms) + self.out.take(self.engine.mark_no_data(start_ms, end_ms), end_ms)

    def filled(self, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        return self._feed(now_ms) + self.out.take(self.engine.mark_filled(start_ms, end_ms), now_ms)

    def flush(self) -> list[Candle]:
        """Stopping, after a last :meth:`tick`: the candles whose bucket ended by the engine's clock closed
        (without waiting for the allowed lateness: no later trade will come to this engine), then every pending
        update of the ones still running."""
        watermark = self.engine.watermark_ms
        rows = [] if watermark is None else self.out.take(self.engine.close_ended(watermark), watermark)
        return rows + self.out.flush()

    def _feed(self, now_ms: int) -> list[Candle]:
        if not self._unfed:
            return []
        trades, self._unfed = self._unfed, []
        events = self.engine.on_trades(trades)
        return self.out.take(events, now_ms) if events else []  # closes and revisions
