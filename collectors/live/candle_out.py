"""Candle rows from engine events: closes and revisions at once, open-candle updates at most once per interval."""

from __future__ import annotations

from collections.abc import Iterable

from collectors.candles import CandleClosed, CandleEvent, CandleRevised, CandleUpdated, RevisionRequired
from collectors.model import Candle

__all__ = ["CandleOut"]

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
