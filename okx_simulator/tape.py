"""The deterministic trade tape of one instrument (pure: no I/O, no clock).

The tape is a function of (seed, instId, time) and of the market shape (rates, chunk size, quiet/burst shares),
never of when the server started. How many fills lie before any time and the price level there come from the
count hierarchy (``hierarchy.py``, built on the draws of ``distributions.py``); this module turns a chunk's
count into its fills and answers the queries REST, candles and the WebSocket make:

* **Trade ids** are ``first_id + the number of fills since the epoch``: contiguous, increasing with time.
* **Fills** of a chunk (taker orders, times, prices, sizes, sides, ELP flags) are generated on demand from
  their own seed, spread around the line between the chunk's two price anchors, and cached, so any time or id
  range is reachable without generating the rest.

The tape is *visible* from ``history_from_ms`` (the server's ``--history-hours`` horizon): REST trade pages,
``between`` and the summaries behind candles and 24 h statistics stop there. What the tape holds at a given time
does not depend on the horizon. Whether a fill is visible also depends on the caller's ``now_ms``
(``ts <= now``): live trades are simply the part of the tape the clock has reached.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict
from typing import Final, NamedTuple

from okx_simulator.distributions import taker_orders
from okx_simulator.hierarchy import EPOCH_MS, CountHierarchy, TapeParams
from okx_simulator.instruments import InstrumentSpec
from okx_simulator.rng import key_of, mix

__all__ = ["EPOCH_MS", "Fill", "Summary", "Tape", "TapeParams", "merge", "summarize"]

_CACHE_CHUNKS: Final = 512
_CACHE_FILLS: Final = 400_000  # bounds memory at firehose rates (about 50 MB per instrument)
_MINUTE_MS: Final = 60_000
_MIN_ANCHOR_TICKS: Final = 50.0
_ELP_PROB: Final = 0.01


class Fill(NamedTuple):
    """One fill: ``px`` in ticks, ``sz`` in lots; ``order`` is the trade id of its taker order's first fill."""

    trade_id: int
    ts_ms: int
    px: int
    sz: int
    buy: bool
    source: int
    order: int


class Summary(NamedTuple):
    """OHLC (ticks), volume (lots), notional (ticks x lots) and fill count of a non-empty span of fills."""

    o: int
    h: int
    low: int
    c: int
    vol: int
    notional: int
    trades: int


def summarize(fills: list[Fill]) -> Summary | None:
    """Summary of ``fills`` (oldest first); None when empty."""
    if not fills:
        return None
    prices = [f.px for f in fills]
    return Summary(
        fills[0].px,
        max(prices),
        min(prices),
        fills[-1].px,
        sum(f.sz for f in fills),
        sum(f.px * f.sz for f in fills),
        len(fills),
    )


def merge(parts: list[Summary | None]) -> Summary | None:
    """Summary of consecutive spans, oldest first."""
    full = [p for p in parts if p is not None]
    if not full:
        return None
    return Summary(
        full[0].o,
        max(p.h for p in full),
        min(p.low for p in full),
        full[-1].c,
        sum(p.vol for p in full),
        sum(p.notional for p in full),
        sum(p.trades for p in full),
    )


