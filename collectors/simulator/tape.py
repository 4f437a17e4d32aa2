"""The deterministic trade tape of one instrument (pure: no I/O, no clock).

Invariants:

* The tape starts at ``origin_ms`` (a minute boundary) and is cut into chunks: one-minute chunks before the
  minute in which the server started (``live_from_ms``), chunks of ``chunk_ms`` from there on (small chunks only
  matter for firehose rates, and history stays cheap). A chunk's header (fill count,
  closing anchor price) comes from ``mix(seed, instrument, chunk)`` alone, so headers are cheap; prefix sums
  over the headers give each chunk its first trade id and opening anchor. Fills inside a chunk are generated
  on demand from their own seed and cached, so any time or id range is reachable without generating the rest.
* Trade ids are contiguous integers increasing with time; prices are whole ticks, sizes whole lots >= minSz.
* Whether a fill is *visible* depends only on the caller's ``now_ms`` (``ts <= now``): live trades are simply
  the part of the tape the clock has reached.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, NamedTuple

from collectors.simulator.instruments import InstrumentSpec
from collectors.simulator.rng import key_of, mix, unit

__all__ = ["Fill", "Summary", "Tape", "TapeParams"]

_CACHE_CHUNKS: Final = 512
_CACHE_FILLS: Final = 400_000  # bounds memory at firehose rates (about 50 MB per instrument)
_MINUTE_MS: Final = 60_000
_SIGMA_PER_MINUTE: Final = 0.0009
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


@dataclass(frozen=True, slots=True, kw_only=True)
class TapeParams:
    """Market shape shared by every instrument's tape."""

    seed: int
    origin_ms: int
    chunk_ms: int
    trade_rate: float
    history_trade_rate: float
    live_from_ms: int
    quiet_prob: float
    burst_prob: float
    burst_factor: float


