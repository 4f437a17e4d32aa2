"""The whole simulated market: one tape and one book model per instrument, queried at an explicit ``now_ms``.

Pure apart from caches: no clock, no I/O. The aiohttp layer passes the current time in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from okx_simulator.book import Book, BookModel
from okx_simulator.config import SimulatorConfig
from okx_simulator.instruments import InstrumentSpec, spec_for
from okx_simulator.rng import key_of, mix
from okx_simulator.tape import EPOCH_MS, Fill, Summary, Tape, TapeParams, merge

__all__ = ["Instrument", "Market", "TickerState"]

_MINUTE_MS: Final = 60_000
_DAY_MS: Final = 86_400_000
_HK_MS: Final = 8 * 3_600_000
_SEQ_PER_MS: Final = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class TickerState:
    """Everything a ticker carries, in ticks and lots."""

    last: Fill | None
    book: Book
    open24h: int
    high24h: int
    low24h: int
    vol24h: int
    notional24h: int
    sod_utc0: int
    sod_utc8: int
    ts_ms: int


class Instrument:
    """Tape, book model and caches of one instrument."""

    def __init__(self, *, spec: InstrumentSpec, params: TapeParams) -> None:
        self.spec = spec
        self.tape = Tape(spec=spec, params=params)
        self.books = BookModel(spec=spec, seed=params.seed)
        self.seq_base = 10_000_000_000 + mix(params.seed, key_of(spec.inst_id), 21) % 90_000_000_000
        self._day: tuple[int, Summary | None] | None = None
        self._sod: dict[int, int] = {}

    @property
    def inst_id(self) -> str:
        return self.spec.inst_id

    def seq_at(self, ts_ms: int, *, slot: int) -> int:
        """seqId at ``ts_ms``: per instrument, increasing with time, jumping by 16 per ms (not contiguous)."""
        return self.seq_base + (ts_ms - EPOCH_MS) * _SEQ_PER_MS + slot

    def book_at(self, now_ms: int, depth: int) -> Book:
        return self.books.book(self.tape.last_fill(now_ms, source0=True), depth)

    def ticker(self, now_ms: int) -> TickerState:
        """Ticker at ``now_ms``: last fill, top of book and statistics over the visible part of the last 24 h."""
        minute_open = now_ms - now_ms % _MINUTE_MS
        day = merge([self._completed_day(minute_open), self.tape.summary(minute_open, now_ms + 1)])
        last = self.tape.last_fill(now_ms)
        fallback = last.px if last is not None else self.spec.start_ticks
        return TickerState(
            last=last,
            book=self.book_at(now_ms, 1),
            open24h=day.o if day else fallback,
            high24h=day.h if day else fallback,
            low24h=day.low if day else fallback,
            vol24h=day.vol if day else 0,
            notional24h=day.notional if day else 0,
            sod_utc0=self._sod_price(now_ms - now_ms % _DAY_MS, now_ms),
            sod_utc8=self._sod_price(now_ms - (now_ms + _HK_MS) % _DAY_MS, now_ms),
            ts_ms=now_ms,
        )

    def _completed_day(self, minute_open: int) -> Summary | None:
        """Summary of the completed minutes of the last 24 h (recomputed once a minute)."""
        if self._day is None or self._day[0] != minute_open:
            first = minute_open - _DAY_MS + _MINUTE_MS
            self._day = (minute_open, self.tape.summary(first, minute_open))
        return self._day[1]

    def _sod_price(self, day_open: int, now_ms: int) -> int:
        """Open price of the day starting at ``day_open``: its first fill, or the last price before it."""
        cached = self._sod.get(day_open)
        if cached is not None:
            return cached
        first = self.tape.first_fill(day_open, now_ms + 1)
        if first is None:
            before = self.tape.last_fill(day_open - 1)
            return before.px if before is not None else self.spec.start_ticks
        self._sod[day_open] = first.px
        return first.px


class Market:
    """All simulated instruments of one run, keyed by instId."""

    def __init__(self, *, config: SimulatorConfig, history_from_ms: int, live_from_ms: int) -> None:
        params = TapeParams(
            seed=config.seed,
            history_from_ms=history_from_ms,
            chunk_ms=config.chunk_ms,
            trade_rate=config.trade_rate,
            history_trade_rate=config.trade_rate
            if config.history_trade_rate is None
            else config.history_trade_rate,
            live_from_ms=live_from_ms,
            quiet_prob=config.quiet_prob,
            burst_prob=config.burst_prob,
            burst_factor=config.burst_factor,
        )
        self.config = config
        self.history_from_ms = history_from_ms
        self.instruments = {p: Instrument(spec=spec_for(p), params=params) for p in config.pairs}

    def get(self, inst_id: str) -> Instrument | None:
        return self.instruments.get(inst_id)

    def all(self) -> Iterable[Instrument]:
        return self.instruments.values()
