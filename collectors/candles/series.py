"""Open and recently closed candles of one timeframe: placement, closing, carrying, revising.

Invariants (per series):

* every bucket starting before ``closed_through`` is closed: it was emitted once (``closed``), skipped (empty
  under ``skip``, or inside a no-data span), or created later by a late trade (emitted then);
* ``open`` holds only buckets starting at or after ``closed_through``;
* ``closed`` keeps emitted candles until ``end + lateness + retention <= watermark``, then forgets them;
* fold chain: an open accumulator with ``folds`` set has its trades only here, and they reach ``parent`` when
  it closes (a parent bucket always closes after its sub-buckets); one without ``folds`` (its parent bucket
  was already closed, e.g. after ``flush``) had every trade passed to the parent directly as well.
"""

from __future__ import annotations

from decimal import Decimal

from collectors.candles.accumulator import Accumulator
from collectors.candles.events import EmptyPolicy
from collectors.candles.output import Output, View
from collectors.model import Timeframe

__all__ = ["Placement", "Series"]

# Placeholder for "no cached bucket" (its range cur_start=1, cur_end=0 matches no timestamp).
_NOWHERE = Accumulator(start_ms=0, price=Decimal(0))


class Placement:
    """Outcome of placing a trade in a series (plain ints: this is on the hot path)."""

    OPEN = 0  # joined an open candle
    LATE = 1  # revised or created a closed candle
    MISSING = 2  # its closed candle is no longer in memory
    DETACHED = 3  # joined an open candle that will not fold up: pass the trade to the parent too


