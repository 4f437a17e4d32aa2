"""Open and recently closed candles of one timeframe: placement, closing, carrying, revising.

Invariants (per series):

* every bucket starting before ``closed_through`` is closed: it was emitted once (``closed``), skipped (empty
  under ``skip``, or inside a no-data span), or created later by a late trade (emitted then);
* ``open`` holds only buckets starting at or after ``closed_through``;
* ``closed`` keeps emitted candles until ``end + lateness + retention <= watermark``, then forgets them;
* carry (``carry`` policy): ``last_close`` is the price of the newest trade (by ``close_key`` = ``(ts_ms,
  trade_id)``) seen in a bucket before ``closed_through``, in memory or not; every carried candle knows the
  trade behind its close (``Accumulator.carried``), so a newer trade found later, even one whose own candle was
  forgotten, moves the carried candles that follow it;
* ``emitted_from``: the first bucket this series emitted (or seeded); the buckets before it were never emitted
  (no close was known yet), so a late trade there carries into them; but the buckets before a seed
  (:meth:`Series.seed`) are another engine's (a restart): a trade there is ``MISSING`` and nothing is emitted;
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
_NO_KEY = (-(2**63), -(2**63))  # older than every trade
_AFTER_EVERY_ID = 2**63  # a seeded close is newer than every trade before the seed


class Placement:
    """Outcome of placing a trade in a series (plain ints: this is on the hot path)."""

    OPEN = 0  # joined an open candle
    LATE = 1  # revised or created a closed candle
    MISSING = 2  # its closed candle is no longer in memory
    DETACHED = 3  # joined an open candle that will not fold up: pass the trade to the parent too


class Series:
    """Candles of one timeframe of one instrument."""

    __slots__ = (
        "bucket",
        "carry",
        "child",
        "close_from_ms",
        "close_key",
        "closed",
        "closed_through",
        "cur",
        "cur_end",
        "cur_start",
        "duration_ms",
        "emitted_from",
        "keep_ms",
        "last_close",
        "name",
        "offset_ms",
        "open",
        "parent",
        "seeded",
        "shown",
        "timeframe",
    )

    def __init__(
        self, *, timeframe: Timeframe, policy: EmptyPolicy, lateness_ms: int, retention_ms: int
    ) -> None:
        self.timeframe = timeframe
        self.name = timeframe.name
        self.duration_ms = timeframe.duration_ms
        self.bucket = timeframe.bucket_start_ms  # the bucket that contains a time (Timeframe's rule)
        self.offset_ms = timeframe.offset_ms  # for that rule inline on hot paths: t - (t - offset) % duration
        self.carry = policy is EmptyPolicy.CARRY
        self.keep_ms = timeframe.duration_ms + lateness_ms + retention_ms  # start + keep_ms <= wm: forget
        self.open: dict[int, Accumulator] = {}
        self.closed: dict[int, Accumulator] = {}
        self.closed_through: int | None = None
        self.last_close: Decimal | None = None
        self.close_from_ms: int | None = None  # start of the real candle last_close comes from
        self.close_key: tuple[int, int] = _NO_KEY  # (ts_ms, trade_id) of the trade last_close is the price of
        self.emitted_from: int | None = None  # the first bucket emitted or seeded (see the module)
        self.seeded: Accumulator | None = None  # seed_close(): stands for the bucket before the seed
        # Fold chain: this series' closed buckets are merged into ``parent`` (the next coarser series whose
        # buckets are unions of ours), so a trade updates only the finest series of its chain directly.
        self.parent: Series | None = None
        self.child: Series | None = None
        # The newest open bucket, cached for the in-order fast path: cur_start <= ts < cur_end.
        self.cur_start = 1
        self.cur_end = 0
        self.cur: Accumulator = _NOWHERE
        self.shown: dict[int, View] | None = None  # the open views of the engine's last updates (engine.py)

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
        elif self.before_seed(
            start
        ):  # another engine's candle (a restart): the caller's, like a forgotten one
            return Placement.MISSING
        elif watermark_ms is not None and start + self.keep_ms <= watermark_ms:
            if self.carry:
                self._missed(price, (ts_ms, trade_id), start, watermark_ms, out)
            return Placement.MISSING
        else:  # never emitted (empty under skip, inside a no-data span, or before our first trade)
            acc = Accumulator(start_ms=start, price=price)
            acc.add(price, size, quote, is_buy, ts_ms, trade_id)
            self._record(acc, out)
        self._recarry_after(acc, out)
        return Placement.LATE

    def accepts(self, start_ms: int) -> bool:
        """Whether the bucket starting at ``start_ms`` is (or may become) open."""
        return self.closed_through is None or start_ms >= self.closed_through

    def before_seed(self, start_ms: int) -> bool:
        """Whether the bucket ``start_ms`` lies before :meth:`seed`'s: this engine never emits such a bucket."""
        seeded = self.seeded
        return seeded is not None and start_ms <= seeded.start_ms

    def folds_up(self, start_ms: int) -> bool:
        """Whether our bucket ``start_ms`` will be merged into every ancestor (their buckets still open)."""
        parent = self.parent
        while parent is not None:
            start_ms -= (start_ms - parent.offset_ms) % parent.duration_ms  # parent.bucket(start_ms), inline
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
        if acc.dirty:  # trades no update showed yet (the bucket got them and closed within one call)
            target.dirty = True

    def _recarry_after(self, acc: Accumulator, out: Output) -> None:
        """Carried candles after a revised one follow its new close (created if missing, revised if changed)."""
        if not self.carry or self.closed_through is None:
            return
        price, source, key = acc.close, acc.start_ms, (acc.last_ms, acc.last_id)
        start = source + self.duration_ms
        while start < self.closed_through:
            nxt = self.closed.get(start)
            if nxt is None:
                if not out.no_data.overlaps(start, start + self.duration_ms):
                    self._record(
                        Accumulator.carried(start_ms=start, price=price, source_ms=source, key=key), out
                    )
            elif nxt.count > 0:
                return
            else:
                self._recarry(nxt, price, source, key, out)
            start += self.duration_ms
        self._newest_close(price, source, key)

    def _missed(
        self, price: Decimal, key: tuple[int, int], start: int, watermark_ms: int, out: Output
    ) -> None:
        """A trade for a bucket no longer in memory (the caller revises that candle; ``carry`` only).

        Buckets after it that were never emitted (before ``emitted_from``: no close was known) get carried
        candles now; retained carried candles whose close comes from an older trade follow it; and it becomes
        the close carried from now on when it is the newest trade seen.
        """
        assert self.closed_through is not None  # a bucket is only missing once something closed
        frontier = self.emitted_from if self.emitted_from is not None else self.closed_through
        retained_from = self.retained_from(watermark_ms)
        bucket = start + self.duration_ms
        while bucket < frontier:
            if not out.no_data.overlaps(bucket, bucket + self.duration_ms):
                acc = Accumulator.carried(start_ms=bucket, price=price, source_ms=start, key=key)
                if bucket >= retained_from:
                    self.closed[bucket] = acc
                out.closed(acc, self)
            bucket += self.duration_ms
        if self.emitted_from is None or start < self.emitted_from:
            self.emitted_from = start
        for later in sorted(s for s, acc in self.closed.items() if s > start and acc.count == 0):
            acc = self.closed[later]
            if (acc.last_ms, acc.last_id) < key:
                self._recarry(acc, price, start, key, out)
        self._newest_close(price, start, key)

    def _recarry(
        self, acc: Accumulator, price: Decimal, source: int, key: tuple[int, int], out: Output
    ) -> None:
        """A retained carried candle now carries ``price`` (revised if its OHLC or completeness changed)."""
        was_complete = out.is_complete(acc, self)
        if acc.carry_price(price, source, key) or out.is_complete(acc, self) != was_complete:
            out.revised(acc, self)

    def _newest_close(self, price: Decimal, source: int, key: tuple[int, int]) -> None:
        if key >= self.close_key:
            self.last_close, self.close_from_ms, self.close_key = price, source, key

    def retained_from(self, watermark_ms: int) -> int:
        """The first bucket still in memory at ``watermark_ms`` (``start + keep_ms > watermark``)."""
        return self.bucket(watermark_ms - self.keep_ms) + self.duration_ms

    def seed(self, price: Decimal, from_ms: int) -> None:
        """Before any trade: buckets before the one containing ``from_ms`` count as closed, the last of them
        with close ``price`` (carried into the empty buckets that follow)."""
        if self.open or self.closed or self.closed_through is not None:
            raise ValueError("seed() must come before any trade or watermark")
        start = self.closed_through = self.close_from_ms = self.emitted_from = self.bucket(from_ms)
        self.last_close = price
        self.close_key = (start - 1, _AFTER_EVERY_ID)
        self.seeded = Accumulator.carried(
            start_ms=start - self.duration_ms, price=price, source_ms=start, key=self.close_key
        )

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
                    acc = Accumulator.carried(
                        start_ms=start,
                        price=self.last_close,
                        source_ms=self.close_from_ms,
                        key=self.close_key,
                    )
                    self._emit_closed(acc, out)
                start = end
        self.closed_through = boundary

    def _emit_closed(self, acc: Accumulator, out: Output) -> None:
        """Emit a bucket closing in time order: its close is the newest one."""
        self.last_close, self.close_key = acc.close, (acc.last_ms, acc.last_id)
        if acc.count > 0:
            self.close_from_ms = acc.start_ms
        self._record(acc, out)

    def _record(self, acc: Accumulator, out: Output) -> None:
        self.closed[acc.start_ms] = acc
        if self.emitted_from is None or acc.start_ms < self.emitted_from:
            self.emitted_from = acc.start_ms
        out.closed(acc, self)

    def forget_before(self, watermark_ms: int) -> None:
        """Drop closed candles past their retention."""
        for start in [s for s in self.closed if s + self.keep_ms <= watermark_ms]:
            del self.closed[start]

    # -- reporting -------------------------------------------------------------------------------------

    def views(self, kids: dict[int, View] | None, out: Output, *, clear: bool) -> dict[int, View]:
        """The open candles as seen from outside: our open buckets plus unfolded child buckets inside them.

        ``kids`` are the child's own views (computed first). A view only lists frozen parts (cached copies,
        made again only for accumulators changed since), so this costs no merging; ``dirty`` says a trade
        changed it since the engine last emitted updates. ``clear`` resets the open accumulators' flags (the
        engine emits the dirty views as updates); ``open_candles()`` leaves them.
        """
        views: dict[int, View] = {}
        name = self.name
        for start, acc in self.open.items():
            snap = acc.snap
            if snap is None:
                snap = acc.snap = acc.copy()
            views[start] = View(start, snap, None, acc.dirty, acc.folds, name, out)
            if clear:
                acc.dirty = False
        if kids:
            offset, duration = self.offset_ms, self.duration_ms
            for start, kid in kids.items():
                if not kid.folds:
                    continue  # its trades reached us directly
                key = start - (start - offset) % duration  # self.bucket(start), inline
                target = views.get(key)
                if target is None:
                    folds = self.folds_up(key) if self.parent is not None else True
                    views[key] = target = View(key, None, None, False, folds, name, out)
                if target.kids is None:
                    target.kids = [kid]
                else:
                    target.kids.append(kid)
                if kid.dirty:
                    target.dirty = True
        return views

    def fill_gap(self, start_ms: int, watermark_ms: int | None, out: Output) -> None:
        """After no-data was removed from ``start_ms`` on: carry into every retained closed bucket from there
        that has no candle, overlaps no remaining span and follows a known close (a retained candle or the
        seed), however the spans were removed (in pieces, newest first: a backfill paging backwards)."""
        if not self.carry or self.closed_through is None:
            return
        start = self.bucket(start_ms)
        if watermark_ms is not None:
            start = max(start, self.retained_from(watermark_ms))
        previous = self.closed.get(start - self.duration_ms)
        if previous is None and self.seeded is not None and self.seeded.start_ms == start - self.duration_ms:
            previous = self.seeded
        while start < self.closed_through:
            acc = self.closed.get(start)
            if (
                acc is None
                and previous is not None
                and not out.no_data.overlaps(start, start + self.duration_ms)
            ):
                source = previous.start_ms if previous.count > 0 else previous.carry_from
                key = (previous.last_ms, previous.last_id)
                acc = Accumulator.carried(start_ms=start, price=previous.close, source_ms=source, key=key)
                self._record(acc, out)
            previous = acc
            start += self.duration_ms

    def oldest_source(self) -> int | None:
        """Under ``carry``: the earliest start of a real candle that a carried candle, retained or still to
        come, takes its close from (no-data spans after it still decide completeness)."""
        if not self.carry:
            return None
        sources = [a.carry_from for a in self.closed.values() if a.count == 0 and a.carry_from is not None]
        if self.close_from_ms is not None:
            sources.append(self.close_from_ms)
        return min(sources, default=None)
