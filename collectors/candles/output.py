"""Where a series' candles go: events, completeness under no-data spans, and open-candle views."""

from __future__ import annotations

from decimal import localcontext
from typing import TYPE_CHECKING

from collectors.candles.accumulator import Accumulator
from collectors.candles.events import CandleClosed, CandleEvent, CandleRevised
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


class View:
    """An open candle as seen from outside, frozen: our bucket's frozen copy (``own``, None when only finer
    candles inside it have trades yet) and the views of unfolded finer buckets inside it (``kids``); the sum
    is computed on demand, once. A view is also the deferred maker of its :class:`CandleUpdated`: calling it
    builds the candle (it reads only frozen parts and values fixed when it was made)."""

    __slots__ = ("_total", "complete", "dirty", "folds", "kids", "out", "own", "start_ms", "timeframe")

    def __init__(
        self,
        start_ms: int,
        own: Accumulator | None,
        kids: list[View] | None,
        dirty: bool,
        folds: bool,
        timeframe: str,
        out: Output,
    ) -> None:
        self.start_ms = start_ms
        self.own = own
        self.kids = kids
        self.dirty = dirty  # changed since the engine last emitted updates
        self.folds = folds
        self.timeframe = timeframe
        self.out = out
        self.complete = True  # the engine sets it when it emits the view as an update
        self._total: Accumulator | None = None

    def accumulator(self) -> Accumulator:
        """The parts summed (cached; may be a shared frozen copy: treat the result as read-only)."""
        total = self._total
        if total is not None:
            return total
        own, kids = self.own, self.kids
        if not kids:
            assert own is not None  # a view has its own bucket or finer ones inside it
            total = own
        elif own is None and len(kids) == 1 and kids[0].start_ms == self.start_ms:
            total = kids[0].accumulator()  # the first finer bucket of ours: the same candle
        else:
            parts = [kid.accumulator() for kid in kids]
            if own is not None:
                parts.insert(0, own)
            total = Accumulator(start_ms=self.start_ms, price=parts[0].open)
            for part in parts:
                total.merge(part)
        self._total = total
        return total

    def __call__(self) -> Candle:
        """The :class:`CandleUpdated` candle of this view (``is_closed`` False)."""
        out = self.out
        with localcontext(EXACT):
            return self.accumulator().to_candle(
                exchange=out.exchange,
                inst_id=out.inst_id,
                timeframe=self.timeframe,
                is_closed=False,
                is_complete=self.complete,
                source=out.source,
            )