class Tape:
    """The lazily generated trade tape of one instrument."""

    def __init__(self, *, spec: InstrumentSpec, params: TapeParams) -> None:
        self.spec = spec
        self.params = params
        self._key = key_of(spec.inst_id)
        self.first_id = 100_000_000 + mix(params.seed, self._key) % 900_000_000
        self._cum = [0]  # fills before chunk i
        self._anchor = [float(spec.start_ticks)]  # anchor price (ticks) at the start of chunk i
        self._cache: OrderedDict[int, list[Fill]] = OrderedDict()
        self._cached_fills = 0
        self._summaries: dict[int, Summary | None] = {}
        self._hkey = mix(params.seed, self._key)
        self._live0 = max(params.origin_ms, params.live_from_ms - params.live_from_ms % _MINUTE_MS)
        self._history_chunks = (self._live0 - params.origin_ms) // _MINUTE_MS
        self._minutes: dict[int, tuple[bool, bool]] = {}
        self._unit_px = float(spec.tick_sz) * float(spec.lot_sz)
        self._min_lots = spec.min_lots

    # -- chunk geometry -------------------------------------------------------------------------------
    def chunk_of(self, ts_ms: int) -> int:
        if ts_ms < self._live0:
            return (ts_ms - self.params.origin_ms) // _MINUTE_MS
        return self._history_chunks + (ts_ms - self._live0) // self.params.chunk_ms

    def chunk_start(self, index: int) -> int:
        if index < self._history_chunks:
            return self.params.origin_ms + index * _MINUTE_MS
        return self._live0 + (index - self._history_chunks) * self.params.chunk_ms

    def chunk_len(self, index: int) -> int:
        return _MINUTE_MS if index < self._history_chunks else self.params.chunk_ms

    def _extend(self, index: int) -> None:
        while len(self._cum) <= index + 1:
            i = len(self._cum) - 1
            count, step = self._header(i)
            self._cum.append(self._cum[i] + count)
            self._anchor.append(max(self._anchor[i] * math.exp(step), 50.0))

    def _header(self, index: int) -> tuple[int, float]:
        p = self.params
        start = self.chunk_start(index)
        quiet, burst = self._minute_flags(start // _MINUTE_MS)
        rate = p.trade_rate if start >= p.live_from_ms else p.history_trade_rate
        length = self.chunk_len(index)
        mean = rate * length / 1000 * (p.burst_factor if burst else 1.0)
        h = mix(self._hkey, start, length)
        count = 0 if quiet else _poisson(mean, unit(h))
        return count, _SIGMA_PER_MINUTE * math.sqrt(length / _MINUTE_MS) * _gauss(h)

    def _minute_flags(self, minute: int) -> tuple[bool, bool]:
        """(quiet, burst) for a minute: quiet minutes have no trade at all, bursts have ``burst_factor`` x rate."""
        flags = self._minutes.get(minute)
        if flags is None:
            h = mix(self._hkey, minute, 1)
            flags = (unit(h) < self.params.quiet_prob, unit(mix(h)) < self.params.burst_prob)
            if len(self._minutes) > 500_000:
                self._minutes.clear()
            self._minutes[minute] = flags
        return flags

    def count_before(self, index: int) -> int:
        """Number of fills in chunks ``[0, index)``."""
        self._extend(index)
        return self._cum[index]

    # -- fills ----------------------------------------------------------------------------------------
    def fills(self, index: int) -> list[Fill]:
        """All fills of chunk ``index`` (oldest first), generated once and cached."""
        if index < 0:
            return []
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        self._extend(index)
        fills = self._generate(index)
        self._cache[index] = fills
        self._cached_fills += len(fills)
        while len(self._cache) > 1 and (
            len(self._cache) > _CACHE_CHUNKS or self._cached_fills > _CACHE_FILLS
        ):
            self._cached_fills -= len(self._cache.popitem(last=False)[1])
        return fills

    def _generate(self, index: int) -> list[Fill]:
        n = self._cum[index + 1] - self._cum[index]
        if n == 0:
            return []
        start = self.chunk_start(index)
        length = self.chunk_len(index)
        rng = random.Random(mix(self._hkey, start, length, 5))
        burst = self._minute_flags(start // _MINUTE_MS)[1]
        orders = _split_orders(rng, n, 0.35 if burst else 0.65)
        times = sorted(start + int(rng.random() * length) for _ in orders)
        a0, a1 = self._anchor[index], self._anchor[index + 1]
        noise = max(1.0, a0 * 0.00004)
        next_id = self.first_id + self._cum[index]
        out: list[Fill] = []
        for size, ts in zip(orders, times, strict=True):
            frac = (ts - start) / length
            px = max(1, round(a0 + (a1 - a0) * frac + rng.gauss(0.0, noise)))
            buy = rng.random() < 0.5
            source = 1 if rng.random() < _ELP_PROB else 0
            if source:
                px = max(1, px - 1 if buy else px + 1)
            order_id = next_id
            for _ in range(size):
                out.append(Fill(next_id, ts, px, self._lots(rng, px), buy, source, order_id))
                next_id += 1
        return out

    def _lots(self, rng: random.Random, px: int) -> int:
        return max(self._min_lots, int(rng.lognormvariate(4.5, 1.3) / (px * self._unit_px)))

    # -- queries --------------------------------------------------------------------------------------
    def between(self, from_ms: int, to_ms: int) -> list[Fill]:
        """Fills with ``from_ms <= ts < to_ms``, oldest first."""
        lo = max(from_ms, self.params.origin_ms)
        if to_ms <= lo:
            return []
        out: list[Fill] = []
        for index in range(self.chunk_of(lo), self.chunk_of(to_ms - 1) + 1):
            out.extend(f for f in self.fills(index) if lo <= f.ts_ms < to_ms)
        return out

    def first_fill(self, from_ms: int, to_ms: int) -> Fill | None:
        """Oldest fill with ``from_ms <= ts < to_ms``, scanning chunk by chunk."""
        lo = max(from_ms, self.params.origin_ms)
        for index in range(self.chunk_of(lo), self.chunk_of(to_ms - 1) + 1) if to_ms > lo else ():
            for fill in self.fills(index):
                if lo <= fill.ts_ms < to_ms:
                    return fill
        return None

    def summary(self, from_ms: int, to_ms: int) -> Summary | None:
        """Summary of the fills with ``from_ms <= ts < to_ms``; whole chunks come from a cache, so long spans
        (24 h statistics, daily candles, firehose minutes) cost one step per chunk."""
        lo = max(from_ms, self.params.origin_ms)
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

    def chunk_of_id(self, trade_id: int) -> int:
        """Chunk holding ``trade_id`` (the id must be at or after the first one and already generated)."""
        return bisect.bisect_right(self._cum, trade_id - self.first_id) - 1

    def last_id(self, now_ms: int) -> int | None:
        """Id of the newest fill with ``ts <= now_ms``; None when no fill is visible yet."""
        last = self.last_fill(now_ms)
        return None if last is None else last.trade_id

    def last_fill(self, at_ms: int, *, source0: bool = False) -> Fill | None:
        """Newest fill with ``ts <= at_ms`` (optionally only book fills, source 0)."""
        index = self.chunk_of(at_ms)
        while index >= 0:
            for fill in reversed(self.fills(index)):
                if fill.ts_ms <= at_ms and not (source0 and fill.source):
                    return fill
            index -= 1
        return None

    def newest_by_id(self, *, below: int | None, above: int | None, limit: int, now_ms: int) -> list[Fill]:
        """Up to ``limit`` visible fills with ``above < id < below``, newest first."""
        top = self.last_id(now_ms)
        if top is None:
            return []
        hi = top if below is None else min(top, below - 1)
        lo = self.first_id if above is None else max(self.first_id, above + 1)
        return self._descending(hi, lo, limit)

    def oldest_above(self, *, above: int, limit: int, now_ms: int) -> list[Fill]:
        """The ``limit`` visible fills just above ``above``, newest first."""
        top = self.last_id(now_ms)
        if top is None:
            return []
        lo = max(self.first_id, above + 1)
        return self._descending(min(top, lo + limit - 1), lo, limit)

    def _descending(self, hi: int, lo: int, limit: int) -> list[Fill]:
        out: list[Fill] = []
        if hi < lo or limit <= 0:
            return out
        index = self.chunk_of_id(hi)
        while index >= 0 and len(out) < limit:
            for fill in reversed(self.fills(index)):
                if lo <= fill.trade_id <= hi:
                    out.append(fill)
                    if len(out) == limit:
                        break
            if self.first_id + self._cum[index] <= lo:
                break
            index -= 1
        return out

    def newest_before_ts(self, *, before_ms: int, limit: int) -> list[Fill]:
        """Up to ``limit`` fills with ``ts < before_ms``, newest first (``before_ms`` is already <= now + 1)."""
        last = self.last_fill(before_ms - 1)
        if last is None:
            return []
        return self._descending(last.trade_id, self.first_id, limit)


def _split_orders(rng: random.Random, n: int, p_single: float) -> list[int]:
    """Split ``n`` fills into taker orders of 1..k fills (geometric)."""
    orders: list[int] = []
    left = n
    while left > 0:
        size = 1
        while rng.random() > p_single and size < left and size < 20:
            size += 1
        orders.append(size)
        left -= size
    return orders


def _poisson(mean: float, u: float) -> int:
    if mean <= 0:
        return 0
    if mean > 40:
        return max(0, round(mean + math.sqrt(mean) * _inv_norm(u)))
    k, prob = 0, math.exp(-mean)
    cdf = prob
    while u > cdf and k < 400:
        k += 1
        prob *= mean / k
        cdf += prob
    return k


def _inv_norm(u: float) -> float:
    u = min(max(u, 1e-12), 1 - 1e-12)
    # Logit approximation of the normal quantile: plenty for a trade count.
    return math.log(u / (1 - u)) / 1.702


def _gauss(h: int) -> float:
    u1 = max(unit(h), 1e-12)
    u2 = unit(mix(h, 1))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
