"""The candle engine: trades in, candle events out. Pure: no I/O, no clock; time is passed in.

One :class:`CandleEngine` per instrument serves live collection, backfills and re-aggregation alike. Every
accepted trade updates every configured timeframe at once. The *watermark* is the largest time the engine has
seen: the newest trade timestamp or an explicit :meth:`CandleEngine.advance` (so a quiet market still closes
its candles). A candle ``[start, end)`` closes when ``watermark >= end + allowed_lateness_ms``.

Late trades are never dropped and never put in another bucket:

* before their candle closed, they simply join it;
* after it closed but within ``retention_ms`` (the candle is still in memory), the closed candle is revised
  (``revision + 1``, :class:`CandleRevised`), and carried candles after it follow the new close;
* older than that, the engine emits :class:`RevisionRequired` for the timeframes whose candle it no longer
  holds; the caller revises from storage (batch re-aggregation or ``revise_candle``).

Every trade updates every timeframe, observably: internally each trade is offered to the finest series of
each nesting chain (1m -> 5m -> 15m -> 1h -> 4h -> 1d by default), and a finer candle is merged into the
coarser one when it closes; updates and :meth:`CandleEngine.open_candles` include the unmerged finer trades.

De-duplication, by trade id (the same rule as the batch path): a trade whose timestamp is at or after
``watermark - lateness - retention`` is ignored when a trade with the same id (whatever its timestamp) was
accepted before (ids are remembered as ranges of one minute each, forgotten with their trade's minute after
that long, whatever the id order: see ids.py; memory is bounded by the trades of the window, and is a few
ranges for contiguous ids). Older trades cannot be checked here; the caller passes them only once (the trades
table key).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, getcontext, localcontext, setcontext

from collectors.candles.accumulator import Accumulator
from collectors.candles.events import (
    DEFAULT_ENGINE_CONFIG,
    CandleEvent,
    CandleUpdated,
    EngineConfig,
    EngineStats,
    RevisionRequired,
)
from collectors.candles.exact import EXACT, MAX_VALUE, MIN_VALUE, check_close
from collectors.candles.guards import check_jump, check_ms, check_old_trade, refuse
from collectors.candles.ids import TradeIds
from collectors.candles.output import Output, View
from collectors.candles.series import Placement, Series
from collectors.candles.spans import SpanSet
from collectors.model import Candle, Side, Timeframe, Trade
from collectors.validation import TS_MAX_MS, TS_MIN_MS

__all__ = ["CandleEngine"]

_ID_BUCKET_MS = 60_000
_MIN_MS, _MAX_MS = TS_MIN_MS, TS_MAX_MS  # check_ts_ms's range, as module globals for the hot path
_NEVER = -(2**62)
_BUY, _SELL = Side.BUY, Side.SELL
_new_update = object.__new__


class CandleEngine:
    """Aggregates one instrument's trades into candles of several timeframes.

    Every method returns the events it caused, in order: closed and revised candles as they happen, then
    (with ``emit_updates``) one :class:`CandleUpdated` per open candle the call changed.
    """

    def __init__(self, *, exchange: str, inst_id: str, config: EngineConfig = DEFAULT_ENGINE_CONFIG) -> None:
        self.exchange = exchange
        self.inst_id = inst_id
        self.config = config
        self._exact = EXACT.copy()  # this engine's own: flags never leak between engines or threads
        frames = sorted((Timeframe.parse(name) for name in config.timeframes), key=lambda tf: tf.duration_ms)
        self._series = [
            Series(
                timeframe=tf,
                policy=config.empty_policy,
                lateness_ms=config.allowed_lateness_ms,
                retention_ms=config.retention_ms,
            )
            for tf in frames
        ]
        self._roots = _link_fold_chains(self._series)
        self._root = self._roots[0] if len(self._roots) == 1 else None  # one fold chain: on_trades' fast loop
        self._emit_updates = config.emit_updates
        # Whether every series' ``shown`` (the views of the last _finish) is current but for trades added to
        # the root's ``cur`` by on_trades' fast loop; every other change clears it.
        self._shown_ok = False
        self._no_data = SpanSet()
        self._out = Output(exchange=exchange, inst_id=inst_id, source=config.source, no_data=self._no_data)
        self._watermark_ms: int | None = None
        self._wm = _NEVER  # the watermark as an int, for the hot path (_NEVER while it is None)
        self._next_close_ms = _NEVER  # the watermark at which some bucket becomes closable
        self._horizon_ms = _NEVER  # trades at or after this are de-duplicated
        self._ids = TradeIds()  # trade ids seen with ts >= horizon, as ranges, forgotten per minute
        self._processed = self._duplicates = self._late = self._requests = 0

    # -- public API ------------------------------------------------------------------------------------

    @property
    def watermark_ms(self) -> int | None:
        """The newest trade time or explicit time seen so far (None before the first one)."""
        return self._watermark_ms

    @property
    def stats(self) -> EngineStats:
        return EngineStats(
            trades_processed=self._processed,
            duplicates=self._duplicates,
            late_trades=self._late,
            candles_emitted=self._out.closed_count,
            revisions=self._out.revised_count,
            revision_requests=self._requests,
        )

    def on_trade(self, trade: Trade) -> list[CandleEvent]:
        """Feed one trade (any arrival order)."""
        # The hot path: switch to this engine's own exact context directly; localcontext() would copy a
        # context on every call (~0.5 us per trade). The caller's context is restored whatever happens.
        caller = getcontext()
        setcontext(self._exact)
        try:
            self._ingest(trade)
            return self._finish()
        finally:
            setcontext(caller)

    def on_trades(self, trades: Iterable[Trade]) -> list[CandleEvent]:
        """Feed trades in arrival order; the result does not depend on how a tape is split into calls."""
        caller = getcontext()
        setcontext(self._exact)
        try:
            root = self._root
            if root is None:
                for trade in trades:
                    self._ingest(trade)
            else:
                self._ingest_frame(trades, root)
            return self._finish()
        finally:
            setcontext(caller)

    def advance(self, now_ms: int) -> list[CandleEvent]:
        """Move the watermark to ``now_ms`` (never backwards), closing what is due.

        Raises ``ValueError``, changing nothing, when ``now_ms`` is not in milliseconds (2000..2100 UTC) or
        would carry more than ``config.max_carried_per_call`` empty candles in one timeframe.
        """
        self._shown_ok = False
        with localcontext(EXACT):
            check_ms(now_ms)
            if self._watermark_ms is None or now_ms > self._watermark_ms:
                check_jump(
                    self._series, now_ms, self.config.allowed_lateness_ms, self.config.max_carried_per_call
                )
                self._advance_to(now_ms)
            return self._finish()

    def flush(self) -> list[CandleEvent]:
        """Close every open candle now (end of a backfill or re-aggregation batch)."""
        self._shown_ok = False
        with localcontext(EXACT):
            for series in self._series:
                series.flush(self._out)
            return self._finish()

    def close_ended(self, now_ms: int) -> list[CandleEvent]:
        """Close every candle whose bucket ended by ``now_ms`` without waiting for the allowed lateness (a clean
        stop: no more trades will be read, so such a candle is as complete as this engine can make it; a late
        trade that a later catch-up brings revises it). Buckets still running at ``now_ms`` stay open."""
        self._shown_ok = False
        with localcontext(EXACT):
            check_ms(now_ms)
            for series in self._series:
                series.close_before(series.bucket(now_ms), self._out)
            return self._finish()

    def seed_close(self, price: Decimal, from_ms: int) -> None:
        """Start carrying from the bucket containing ``from_ms`` with ``price``, the close before it (a
        re-aggregated range, or an engine restarted after a known close). Only before the first trade.

        Buckets before that one are another engine's: a trade there gives :class:`RevisionRequired` and
        nothing is ever emitted for them. Raises ``InvalidRecord`` for a ``price`` a trade could not have
        (see :func:`~collectors.candles.exact.check_close`), ``TypeError``/``ValueError`` for a ``from_ms``
        that is not int milliseconds between 2000 and 2100 UTC."""
        self._shown_ok = False
        if self._watermark_ms is not None:
            raise ValueError("seed_close() must come before any trade or watermark")
        check_close(price)
        check_ms(from_ms)
        for series in self._series:
            series.seed(price, from_ms)

    def mark_no_data(self, start_ms: int, end_ms: int) -> list[CandleEvent]:
        """Declare ``[start_ms, end_ms)`` as lacking data (a disconnect, not a quiet market).

        No carried candle is ever emitted over the span; candles overlapping it, and carried candles whose
        close comes from before it, are ``is_complete=False`` (closed ones still in memory are revised to
        say so) until a trade in them, :meth:`mark_filled` or a backfill.
        """
        self._shown_ok = False
        with localcontext(EXACT):
            before = self._retained_completeness()
            self._no_data.add(start_ms, end_ms)
            self._revise_changed(before)
            return self._finish()

    def mark_filled(self, start_ms: int, end_ms: int) -> list[CandleEvent]:
        """Forget a no-data span (it was backfilled): the mirror of :meth:`mark_no_data`.

        Closed candles still in memory that become complete are revised (``CandleRevised``); under
        ``carry``, retained empty buckets of the span whose previous candle is in memory get their carried
        candle (``CandleClosed``). Feed the backfilled trades first (late trades revise in memory), or
        re-aggregate the range in batch when it is older than the retention.
        """
        self._shown_ok = False
        with localcontext(EXACT):
            before = self._retained_completeness()
            self._no_data.remove(start_ms, end_ms)
            for series in self._series:
                series.fill_gap(start_ms, self._watermark_ms, self._out)
            self._revise_changed(before)
            return self._finish()

    def _retained_completeness(self) -> list[tuple[Series, Accumulator, bool]]:
        out = self._out
        return [
            (series, acc, out.is_complete(acc, series))
            for series in self._series
            for acc in sorted(series.closed.values(), key=lambda a: a.start_ms)
        ]

    def _revise_changed(self, before: list[tuple[Series, Accumulator, bool]]) -> None:
        out = self._out
        for series, acc, was_complete in before:
            if out.is_complete(acc, series) != was_complete:
                out.revised(acc, series)

    def updates(self) -> list[CandleEvent]:
        """One :class:`CandleUpdated` per open candle changed since the last updates (these or a call's), for
        a consumer that reads updates on its own clock: with ``emit_updates=False`` no call builds them, and
        a candle a thousand trades changed between two reads costs one update, not a thousand. Candles that
        closed in between are not here (their :class:`CandleClosed` was returned by the call that closed
        them)."""
        caller = getcontext()
        setcontext(self._exact)
        try:
            out = self._out
            self._updates(out)
            events, out.events = out.events, []
            return events
        finally:
            setcontext(caller)

    def open_candles(self) -> list[Candle]:
        """Snapshots of the candles not yet closed, finest timeframe first."""
        with localcontext(EXACT):
            return [
                self._out.snapshot(view.accumulator(), series, is_closed=False)
                for series, views in self._open_views(clear=False)
                for view in sorted(views.values(), key=lambda v: v.start_ms)
            ]

    def _open_views(self, *, clear: bool) -> list[tuple[Series, dict[int, View]]]:
        """Every series' open candles including unfolded finer trades, finest first; ``clear`` resets the
        change flags (see :meth:`Series.views`)."""
        computed: dict[int, dict[int, View]] = {}
        result = []
        out = self._out
        for series in self._series:
            child = series.child
            views = series.views(None if child is None else computed[id(child)], out, clear=clear)
            computed[id(series)] = views
            result.append((series, views))
        return result

    # -- internals -------------------------------------------------------------------------------------

    def _ingest(self, trade: Trade) -> None:
        # The hot path: keep it flat (no helper calls for in-order trades).
        self._shown_ok = False  # it may change any candle: the next _finish looks at them all
        if trade.inst_id != self.inst_id or trade.exchange != self.exchange:
            raise ValueError(f"trade for {trade.exchange}/{trade.inst_id} fed to the {self.inst_id} engine")
        ts, trade_id, price, size, side = trade.ts_ms, trade.trade_id, trade.price, trade.size, trade.side
        try:  # check_trade's rule for the fields used here, inline; anything unusual goes to refuse()
            usual = (
                type(ts) is int
                and _MIN_MS <= ts < _MAX_MS
                and type(trade_id) is int
                and trade_id >= 0
                and type(price) is Decimal
                and type(size) is Decimal
                and MIN_VALUE <= price < MAX_VALUE
                and MIN_VALUE <= size < MAX_VALUE
                and (side is _BUY or side is _SELL)
            )
        except ArithmeticError:  # NaN compared under the exact context's traps
            usual = False
        if not usual:
            refuse(trade)
        dedup = ts >= self._horizon_ms
        ids = self._ids
        if dedup and trade_id < ids.end and trade_id in ids:  # in-order new ids skip the range search
            self._duplicates += 1
            return
        if ts >= self._next_close_ms:
            check_jump(self._series, ts, self.config.allowed_lateness_ms, self.config.max_carried_per_call)
        elif not dedup:
            check_old_trade(self._series, ts, self._watermark_ms, self.config.max_carried_per_call)
        quote = price * size
        is_buy = side is _BUY
        missing: list[str] | None = None
        late = False
        for root in self._roots:
            series: Series | None = root
            # Up the fold chain until an open candle takes the trade (it reaches the coarser ones by folding).
            while series is not None:
                if series.cur_start <= ts < series.cur_end:
                    series.cur.add(price, size, quote, is_buy, ts, trade_id)
                    break
                placed = series.place(price, size, quote, is_buy, ts, trade_id, self._watermark_ms, self._out)
                if placed == Placement.OPEN:
                    break
                if placed == Placement.LATE:
                    late = True
                elif placed == Placement.MISSING:
                    missing = [*(missing or ()), series.name]
                series = series.parent
        # Seen only once added everywhere: an exactness trap above leaves the id unseen, so a retry counts.
        if dedup:
            minute = ts // _ID_BUCKET_MS
            if trade_id == ids.end and minute == ids.last_minute:
                ids.ends[-1] = ids.end = trade_id + 1  # the next contiguous id (inline TradeIds.add)
            else:
                ids.add(trade_id, minute)
        self._processed += 1
        if late or missing:
            self._late_trade(trade, missing)
        if ts > self._wm:
            if ts >= self._next_close_ms:
                self._advance_to(ts)
            else:  # _advance_to without anything to close, inline
                self._watermark_ms = self._wm = ts

    def _ingest_frame(self, trades: Iterable[Trade], root: Series) -> None:
        """``on_trades``' loop when there is one fold chain (the default timeframes).

        The common trade is taken right here: valid by :meth:`_ingest`'s inline rule, for this instrument,
        an id above every id held (so new), at or after the de-duplication horizon, in the root's newest
        open candle (``cur``) and closing nothing. The bounds of that window are read once, the trade is
        added to ``cur`` inline (:meth:`Accumulator.add`'s rule), and the bookkeeping (ids, count, watermark,
        change flags) is kept in locals and written back before any other trade, which goes through
        :meth:`_ingest` whole (and may move the window), and at the end. Nothing between an add and the write
        back can fail, so a trade is applied and recorded together or not at all.
        """
        ids = self._ids
        exchange, inst_id = self.exchange, self.inst_id
        remaining = iter(trades)
        while True:
            lo = max(root.cur_start, self._horizon_ms, _MIN_MS)
            hi = min(root.cur_end, self._next_close_ms, _MAX_MS)
            cur, end, last_minute, wm = root.cur, ids.end, ids.last_minute, self._wm
            floor = max(end, 0)
            added = 0
            extended = False  # end moved past ids.end by contiguous ids of last_minute (not written yet)
            other: Trade | None = None
            for trade in remaining:
                ts, trade_id, price, size, side = (
                    trade.ts_ms,
                    trade.trade_id,
                    trade.price,
                    trade.size,
                    trade.side,
                )
                try:  # _ingest's rule plus the conditions of this path; anything else goes to _ingest
                    usual = (
                        type(ts) is int
                        and lo <= ts < hi
                        and type(trade_id) is int
                        and trade_id >= floor  # above every id held: new
                        and type(price) is Decimal
                        and type(size) is Decimal
                        and MIN_VALUE <= price < MAX_VALUE
                        and MIN_VALUE <= size < MAX_VALUE
                        and (side is _BUY or side is _SELL)
                        and trade.inst_id == inst_id
                        and trade.exchange == exchange
                        and cur.count > 0
                    )
                except ArithmeticError:  # NaN compared under the exact context's traps
                    usual = False
                if not usual:
                    other = trade
                    break
                # cur.add(price, size, price * size, side is _BUY, ts, trade_id), inline
                volume, quote = cur.volume + size, cur.quote + price * size
                if side is _BUY:
                    cur.buy += size
                if ts > cur.last_ms or (ts == cur.last_ms and trade_id > cur.last_id):
                    cur.close, cur.last_ms, cur.last_id = price, ts, trade_id
                elif ts < cur.first_ms or (ts == cur.first_ms and trade_id < cur.first_id):
                    cur.open, cur.first_ms, cur.first_id = price, ts, trade_id
                if price > cur.high:
                    cur.high = price
                elif price < cur.low:
                    cur.low = price
                cur.volume, cur.quote = volume, quote
                cur.count += 1
                added += 1
                # the id is seen once added (as in _ingest); ranges as in TradeIds.add
                minute = ts // _ID_BUCKET_MS
                if trade_id == end and minute == last_minute:
                    end = trade_id + 1
                    extended = True
                else:
                    if extended:
                        ids.ends[-1] = ids.end = end
                        extended = False
                    ids.add(trade_id, minute)
                    end, last_minute = trade_id + 1, minute
                floor = end
                if ts > wm:  # ts < _next_close_ms: nothing to close
                    wm = ts
            if added:
                if extended:
                    ids.ends[-1] = ids.end = end
                cur.dirty = True
                cur.snap = None
                self._processed += added
                if wm > self._wm:
                    self._watermark_ms = self._wm = wm
            if other is None:
                return
            self._ingest(other)

    def _late_trade(self, trade: Trade, missing: list[str] | None) -> None:
        self._late += 1
        if missing:
            self._requests += 1
            self._out.events.append(RevisionRequired(trade=trade, timeframes=tuple(missing)))

    def _advance_to(self, watermark_ms: int) -> None:
        self._watermark_ms = self._wm = watermark_ms
        if watermark_ms < self._next_close_ms:
            return
        lateness = self.config.allowed_lateness_ms
        limit = watermark_ms - lateness
        next_close = None
        for series in self._series:
            boundary = series.bucket(limit)
            series.close_before(boundary, self._out)
            series.forget_before(watermark_ms)
            candidate = boundary + series.duration_ms + lateness
            next_close = candidate if next_close is None else min(next_close, candidate)
        self._next_close_ms = next_close if next_close is not None else _NEVER
        self._forget_ids(limit - self.config.retention_ms)

    def _forget_ids(self, horizon_ms: int) -> None:
        self._horizon_ms = horizon_ms
        # minutes entirely before the horizon: (k + 1) * 60 s <= horizon
        self._ids.forget_minutes_before(horizon_ms // _ID_BUCKET_MS)
        self._forget_spans(horizon_ms)

    def _forget_spans(self, horizon_ms: int) -> None:
        """Drop the no-data spans no candle depends on any more.

        A span is kept while a candle in memory may overlap it, while a carried candle (in memory or still to
        come) takes its close from before it, and, under ``carry``, while it starts before the first candle a
        series emitted (a late trade there carries into the buckets after it, which must skip the span).
        """
        coarsest = self._series[-1]
        end = coarsest.bucket(horizon_ms) - coarsest.duration_ms
        start = -(2**63)
        for series in self._series:
            if series.carry:
                if series.emitted_from is None:
                    return
                start = max(start, series.emitted_from)
                source = series.oldest_source()
                if source is not None:
                    end = min(end, source)
        self._no_data.drop_within(start, end)

    def _finish(self) -> list[CandleEvent]:
        out = self._out
        if self._emit_updates:
            if self._shown_ok:
                self._quick_updates(out)
            else:
                self._updates(out)
        elif not out.events:
            return []
        events, out.events = out.events, []
        return events

    def _updates(self, out: Output) -> None:
        """Dirty tracking: only views a trade changed since the last call become updates, each view the
        deferred maker of its own candle (built on first read). Remembers the views for _quick_updates."""
        events = out.events
        no_data = out.no_data if out.no_data else None
        deferred = CandleUpdated.deferred
        for series in self._series:  # finest first: a child's views are computed before its parent's
            child = series.child
            views = series.shown = series.views(None if child is None else child.shown, out, clear=True)
            for view in views.values():
                if view.dirty:
                    if no_data is not None and no_data.overlaps(
                        view.start_ms, view.start_ms + series.duration_ms
                    ):
                        view.complete = False
                    events.append(deferred(view, timeframe=series.name, open_time_ms=view.start_ms))
        self._shown_ok = self._root is not None

    def _quick_updates(self, out: Output) -> None:
        """:meth:`_updates` when only the root's ``cur`` changed since the last call (on_trades' fast loop):
        the views of every other candle are the same values as before, so only the chain of views that
        contain ``cur`` is made again (the same events as :meth:`_updates`, without rebuilding the others)."""
        series = self._root
        assert series is not None
        cur = series.cur
        if not cur.dirty:
            return
        cur.dirty = False
        snap = cur.snap
        if snap is None:
            snap = cur.snap = cur.copy()
        key = series.cur_start
        shown = series.shown
        assert shown is not None  # _updates set it for every series
        old = shown[key]
        new = View(key, snap, None, True, old.folds, series.name, out)
        no_data = out.no_data if out.no_data else None
        append = out.events.append
        while True:
            if no_data is not None and no_data.overlaps(key, key + series.duration_ms):
                new.complete = False
            event = _new_update(CandleUpdated)  # CandleUpdated.deferred(new), inline
            event._candle, event._make = None, new
            event.timeframe, event.open_time_ms = series.name, key
            append(event)
            shown[key] = new
            parent = series.parent
            if parent is None or not new.folds:
                return
            series, shown = parent, parent.shown
            assert shown is not None
            key -= (key - series.offset_ms) % series.duration_ms  # series.bucket(key), inline
            outer = shown[key]
            kids = outer.kids
            assert kids is not None
            kids = (
                [new] if len(kids) == 1 and kids[0] is old else [new if kid is old else kid for kid in kids]
            )
            old, new = outer, View(key, outer.own, kids, True, outer.folds, series.name, out)


def _link_fold_chains(series: list[Series]) -> list[Series]:
    """Link each series (ascending duration) to the finest coarser one it nests in and that has no child yet.

    Returns the chain bottoms: the series a trade is offered to first. With the default timeframes that is
    one chain, 1m -> 5m -> 15m -> 1h -> 4h -> 1d, so each trade touches a single accumulator.
    """
    for i, fine in enumerate(series):
        for coarse in series[i + 1 :]:
            if coarse.child is None and fine.timeframe.nests_in(coarse.timeframe):
                fine.parent, coarse.child = coarse, fine
                break
    return [s for s in series if s.child is None]
