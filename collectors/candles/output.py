"""Where a series' candles go: events, completeness under no-data spans, and open-candle views."""

from __future__ import annotations

from decimal import localcontext
from functools import partial
from typing import TYPE_CHECKING

from collectors.candles.accumulator import Accumulator
from collectors.candles.events import CandleClosed, CandleEvent, CandleRevised, CandleUpdated
from collectors.candles.exact import EXACT
from collectors.candles.spans import SpanSet
from collectors.model import Candle, CandleSource

if TYPE_CHECKING:
    from collectors.candles.series import Series

__all__ = ["Output", "View"]


class Output:
    """Where series emit events; also the shared context (names, no-data spans, counters)."""

    __slots__ = ("closed_count", "events", "exchange", "inst_id", "no_data", "revised_count", "source")

    def __init__(self, *, exchange: str, inst_id: str, source: CandleSource, no_data: SpanSet) -> None:
        self.exchange = exchange
        self.inst_id = inst_id
        self.source = source
        self.no_data = no_data
        self.events: list[CandleEvent] = []
        self.closed_count = 0
        self.revised_count = 0

    def is_complete(self, acc: Accumulator, series: Series) -> bool:
        """No no-data span overlaps the bucket, nor (carried candle) lies between it and its close's source."""
        no_data = self.no_data
        if not no_data:
            return True
        start = acc.start_ms
        if no_data.overlaps(start, start + series.duration_ms):
            return False
        source = acc.carry_from
        return acc.count > 0 or source is None or not no_data.overlaps(source, start)

    def snapshot(self, acc: Accumulator, series: Series, *, is_closed: bool) -> Candle:
        return acc.to_candle(
            exchange=self.exchange,
            inst_id=self.inst_id,
            timeframe=series.name,
            is_closed=is_closed,
            is_complete=self.is_complete(acc, series),
            source=self.source,
        )

    def closed(self, acc: Accumulator, series: Series) -> None:
        self.events.append(CandleClosed(self.snapshot(acc, series, is_closed=True)))
        self.closed_count += 1

    def revised(self, acc: Accumulator, series: Series) -> None:
        acc.revision += 1
        self.events.append(CandleRevised(self.snapshot(acc, series, is_closed=True)))
        self.revised_count += 1

    def updated(self, view: View, series: Series) -> None:
        """A deferred :class:`CandleUpdated`: the candle is built from the view's frozen parts on first access."""
        no_data = self.no_data
        is_complete = not (no_data and no_data.overlaps(view.start_ms, view.start_ms + series.duration_ms))
        self.events.append(
            CandleUpdated.deferred(partial(self._build_update, view, series.name, is_complete))
        )

    def _build_update(self, view: View, timeframe: str, is_complete: bool) -> Candle:
        with localcontext(EXACT):
            return view.accumulator().to_candle(
                exchange=self.exchange,
                inst_id=self.inst_id,
                timeframe=timeframe,
                is_closed=False,
                is_complete=is_complete,
                source=self.source,
            )


class View:
    """An open candle as seen from outside: frozen parts it sums (our bucket's frozen copy and the views of
    unfolded finer buckets inside it); the sum is computed on demand, once."""

    __slots__ = ("_total", "dirty", "folds", "parts", "start_ms")

    def __init__(self, start_ms: int, parts: list[Accumulator | View], dirty: bool, folds: bool) -> None:
        self.start_ms = start_ms
        self.parts = parts
        self.dirty = dirty
        self.folds = folds
        self._total: Accumulator | None = None

    def accumulator(self) -> Accumulator:
        """The parts summed (cached; may be a shared frozen copy: treat the result as read-only)."""
        total = self._total
        if total is not None:
            return total
        parts = [p.accumulator() if isinstance(p, View) else p for p in self.parts]
        if len(parts) == 1 and parts[0].start_ms == self.start_ms:
            total = parts[0]
        else:
            total = Accumulator(start_ms=self.start_ms, price=parts[0].open)
            for part in parts:
                total.merge(part)
        self._total = total
        return total