class Tape:
    """The lazily generated trade tape of one instrument."""

    def __init__(self, *, spec: InstrumentSpec, params: TapeParams) -> None:
        self.spec = spec
        self.params = params
        self._hkey = mix(params.seed, key_of(spec.inst_id))
        self.first_id = 100_000_000 + self._hkey % 900_000_000  # the id of the first fill since EPOCH_MS
        self.history_from_ms = max(params.history_from_ms, EPOCH_MS)
        self.counts = CountHierarchy(hkey=self._hkey, params=params)
        self._cache: OrderedDict[int, list[Fill]] = OrderedDict()
        self._cached_fills = 0
        self._summaries: dict[int, Summary | None] = {}
        self._unit_px = float(spec.tick_sz) * float(spec.lot_sz)
        self._min_lots = spec.min_lots
        self._visible_from_count: int | None = None

    # -- chunks (the hierarchy's geometry, and ids as counts) -----------------------------------------
    def chunk_of(self, ts_ms: int) -> int:
        """Index of the chunk holding ``ts_ms`` (negative before the epoch)."""
        return self.counts.chunk_of(ts_ms)

    def chunk_start(self, index: int) -> int:
        return self.counts.chunk_start(index)

    def chunk_len(self, index: int) -> int:
        return self.counts.chunk_len(index)

    def count_before(self, index: int) -> int:
        """Number of fills since the epoch before chunk ``index``."""
        return self.counts.count_before(index)

    def chunk_of_id(self, trade_id: int) -> int:
        """Chunk holding ``trade_id`` (an id of an existing fill: at or after ``first_id``)."""
        return self.counts.chunk_of_count(trade_id - self.first_id)

    def _anchor(self, ts_ms: int) -> float:
        return max(self.spec.start_ticks * math.exp(self.counts.locate(ts_ms)[1]), _MIN_ANCHOR_TICKS)

    # -- fills ----------------------------------------------------------------------------------------
    def fills(self, index: int) -> list[Fill]:
        """All fills of chunk ``index`` (oldest first), generated once and cached."""
        if index < 0:
            return []
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        fills = self._generate(index)
        self._cache[index] = fills
        self._cached_fills += len(fills)
        while len(self._cache) > 1 and (
            len(self._cache) > _CACHE_CHUNKS or self._cached_fills > _CACHE_FILLS
        ):
            self._cached_fills -= len(self._cache.popitem(last=False)[1])
        return fills

    def _generate(self, index: int) -> list[Fill]:
        start = self.chunk_start(index)
        length = self.chunk_len(index)
        before = self.counts.locate(start)[0]
        n = self.counts.locate(start + length)[0] - before
        if n == 0:
            return []
        rng = random.Random(mix(self._hkey, start, length, 5))
        burst = self.counts.minute_flags(start // _MINUTE_MS)[1]
        orders = taker_orders(rng, n, 0.35 if burst else 0.65)
        uniform, gauss, exp = rng.random, rng.gauss, math.exp  # the firehose's hot loop: local names
        times = sorted(start + int(uniform() * length) for _ in orders)
        a0, a1 = self._anchor(start), self._anchor(start + length)
        noise = max(1.0, a0 * 0.00004)
        next_id = self.first_id + before
        min_lots, new_fill = self._min_lots, tuple.__new__
        out: list[Fill] = []
        for size, ts in zip(orders, times, strict=True):
            frac = (ts - start) / length
            px = max(1, round(a0 + (a1 - a0) * frac + gauss(0.0, noise)))
            buy = uniform() < 0.5
            source = 1 if uniform() < _ELP_PROB else 0
            if source:
                px = max(1, px - 1 if buy else px + 1)
            order_id = next_id
            unit_value = px * self._unit_px
            for _ in range(size):
                # Lot sizes: log-normal notional (exp of N(4.5, 1.3)) over the price, at least minSz.
                lots = int(exp(gauss(4.5, 1.3)) / unit_value)
                fill = (next_id, ts, px, lots if lots > min_lots else min_lots, buy, source, order_id)
                out.append(new_fill(Fill, fill))
                next_id += 1
        return out

    # -- queries --------------------------------------------------------------------------------------
    @property
    def first_visible_id(self) -> int:
        """Id of the first fill at or after ``history_from_ms`` (it may not exist yet)."""
        if self._visible_from_count is None:
            self._visible_from_count = self.counts.locate(self.history_from_ms)[0]
        return self.first_id + self._visible_from_count

    def between(self, from_ms: int, to_ms: int) -> list[Fill]:
        """Visible fills with ``from_ms <= ts < to_ms``, oldest first."""
        lo = max(from_ms, self.history_from_ms)
        if to_ms <= lo:
            return []
        out: list[Fill] = []
        for index in range(self.chunk_of(lo), self.chunk_of(to_ms - 1) + 1):
            fills = self.fills(index)  # sorted by time: cut the span out rather than scan the chunk
            out += fills[bisect.bisect_left(fills, lo, key=_ts) : bisect.bisect_left(fills, to_ms, key=_ts)]
        return out

    def first_fill(self, from_ms: int, to_ms: int) -> Fill | None:
        """Oldest fill with ``from_ms <= ts < to_ms`` (of the whole tape, not only the visible part)."""
        if to_ms <= from_ms:
            return None
        index = self.chunk_of(from_ms)
        for fill in self.fills(index):
            if from_ms <= fill.ts_ms < to_ms:
                return fill
        after = self.count_before(index + 1)  # fills before the next chunk: the next fill has this offset
        if after >= self.count_before(self.chunk_of(to_ms - 1) + 1):
            return None
        for fill in self.fills(self.chunk_of_id(self.first_id + after)):
            if fill.ts_ms < to_ms:
                return fill
        return None

    def summary(self, from_ms: int, to_ms: int) -> Summary | None:
        """Summary of the visible fills with ``from_ms <= ts < to_ms``; whole chunks come from a cache, so long
        spans (24 h statistics, daily candles, firehose minutes) cost one step per chunk."""
        lo = max(from_ms, self.history_from_ms)
        if to_ms <= lo:
            return None
        parts: list[Summary | None] = []
        for index in range(self.chunk_of(lo), self.chunk_of(to_ms - 1) + 1):
            start = self.chunk_start(index)
            if lo <= start and start + self.chunk_len(index) <= to_ms:
                parts.append(self._chunk_summary(index))
            else:
                parts.append(summarize([f for f in self.fills(index) if lo <= f.ts_ms < to_ms]))
        return merge(parts)

    def _chunk_summary(self, index: int) -> Summary | None:
        if index not in self._summaries:
            if len(self._summaries) > 2_000_000:
                self._summaries.clear()
            self._summaries[index] = summarize(self.fills(index))
        return self._summaries[index]

    def last_id(self, now_ms: int) -> int | None:
        """Id of the newest fill with ``ts <= now_ms``; None when no fill exists yet."""
        last = self.last_fill(now_ms)
        return None if last is None else last.trade_id

    def last_fill(self, at_ms: int, *, source0: bool = False) -> Fill | None:
        """Newest fill with ``ts <= at_ms`` (optionally only book fills, source 0), of the whole tape: empty
        chunks are skipped through the counts, so a long quiet stretch costs nothing."""
        index = self.chunk_of(at_ms)
        for fill in reversed(self.fills(index)):
            if fill.ts_ms <= at_ms and not (source0 and fill.source):
                return fill
        count = self.count_before(index)
        while count > 0:
            index = self.chunk_of_id(self.first_id + count - 1)
            for fill in reversed(self.fills(index)):
                if not (source0 and fill.source):
                    return fill
            count = self.count_before(index)
        return None

    def newest_by_id(self, *, below: int | None, above: int | None, limit: int, now_ms: int) -> list[Fill]:
        """Up to ``limit`` visible fills with ``above < id < below``, newest first."""
        top = self.last_id(now_ms)
        if top is None:
            return []
        hi = top if below is None else min(top, below - 1)
        lo = self.first_visible_id if above is None else max(self.first_visible_id, above + 1)
        return self._descending(hi, lo, limit)

    def oldest_above(self, *, above: int, limit: int, now_ms: int) -> list[Fill]:
        """The ``limit`` visible fills just above ``above``, newest first."""
        top = self.last_id(now_ms)
        if top is None:
            return []
        lo = max(self.first_visible_id, above + 1)
        return self._descending(min(top, lo + limit - 1), lo, limit)

    def _descending(self, hi: int, lo: int, limit: int) -> list[Fill]:
        out: list[Fill] = []
        if hi < lo or limit <= 0:
            return out
        index = self.chunk_of_id(hi)
        while len(out) < limit:
            for fill in reversed(self.fills(index)):
                if lo <= fill.trade_id <= hi:
                    out.append(fill)
                    if len(out) == limit:
                        break
            count = self.count_before(index)
            if self.first_id + count <= lo or count == 0:
                break
            index = self.chunk_of_id(self.first_id + count - 1)
        return out

    def newest_before_ts(self, *, before_ms: int, limit: int) -> list[Fill]:
        """Up to ``limit`` visible fills with ``ts < before_ms``, newest first (``before_ms`` <= now + 1)."""
        last = self.last_fill(before_ms - 1)
        if last is None:
            return []
        return self._descending(last.trade_id, self.first_visible_id, limit)


def _ts(fill: Fill) -> int:
    return fill.ts_ms