class Series:
    """Candles of one timeframe of one instrument."""

    def __init__(
        self, *, timeframe: Timeframe, policy: EmptyPolicy, lateness_ms: int, retention_ms: int
    ) -> None:
        self.timeframe = timeframe
        self.name = timeframe.name
        self.duration_ms = timeframe.duration_ms
        self.bucket = timeframe.bucket_start_ms  # the bucket that contains a time (Timeframe's rule)
        self.carry = policy is EmptyPolicy.CARRY
        self.keep_ms = timeframe.duration_ms + lateness_ms + retention_ms  # start + keep_ms <= wm: forget
        self.open: dict[int, Accumulator] = {}
        self.closed: dict[int, Accumulator] = {}
        self.closed_through: int | None = None
        self.last_close: Decimal | None = None
        self.close_from_ms: int | None = None  # start of the real candle last_close comes from
        # Fold chain: this series' closed buckets are merged into ``parent`` (the next coarser series whose
        # buckets are unions of ours), so a trade updates only the finest series of its chain directly.
        self.parent: Series | None = None
        self.child: Series | None = None
        # The newest open bucket, cached for the in-order fast path: cur_start <= ts < cur_end.
        self.cur_start = 1
        self.cur_end = 0
        self.cur: Accumulator = _NOWHERE

    # -- placing trades -------------------------------------------------------------------------------

    def place(
        self,
        price: Decimal,
        size: Decimal,
        quote: Decimal,
        is_buy: bool,
        ts_ms: int,
        trade_id: int,
        watermark_ms: int | None,
        out: Output,
    ) -> int:
        """Slow path of trade placement (the engine handles ``cur`` itself); returns a :class:`Placement`."""
        start = self.bucket(ts_ms)
        acc = self.open.get(start)
        if acc is None and self.accepts(start):
            acc = self.open[start] = Accumulator(start_ms=start, price=price)
            acc.folds = self.folds_up(start)
        if acc is not None:
            acc.add(price, size, quote, is_buy, ts_ms, trade_id)
            if not acc.folds:
                return Placement.DETACHED
            if start >= self.cur_start or self.cur is _NOWHERE:
                self.cur, self.cur_start, self.cur_end = acc, start, start + self.duration_ms
            return Placement.OPEN
        acc = self.closed.get(start)
        if acc is not None:
            acc.add(price, size, quote, is_buy, ts_ms, trade_id)
            out.revised(acc, self)
        elif watermark_ms is not None and start + self.keep_ms <= watermark_ms:
            return Placement.MISSING
        else:  # never emitted (empty under skip, inside a no-data span, or before our first trade)
            acc = self.closed[start] = Accumulator(start_ms=start, price=price)
            acc.add(price, size, quote, is_buy, ts_ms, trade_id)
            out.closed(acc, self)
        self._recarry_after(acc, out)
        return Placement.LATE

    def accepts(self, start_ms: int) -> bool:
        """Whether the bucket starting at ``start_ms`` is (or may become) open."""
        return self.closed_through is None or start_ms >= self.closed_through

    def folds_up(self, start_ms: int) -> bool:
        """Whether our bucket ``start_ms`` will be merged into every ancestor (their buckets still open)."""
        parent = self.parent
        while parent is not None:
            start_ms = parent.bucket(start_ms)
            through = parent.closed_through
            if through is not None and start_ms < through:  # not parent.accepts(start_ms)
                return False
            parent = parent.parent
        return True

    def fold(self, acc: Accumulator) -> None:
        """Merge a closed bucket of the child series into our open bucket that contains it."""
        start = self.bucket(acc.start_ms)
        if not self.accepts(start):
            raise RuntimeError(f"{self.name} bucket {start} closed before its {acc.start_ms} sub-bucket")
        target = self.open.get(start)
        if target is None:
            target = self.open[start] = Accumulator(start_ms=start, price=acc.open)
            target.folds = self.folds_up(start)
        target.merge(acc)

    def _recarry_after(self, acc: Accumulator, out: Output) -> None:
        """Carried candles after a revised one follow its new close (created if missing, revised if changed)."""
        if not self.carry or self.closed_through is None:
            return
        price, source, start = acc.close, acc.start_ms, acc.start_ms + self.duration_ms
        while start < self.closed_through:
            nxt = self.closed.get(start)
            if nxt is None:
                end = start + self.duration_ms
                if not out.no_data.overlaps(start, end):
                    nxt = self.closed[start] = Accumulator(start_ms=start, price=price)
                    nxt.carry_from = source
                    out.closed(nxt, self)
            elif nxt.count > 0:
                return
            else:
                was_complete = out.is_complete(nxt, self)
                nxt.carry_from = source
                if nxt.carry_price(price) or out.is_complete(nxt, self) != was_complete:
                    out.revised(nxt, self)
            start += self.duration_ms
        self.last_close, self.close_from_ms = price, source

    def seed(self, price: Decimal, from_ms: int) -> None:
        """Before any trade: buckets before the one containing ``from_ms`` count as closed, the last of them
        with close ``price`` (carried into the empty buckets that follow)."""
        if self.open or self.closed or self.closed_through is not None:
            raise ValueError("seed() must come before any trade or watermark")
        self.closed_through = self.close_from_ms = self.bucket(from_ms)
        self.last_close = price

    # -- closing ---------------------------------------------------------------------------------------

    def close_before(self, boundary: int, out: Output) -> None:
        """Close every bucket starting before ``boundary`` (a bucket start), carrying empty ones."""
        if self.closed_through is not None and boundary <= self.closed_through:
            return
        for start in sorted(s for s in self.open if s < boundary):
            self._carry_until(start, out)
            acc = self.open.pop(start)
            if acc is self.cur:
                self.cur, self.cur_start, self.cur_end = _NOWHERE, 1, 0
            self._emit_closed(acc, out)
            if self.parent is not None and acc.folds:
                self.parent.fold(acc)
            self.closed_through = start + self.duration_ms
        self._carry_until(boundary, out)

    def flush(self, out: Output) -> None:
        """Close every open bucket now, whatever the watermark (end of a batch)."""
        if self.open:
            self.close_before(max(self.open) + self.duration_ms, out)

    def _carry_until(self, boundary: int, out: Output) -> None:
        """Emit carried candles for the empty buckets in ``[closed_through, boundary)``."""
        start = self.closed_through
        if start is not None and boundary <= start:
            return
        if self.carry and self.last_close is not None and start is not None:
            while start < boundary:
                end = start + self.duration_ms
                if not out.no_data.overlaps(start, end):
                    acc = Accumulator(start_ms=start, price=self.last_close)
                    acc.carry_from = self.close_from_ms
                    self._emit_closed(acc, out)
                start = end
        self.closed_through = boundary

    def _emit_closed(self, acc: Accumulator, out: Output) -> None:
        self.closed[acc.start_ms] = acc
        self.last_close = acc.close
        if acc.count > 0:
            self.close_from_ms = acc.start_ms
        out.closed(acc, self)

    def forget_before(self, watermark_ms: int) -> None:
        """Drop closed candles past their retention."""
        for start in [s for s in self.closed if s + self.keep_ms <= watermark_ms]:
            del self.closed[start]

    # -- reporting -------------------------------------------------------------------------------------

    def open_views(self, child_views: dict[int, View] | None) -> dict[int, View]:
        """The open candles as seen from outside: our open buckets plus unfolded child buckets inside them.

        ``child_views`` are the child's own views (computed first). A view only lists frozen parts (cached
        copies, made again only for accumulators changed since), so this costs no merging; ``dirty`` says a
        trade changed it since the engine last reset the flags of the open accumulators.
        """
        views: dict[int, View] = {}
        for start, acc in self.open.items():
            views[start] = View(start, [acc.frozen()], acc.dirty, acc.folds)
        if child_views:
            for start, child in child_views.items():
                if not child.folds:
                    continue  # its trades reached us directly
                key = self.bucket(start)
                target = views.get(key)
                if target is None:
                    views[key] = target = View(key, [], False, self.folds_up(key) if self.parent else True)
                target.parts.append(child)
                target.dirty = target.dirty or child.dirty
        return views

    def clear_dirty(self) -> None:
        for acc in self.open.values():
            acc.dirty = False

    def fill_gap(self, start_ms: int, end_ms: int, out: Output) -> None:
        """After a no-data span was filled without trades: carry into its closed, retained, empty buckets."""
        if not self.carry or self.closed_through is None:
            return
        start, stop = self.bucket(start_ms), min(end_ms, self.closed_through)
        while start < stop:
            end = start + self.duration_ms
            previous = self.closed.get(start - self.duration_ms)
            if start not in self.closed and previous is not None and not out.no_data.overlaps(start, end):
                acc = self.closed[start] = Accumulator(start_ms=start, price=previous.close)
                acc.carry_from = previous.start_ms if previous.count > 0 else previous.carry_from
                out.closed(acc, self)
            start = end
