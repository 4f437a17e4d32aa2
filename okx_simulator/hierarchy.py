"""The count hierarchy of the tape (pure): how many fills lie before any time, and the price level there.

Everything is anchored to a fixed epoch origin, ``EPOCH_MS`` (2020-01-01 UTC), and depends only on the seed
key, the instrument and the market shape (``TapeParams``), never on when the server started:

* **Counts, top down.** Each UTC day since the epoch gets a fill count drawn from ``mix(seed, inst, day)`` with
  the day's expected number of fills as its mean. The day's count is split over its 24 hours, each hour's over
  its 60 minutes, and (for chunks shorter than a minute) each minute's over its chunks, by sequential binomial
  draws weighted by the expected fills of each part (a quiet minute weighs 0, a burst minute
  ``burst_factor``). So per-day prefix sums (a short list from the epoch) plus cached per-day and per-hour
  splits give the number of fills before any chunk in O(1), and a fill's chunk in O(log) the other way round.
* **Price level.** The log price is a mean-reverting (Ornstein-Uhlenbeck) walk over days since the epoch (a
  cached list of a few thousand steps), refined by Brownian bridges between day ends (hours), between hour
  ends (minutes) and between minute ends (sub-minute chunks), each drawn from its own hash.

One exception: when ``history_trade_rate`` differs from ``trade_rate`` (the firehose), the rate switches at the
first chunk boundary at or after ``live_from_ms`` (the start), and chunks are one minute long before the
start's minute and ``chunk_ms`` long from there on. The hierarchy before the start is still the pure one at
the history rate; after it, counts depend on the start.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Final, NamedTuple

from okx_simulator.distributions import (
    brownian_bridge,
    hashed_gauss,
    multinomial,
    poisson_quantile,
    prefix_sums,
)
from okx_simulator.rng import mix, unit

__all__ = ["EPOCH_MS", "CountHierarchy", "TapeParams"]

EPOCH_MS: Final = 1_577_836_800_000  # 2020-01-01T00:00:00Z: the tape's fixed origin
_CACHE_SPLITS: Final = 20_000  # cached per-day / per-hour / per-minute splits
_MINUTE_MS: Final = 60_000
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
_MAX_DAYS: Final = 200 * 366  # a safety bound for id lookups (ids never lie beyond the visible tape)
_SIGMA_PER_DAY: Final = 0.0009 * math.sqrt(1440)  # log-price volatility (about 3.4 % a day)
_REVERSION_PER_DAY: Final = 1 / 20  # OU mean reversion: the level stays within about +-25 % of start_px


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


class CountHierarchy:
    """Fill counts and log price levels of one instrument's tape, per day, hour, minute and chunk."""

    def __init__(self, *, hkey: int, params: TapeParams) -> None:
        """``hkey`` is the instrument's hash key (``mix(seed, key_of(instId))``)."""
        self.params = params
        self._hkey = hkey
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
            self._day_x.append(self._day_x[d] * decay + step_sd * hashed_gauss(mix(self._hkey, d, 41)))

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
        return poisson_quantile(mean, unit(mix(self._hkey, day, 31)))

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
                counts = multinomial(self._day_total(day), weights, mix(self._hkey, day, 32))
            sd = _SIGMA_PER_DAY / math.sqrt(24)
            levels = brownian_bridge(self._day_x[day], self._day_x[day + 1], 24, sd, mix(self._hkey, day, 42))
            split = _Split(prefix_sums(counts), levels)
            if len(self._days) > _CACHE_SPLITS:
                self._days.clear()
            self._days[day] = split
        return split

    def _pure_hours(self, day: int) -> list[int]:
        """Hour counts of ``day`` as the tape without a rate switch has them."""
        start = EPOCH_MS + day * _DAY_MS
        weights = [self._hour_weight(start + h * _HOUR_MS, pure=True) for h in range(24)]
        return multinomial(self._day_total(day, pure=True), weights, mix(self._hkey, day, 32))

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
                counts.append(poisson_quantile(mean, unit(mix(self._hkey, hour, 36))))
            else:
                counts.append(sum(self._mixed_hour(hour, pure[h])))
        return counts

    def _mixed_hour(self, hour: int, pure_count: int) -> list[int]:
        """Minute counts of the hour holding the switch: before it as without a switch, from it on one draw
        per minute at the live rate."""
        start = EPOCH_MS + hour * _HOUR_MS
        minutes = [start + m * _MINUTE_MS for m in range(60)]
        weights = [self._minute_weight(t, pure=True) for t in minutes]
        pure = multinomial(pure_count, weights, mix(self._hkey, hour, 33))
        return [
            pure[m]
            if t < self._geometry_from
            else poisson_quantile(self._minute_weight(t), unit(mix(self._hkey, t // _MINUTE_MS, 37)))
            for m, t in enumerate(minutes)
        ]

    def _minute_weight(self, start: int, *, pure: bool = False) -> float:
        quiet, burst = self.minute_flags(start // _MINUTE_MS)
        if quiet:
            return 0.0
        expected = self._expected(start, start + _MINUTE_MS, pure=pure)
        return expected * (self.params.burst_factor if burst else 1.0)

    def _hour_weight(self, start: int, *, pure: bool = False) -> float:
        return sum(self._minute_weight(start + m * _MINUTE_MS, pure=pure) for m in range(60))

    def minute_flags(self, minute: int) -> tuple[bool, bool]:
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
                counts = multinomial(
                    upper.prefix[h + 1] - upper.prefix[h], weights, mix(self._hkey, hour, 33)
                )
            sd = _SIGMA_PER_DAY / math.sqrt(1440)
            x0, x1 = upper.levels[h], upper.levels[h + 1]
            split = _Split(prefix_sums(counts), brownian_bridge(x0, x1, 60, sd, mix(self._hkey, hour, 43)))
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
            counts = multinomial(upper.prefix[m + 1] - upper.prefix[m], weights, key)
            sd = _SIGMA_PER_DAY * math.sqrt(self._chunk / _DAY_MS)
            x0, x1 = upper.levels[m], upper.levels[m + 1]
            levels = brownian_bridge(x0, x1, parts, sd, mix(self._hkey, minute, self._chunk, 44))
            split = _Split(prefix_sums(counts), levels)
            if len(self._subs) > _CACHE_SPLITS:
                self._subs.clear()
            self._subs[minute] = split
        return split

    def locate(self, ts_ms: int) -> tuple[int, float]:
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
        return self.locate(self.chunk_start(index))[0]

    def chunk_of_count(self, n: int) -> int:
        """Chunk holding the fill with ``n`` fills before it since the epoch (the chunk before the epoch's
        first one for ``n < 0``)."""
        if n < 0:
            return self.chunk_of(EPOCH_MS) - 1
        while self._day_cum[-1] <= n:
            if len(self._day_cum) > _MAX_DAYS:
                raise ValueError(f"fill number {n} lies beyond the tape")
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
