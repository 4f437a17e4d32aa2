"""The deterministic trade tape of one instrument (pure: no I/O, no clock).

The tape is a function of (seed, instId, time) and of the market shape (rates, chunk size, quiet/burst shares),
never of when the server started. Everything is anchored to a fixed epoch origin, ``EPOCH_MS`` (2020-01-01 UTC):

* **Counts, top down.** Each UTC day since the epoch gets a fill count drawn from ``mix(seed, inst, day)`` with
  the day's expected number of fills as its mean. The day's count is split over its 24 hours, each hour's over
  its 60 minutes, and (for chunks shorter than a minute) each minute's over its chunks, by sequential binomial
  draws weighted by the expected fills of each part (a quiet minute weighs 0, a burst minute
  ``burst_factor``). So per-day prefix sums (a short list from the epoch) plus cached per-day and per-hour
  splits give the number of fills before any chunk in O(1), and a trade id in O(log) the other way round.
* **Trade ids** are ``first_id + the number of fills since the epoch``: contiguous, increasing with time.
* **Price level.** The log price is a mean-reverting (Ornstein-Uhlenbeck) walk over days since the epoch (a
  cached list of a few thousand steps), refined by Brownian bridges between day ends (hours), between hour
  ends (minutes) and between minute ends (sub-minute chunks), each drawn from its own hash. The fills of a
  chunk are spread around the line between the chunk's two anchors.
* **Fills** of a chunk are generated on demand from their own seed and cached, so any time or id range is
  reachable without generating the rest.

The tape is *visible* from ``history_from_ms`` (the server's ``--history-hours`` horizon): REST trade pages,
``between`` and the summaries behind candles and 24 h statistics stop there. What the tape holds at a given time
does not depend on the horizon. Whether a fill is visible also depends on the caller's ``now_ms``
(``ts <= now``): live trades are simply the part of the tape the clock has reached.

One exception: when ``history_trade_rate`` differs from ``trade_rate`` (the firehose), the rate switches at the
first chunk boundary at or after ``live_from_ms`` (the start), and chunks are one minute long before the
start's minute and ``chunk_ms`` long from there on. The tape before the start is still the pure tape at the
history rate; after it, ids and fills depend on the start.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, NamedTuple

from okx_simulator.instruments import InstrumentSpec
from okx_simulator.rng import key_of, mix, unit

__all__ = ["EPOCH_MS", "Fill", "Summary", "Tape", "TapeParams"]

EPOCH_MS: Final = 1_577_836_800_000  # 2020-01-01T00:00:00Z: the tape's fixed origin
_CACHE_CHUNKS: Final = 512
_CACHE_FILLS: Final = 400_000  # bounds memory at firehose rates (about 50 MB per instrument)
_CACHE_SPLITS: Final = 20_000  # cached per-day / per-hour / per-minute splits
_MINUTE_MS: Final = 60_000
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
_MAX_DAYS: Final = 200 * 366  # a safety bound for id lookups (ids never lie beyond the visible tape)
_SIGMA_PER_DAY: Final = 0.0009 * math.sqrt(1440)  # log-price volatility (about 3.4 % a day)
_REVERSION_PER_DAY: Final = 1 / 20  # OU mean reversion: the level stays within about +-25 % of start_px
_MIN_ANCHOR_TICKS: Final = 50.0
_ELP_PROB: Final = 0.01
_NORMAL: Final = NormalDist()


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
    """Market shape shared by every instrument's tape, and the server's visible window.

    ``history_from_ms`` (a minute boundary) is where the visible tape starts; ``live_from_ms`` (the start) only
    matters when ``history_trade_rate != trade_rate`` (see the module docstring).
    """

    seed: int
    history_from_ms: int
    chunk_ms: int
    trade_rate: float
    history_trade_rate: float
    live_from_ms: int
    quiet_prob: float
    burst_prob: float
    burst_factor: float


class _Split(NamedTuple):
    """One level of the hierarchy: fills before each part (``len = parts + 1``) and log levels at its ends."""

    prefix: list[int]
    levels: list[float]


class Tape:
    """The lazily generated trade tape of one instrument."""

    def __init__(self, *, spec: InstrumentSpec, params: TapeParams) -> None:
        self.spec = spec
        self.params = params
        self._key = key_of(spec.inst_id)
        self._hkey = mix(params.seed, self._key)
        self.first_id = 100_000_000 + self._hkey % 900_000_000  # the id of the first fill since EPOCH_MS
        self.history_from_ms = max(params.history_from_ms, EPOCH_MS)
        # Chunk geometry and the rate switch (only with a distinct history rate: the firehose).
        self._switched = params.history_trade_rate != params.trade_rate
        self._chunk = params.chunk_ms
        if self._switched:
            live = max(params.live_from_ms, EPOCH_MS)
            self._geometry_from = live - live % _MINUTE_MS  # one-minute chunks before, chunk_ms chunks after
            self._rate_from = -(-live // self._chunk) * self._chunk
            self._index_from = (self._geometry_from - EPOCH_MS) // _MINUTE_MS
        else:
            self._geometry_from = self._rate_from = EPOCH_MS
            self._index_from = 0
        flag_mean = (1 - params.quiet_prob) * (
            1 - params.burst_prob + params.burst_prob * params.burst_factor
        )
        self._flag_mean = flag_mean
        # Day level: fills before day d since the epoch, and the log level at its start (OU walk).
        self._day_cum = [0]
        self._day_x = [0.0]
        self._days: dict[int, _Split] = {}  # day -> hours
        self._hours: dict[int, _Split] = {}  # hour since epoch -> minutes
        self._subs: dict[int, _Split] = {}  # minute since epoch -> chunks (chunk_ms < 1 minute)
        self._cache: OrderedDict[int, list[Fill]] = OrderedDict()
        self._cached_fills = 0
        self._summaries: dict[int, Summary | None] = {}
        self._unit_px = float(spec.tick_sz) * float(spec.lot_sz)
        self._min_lots = spec.min_lots
        self._visible_from_count: int | None = None

    # -- chunk geometry -------------------------------------------------------------------------------
    def chunk_of(self, ts_ms: int) -> int:
        """Index of the chunk holding ``ts_ms`` (negative before the epoch)."""
        if ts_ms < self._geometry_from:
            return (ts_ms - EPOCH_MS) // _MINUTE_MS
        return self._index_from + (ts_ms - self._geometry_from) // self._chunk

    def chunk_start(self, index: int) -> int:
        if index < self._index_from:
            return EPOCH_MS + index * _MINUTE_MS
        return self._geometry_from + (index - self._index_from) * self._chunk

    def chunk_len(self, index: int) -> int:
        return _MINUTE_MS if index < self._index_from else self._chunk

    def _expected(self, start: int, end: int, *, pure: bool = False) -> float:
        """Expected fills over ``[start, end)`` before quiet/burst weighting; ``pure``: at the history rate
        throughout, as if the rate never switched."""
        p = self.params
        if pure:
            return p.history_trade_rate * (end - start) / 1000
        before = max(0, min(end, self._rate_from) - start)
        after = max(0, end - max(start, self._rate_from))
        return (p.history_trade_rate * before + p.trade_rate * after) / 1000

    def _mixed(self, start: int, length: int) -> bool:
        """True for the day and the hour that hold the rate switch (only with a distinct history rate)."""
        return self._switched and start < self._geometry_from < start + length

    # -- the count / level hierarchy ------------------------------------------------------------------
    def _extend_x(self, day: int) -> None:
        """Extend the OU walk of daily log levels up to the end of day ``day``."""
        decay = math.exp(-_REVERSION_PER_DAY)
        step_sd = _SIGMA_PER_DAY * math.sqrt((1 - decay * decay) / (2 * _REVERSION_PER_DAY))
        while len(self._day_x) <= day + 1:
            d = len(self._day_x) - 1
            self._day_x.append(self._day_x[d] * decay + step_sd * _gauss(mix(self._hkey, d, 41)))

    def _extend_days(self, day: int) -> None:
        """Extend the per-day prefix sums up to the end of day ``day``."""
        while len(self._day_cum) <= day + 1:
            d = len(self._day_cum) - 1
            start = EPOCH_MS + d * _DAY_MS
            total = self._day(d).prefix[-1] if self._mixed(start, _DAY_MS) else self._day_total(d)
            self._day_cum.append(self._day_cum[d] + total)

    def _day_total(self, day: int, *, pure: bool = False) -> int:
        start = EPOCH_MS + day * _DAY_MS
        mean = self._flag_mean * self._expected(start, start + _DAY_MS, pure=pure)
        return _poisson(mean, unit(mix(self._hkey, day, 31)))

    def _day(self, day: int) -> _Split:
        """Hour split of ``day``: fills before each hour of the day, and the log level at each hour start."""
        split = self._days.get(day)
        if split is None:
            self._extend_x(day)
            start = EPOCH_MS + day * _DAY_MS
            if self._mixed(start, _DAY_MS):
                counts = self._mixed_day(day)
            else:
                weights = [self._hour_weight(start + h * _HOUR_MS) for h in range(24)]
                counts = _split(self._day_total(day), weights, mix(self._hkey, day, 32))
            sd = _SIGMA_PER_DAY / math.sqrt(24)
            levels = _bridge(self._day_x[day], self._day_x[day + 1], 24, sd, mix(self._hkey, day, 42))
            split = _Split(_prefix(counts), levels)
            if len(self._days) > _CACHE_SPLITS:
                self._days.clear()
            self._days[day] = split
        return split

    def _pure_hours(self, day: int) -> list[int]:
        """Hour counts of ``day`` as the tape without a rate switch has them."""
        start = EPOCH_MS + day * _DAY_MS
        weights = [self._hour_weight(start + h * _HOUR_MS, pure=True) for h in range(24)]
        return _split(self._day_total(day, pure=True), weights, mix(self._hkey, day, 32))

    def _mixed_day(self, day: int) -> list[int]:
        """Hour counts of the day holding the switch: the hours before it keep the counts of the tape without
        a switch, the hours after it get their own draws at the live rate, and the hour holding it is the sum
        of its minutes."""
        pure = self._pure_hours(day)
        counts: list[int] = []
        for h in range(24):
            hour = day * 24 + h
            start = EPOCH_MS + hour * _HOUR_MS
            if start + _HOUR_MS <= self._geometry_from:
                counts.append(pure[h])
            elif start >= self._geometry_from:
                mean = self._flag_mean * self._expected(start, start + _HOUR_MS)
                counts.append(_poisson(mean, unit(mix(self._hkey, hour, 36))))
            else:
                counts.append(sum(self._mixed_hour(hour, pure[h])))
        return counts

    def _mixed_hour(self, hour: int, pure_count: int) -> list[int]:
        """Minute counts of the hour holding the switch: before it as without a switch, from it on one draw
        per minute at the live rate."""
        start = EPOCH_MS + hour * _HOUR_MS
        minutes = [start + m * _MINUTE_MS for m in range(60)]
        weights = [self._minute_weight(t, pure=True) for t in minutes]
        pure = _split(pure_count, weights, mix(self._hkey, hour, 33))
        return [
            pure[m]
            if t < self._geometry_from
            else _poisson(self._minute_weight(t), unit(mix(self._hkey, t // _MINUTE_MS, 37)))
            for m, t in enumerate(minutes)
        ]

    def _minute_weight(self, start: int, *, pure: bool = False) -> float:
        quiet, burst = self._minute_flags(start // _MINUTE_MS)
        if quiet:
            return 0.0
        expected = self._expected(start, start + _MINUTE_MS, pure=pure)
        return expected * (self.params.burst_factor if burst else 1.0)

    def _hour_weight(self, start: int, *, pure: bool = False) -> float:
        return sum(self._minute_weight(start + m * _MINUTE_MS, pure=pure) for m in range(60))

    def _minute_flags(self, minute: int) -> tuple[bool, bool]:
        """(quiet, burst) for a minute: quiet minutes have no trade at all, bursts have ``burst_factor`` x rate."""
        h = mix(self._hkey, minute, 1)
        return unit(h) < self.params.quiet_prob, unit(mix(h)) < self.params.burst_prob

    def _hour(self, hour: int) -> _Split:
        """Minute split of hour ``hour`` since the epoch."""
        split = self._hours.get(hour)
        if split is None:
            day, h = divmod(hour, 24)
            upper = self._day(day)
            start = EPOCH_MS + hour * _HOUR_MS
            if self._mixed(start, _HOUR_MS):
                counts = self._mixed_hour(hour, self._pure_hours(day)[h])
            else:
                weights = [self._minute_weight(start + m * _MINUTE_MS) for m in range(60)]
                counts = _split(upper.prefix[h + 1] - upper.prefix[h], weights, mix(self._hkey, hour, 33))
            sd = _SIGMA_PER_DAY / math.sqrt(1440)
            x0, x1 = upper.levels[h], upper.levels[h + 1]
            split = _Split(_prefix(counts), _bridge(x0, x1, 60, sd, mix(self._hkey, hour, 43)))
            if len(self._hours) > _CACHE_SPLITS:
                self._hours.clear()
            self._hours[hour] = split
        return split

    def _sub(self, minute: int) -> _Split:
        """Chunk split of a minute cut into ``chunk_ms`` chunks (``minute`` counted since the epoch)."""
        split = self._subs.get(minute)
        if split is None:
            hour, m = divmod(minute, 60)
            upper = self._hour(hour)
            start = EPOCH_MS + minute * _MINUTE_MS
            parts = _MINUTE_MS // self._chunk
            weights = [
                self._expected(start + k * self._chunk, start + (k + 1) * self._chunk) for k in range(parts)
            ]
            key = mix(self._hkey, minute, self._chunk, 34)
            counts = _split(upper.prefix[m + 1] - upper.prefix[m], weights, key)
            sd = _SIGMA_PER_DAY * math.sqrt(self._chunk / _DAY_MS)
            x0, x1 = upper.levels[m], upper.levels[m + 1]
            levels = _bridge(x0, x1, parts, sd, mix(self._hkey, minute, self._chunk, 44))
            split = _Split(_prefix(counts), levels)
            if len(self._subs) > _CACHE_SPLITS:
                self._subs.clear()
            self._subs[minute] = split
        return split

    def _locate(self, ts_ms: int) -> tuple[int, float]:
        """(fills since the epoch before ``ts_ms``, log level at ``ts_ms``) for a chunk boundary ``ts_ms``."""
        if ts_ms <= EPOCH_MS:
            return 0, 0.0
        rel = ts_ms - EPOCH_MS
        day = rel // _DAY_MS
        self._extend_days(day)
        hours = self._day(day)
        h = rel % _DAY_MS // _HOUR_MS
        minutes = self._hour(day * 24 + h)
        m = rel % _HOUR_MS // _MINUTE_MS
        count = self._day_cum[day] + hours.prefix[h] + minutes.prefix[m]
        within = rel % _MINUTE_MS
        if within == 0:
            return count, minutes.levels[m]
        sub = self._sub(rel // _MINUTE_MS)
        k = within // self._chunk
        return count + sub.prefix[k], sub.levels[k]

    def count_before(self, index: int) -> int:
        """Number of fills since the epoch before chunk ``index``."""
        return self._locate(self.chunk_start(index))[0]

    def _anchor(self, ts_ms: int) -> float:
        return max(self.spec.start_ticks * math.exp(self._locate(ts_ms)[1]), _MIN_ANCHOR_TICKS)

    def chunk_of_id(self, trade_id: int) -> int:
        """Chunk holding ``trade_id`` (an id of an existing fill: at or after ``first_id``)."""
        n = trade_id - self.first_id
        if n < 0:
            return self.chunk_of(EPOCH_MS) - 1
        while self._day_cum[-1] <= n:
            if len(self._day_cum) > _MAX_DAYS:
                raise ValueError(f"trade id {trade_id} lies beyond the tape")
            self._extend_days(len(self._day_cum) - 1)
        day = bisect.bisect_right(self._day_cum, n) - 1
        n -= self._day_cum[day]
        hours = self._day(day)
        h = bisect.bisect_right(hours.prefix, n) - 1
        n -= hours.prefix[h]
        minutes = self._hour(day * 24 + h)
        m = bisect.bisect_right(minutes.prefix, n) - 1
        n -= minutes.prefix[m]
        minute_start = EPOCH_MS + day * _DAY_MS + h * _HOUR_MS + m * _MINUTE_MS
        if minute_start < self._geometry_from or self._chunk == _MINUTE_MS:
            return self.chunk_of(minute_start)
        sub = self._sub((minute_start - EPOCH_MS) // _MINUTE_MS)
        k = bisect.bisect_right(sub.prefix, n) - 1
        return self.chunk_of(minute_start + k * self._chunk)

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
        before = self._locate(start)[0]
        n = self._locate(start + length)[0] - before
        if n == 0:
            return []
        rng = random.Random(mix(self._hkey, start, length, 5))
        burst = self._minute_flags(start // _MINUTE_MS)[1]
        orders = _split_orders(rng, n, 0.35 if burst else 0.65)
        times = sorted(start + int(rng.random() * length) for _ in orders)
        a0, a1 = self._anchor(start), self._anchor(start + length)
        noise = max(1.0, a0 * 0.00004)
        next_id = self.first_id + before
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
        return max(self._min_lots, int(math.exp(rng.gauss(4.5, 1.3)) / (px * self._unit_px)))

    # -- queries --------------------------------------------------------------------------------------
    @property
    def first_visible_id(self) -> int:
        """Id of the first fill at or after ``history_from_ms`` (it may not exist yet)."""
        if self._visible_from_count is None:
            self._visible_from_count = self._locate(self.history_from_ms)[0]
        return self.first_id + self._visible_from_count

    def between(self, from_ms: int, to_ms: int) -> list[Fill]:
        """Visible fills with ``from_ms <= ts < to_ms``, oldest first."""
        lo = max(from_ms, self.history_from_ms)
        if to_ms <= lo:
            return []
        out: list[Fill] = []
        for index in range(self.chunk_of(lo), self.chunk_of(to_ms - 1) + 1):
            out.extend(f for f in self.fills(index) if lo <= f.ts_ms < to_ms)
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


def _prefix(counts: list[int]) -> list[int]:
    out = [0]
    for c in counts:
        out.append(out[-1] + c)
    return out


def _split(total: int, weights: list[float], key: int) -> list[int]:
    """Split ``total`` fills over parts proportionally to ``weights`` (a multinomial by sequential binomials)."""
    if total and not any(w > 0 for w in weights):
        weights = [1.0] * len(weights)  # only when every part is quiet: keep the counts consistent
    suffix = [0.0] * (len(weights) + 1)
    for i in range(len(weights) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + weights[i]
    out: list[int] = []
    left = total
    for i, weight in enumerate(weights):
        if left == 0 or weight <= 0:
            out.append(0)
            continue
        share = weight / suffix[i]
        count = left if share >= 1.0 else _binomial(left, share, unit(mix(key, i)))
        out.append(count)
        left -= count
    return out


def _bridge(x0: float, x1: float, steps: int, sd: float, key: int) -> list[float]:
    """A Brownian bridge from ``x0`` to ``x1`` in ``steps`` steps of standard deviation ``sd``: steps + 1 points."""
    out = [x0]
    value = x0
    for i in range(steps - 1):
        left = steps - i
        value += (x1 - value) / left + sd * math.sqrt((left - 1) / left) * _gauss(mix(key, i))
        out.append(value)
    out.append(x1)
    return out


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


def _binomial(n: int, p: float, u: float) -> int:
    """The ``u`` quantile of Binomial(n, p): exact for small variances, normal approximation otherwise."""
    if p <= 0.0:
        return 0
    if p > 0.5:
        return n - _binomial(n, 1.0 - p, 1.0 - u)
    mean = n * p
    var = mean * (1.0 - p)
    if var > 25.0:
        return min(n, max(0, round(mean + math.sqrt(var) * _inv_norm(u))))
    prob = math.exp(n * math.log1p(-p))
    ratio = p / (1.0 - p)
    k, cdf = 0, prob
    while u > cdf and k < n:
        prob *= (n - k) / (k + 1) * ratio
        k += 1
        cdf += prob
    return k


def _inv_norm(u: float) -> float:
    return _NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))


def _gauss(h: int) -> float:
    u1 = max(unit(h), 1e-12)
    u2 = unit(mix(h, 1))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
