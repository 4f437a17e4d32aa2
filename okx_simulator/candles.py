"""OKX candles computed from the tape (pure).

Rules (API.md 1.5, 2.3, 2.5): ``ts`` is the bar open; ``1m``..``4H`` and ``*utc`` bars align to UTC, ``6H``
and longer bars without ``utc`` align to UTC+8 (Hong Kong); a bar with no trade carries the previous close
with zero volume; ``confirm`` is "1" once the bar has closed. Bars exist from the bar holding the start of the
visible tape (``Tape.history_from_ms``); that first bar holds only its visible fills.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, NamedTuple

from okx_simulator.tape import Summary, Tape

__all__ = [
    "HISTORY_BARS",
    "REST_BARS",
    "WS_BARS",
    "Bar",
    "CandleRow",
    "bar_for",
    "bar_opens_back",
    "candle_rows",
    "candle_wire",
    "fold",
]

_HK_MS: Final = 8 * 3_600_000
_UNITS: Final = {"s": 1_000, "m": 60_000, "H": 3_600_000, "D": 86_400_000, "W": 7 * 86_400_000}
_BASE: Final = ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H")
_ALIGNED: Final = ("6H", "12H", "1D", "2D", "3D", "1W", "1M", "3M")
REST_BARS: Final = frozenset((*_BASE, *_ALIGNED, *(f"{b}utc" for b in _ALIGNED)))
HISTORY_BARS: Final = REST_BARS | {"1s"}
WS_BARS: Final = HISTORY_BARS | {"5D", "5Dutc"}
# 1970-01-05 was a Monday; weekly bars open on Monday 00:00 in their time zone.
_MONDAY_MS: Final = 4 * 86_400_000


@dataclass(frozen=True, slots=True)
class Bar:
    """A bar size: its OKX name, its length (0 for months) and its time-zone offset."""

    name: str
    duration_ms: int
    months: int
    offset_ms: int

    def open_of(self, ts_ms: int) -> int:
        """Open time of the bar holding ``ts_ms``."""
        if self.months:
            local = datetime.fromtimestamp((ts_ms + self.offset_ms) / 1000, UTC)
            month0 = (local.year * 12 + local.month - 1) // self.months * self.months
            return self._month_start(month0)
        week = _MONDAY_MS if self.duration_ms == _UNITS["W"] else 0
        return ts_ms - (ts_ms + self.offset_ms - week) % self.duration_ms

    def next_open(self, open_ms: int) -> int:
        if not self.months:
            return open_ms + self.duration_ms
        local = datetime.fromtimestamp((open_ms + self.offset_ms) / 1000, UTC)
        return self._month_start(local.year * 12 + local.month - 1 + self.months)

    def _month_start(self, month0: int) -> int:
        start = datetime(month0 // 12, month0 % 12 + 1, 1, tzinfo=UTC)
        return int(start.timestamp() * 1000) - self.offset_ms

    def prev_open(self, open_ms: int) -> int:
        if not self.months:
            return open_ms - self.duration_ms
        return self.open_of(open_ms - 1)


def bar_for(name: str, *, allowed: frozenset[str] = WS_BARS, hk_aligned: bool = True) -> Bar | None:
    """The bar called ``name`` (case-sensitive, OKX names), or None when OKX would reject it.

    ``hk_aligned=False`` aligns the non-``utc`` 6H..3M bars to UTC too (the UTC+8 rule is UNVERIFIED).
    """
    if name not in allowed:
        return None
    utc = name.endswith("utc")
    core = name[:-3] if utc else name
    count, unit_char = int(core[:-1]), core[-1]
    offset = 0 if utc or not hk_aligned or core in _BASE or core == "1s" else _HK_MS
    if unit_char == "M":
        return Bar(name, 0, count, offset)
    return Bar(name, count * _UNITS[unit_char], 0, offset)


class CandleRow(NamedTuple):
    """One candle in ticks and lots; ``notional`` is the sum of ticks x lots."""

    open_ms: int
    o: int
    h: int
    low: int
    c: int
    vol: int
    notional: int
    trades: int
    confirmed: bool


def fold(summary: Summary | None, open_ms: int, prev_close: int, confirmed: bool) -> CandleRow:
    """A candle from a span summary; an empty span carries ``prev_close`` with zero volume."""
    if summary is None:
        return CandleRow(open_ms, prev_close, prev_close, prev_close, prev_close, 0, 0, 0, confirmed)
    s = summary
    return CandleRow(open_ms, s.o, s.h, s.low, s.c, s.vol, s.notional, s.trades, confirmed)


def candle_rows(tape: Tape, bar: Bar, *, first_open: int, last_open: int, now_ms: int) -> Iterator[CandleRow]:
    """Candles with ``first_open <= open <= last_open`` (oldest first), as the tape stands at ``now_ms``.

    Bars before the one holding the start of the visible tape, and bars opening after ``now_ms``, are not
    produced. The close carried into an empty first bar is the last price of the whole tape before it.
    """
    open_ms = max(bar.open_of(first_open), bar.open_of(tape.history_from_ms))
    last_open = min(last_open, bar.open_of(now_ms))
    before = tape.last_fill(open_ms - 1)
    prev_close = before.px if before is not None else tape.spec.start_ticks
    while open_ms <= last_open:
        close_ms = bar.next_open(open_ms)
        summary = tape.summary(open_ms, min(close_ms, now_ms + 1))
        row = fold(summary, open_ms, prev_close, confirmed=close_ms <= now_ms)
        prev_close = row.c
        yield row
        open_ms = close_ms


def candle_wire(tape: Tape, row: CandleRow) -> list[str]:
    """OKX's 9-string array ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`` for a SPOT candle."""
    spec = tape.spec
    quote = spec.notional(row.notional)
    return [
        str(row.open_ms),
        spec.price(row.o),
        spec.price(row.h),
        spec.price(row.low),
        spec.price(row.c),
        spec.size(row.vol),
        quote,
        quote,
        "1" if row.confirmed else "0",
    ]


def bar_opens_back(bar: Bar, newest_open: int, count: int) -> int:
    """The open time ``count - 1`` bars before ``newest_open``."""
    if not bar.months:
        return newest_open - (count - 1) * bar.duration_ms
    open_ms = newest_open
    for _ in range(count - 1):
        open_ms = bar.prev_open(open_ms)
    return open_ms
