"""The mutable state of one candle while trades flow into it, and its conversion to :class:`Candle`.

Ordering rule (the same everywhere in this package, the reference tests included): trades are ordered by
``(ts_ms, trade_id)``. ``open`` is the price of the first trade in that order and ``close`` of the last, so the
result does not depend on the order in which trades *arrive*.

All arithmetic must run inside :data:`collectors.candles.exact.EXACT` (the engine enters it once per call).
"""

from __future__ import annotations

from decimal import Decimal

from collectors.candles.exact import EXACT, ZERO
from collectors.model import Candle, CandleSource

__all__ = ["Accumulator"]

_new = object.__new__


class Accumulator:
    """OHLCV sums of one bucket of one timeframe. Not thread-safe; owned by one engine."""

    __slots__ = (
        "buy",
        "carry_from",
        "close",
        "count",
        "dirty",
        "first_id",
        "first_ms",
        "folds",
        "high",
        "last_id",
        "last_ms",
        "low",
        "open",
        "quote",
        "revision",
        "snap",
        "start_ms",
        "volume",
    )

    def __init__(self, *, start_ms: int, price: Decimal) -> None:
        self.start_ms = start_ms
        self.open = self.high = self.low = self.close = price
        self.volume: Decimal = ZERO
        self.quote: Decimal = ZERO
        self.buy: Decimal = ZERO
        self.count = 0
        self.first_id = self.last_id = -1
        self.first_ms = self.last_ms = -1
        self.revision = 0
        self.dirty = False  # changed by a trade since the last CandleUpdated
        self.snap: Accumulator | None = None  # cached frozen copy (see frozen()); None once changed
        self.folds = True  # merged into the next coarser series when it closes (see series.py)
        # A carried (empty) candle: start of the real candle whose close it carries (None otherwise). While a
        # no-data span lies between the two, the carried close is unconfirmed: is_complete=False.
        self.carry_from: int | None = None

    def add(
        self, price: Decimal, size: Decimal, quote: Decimal, is_buy: bool, ts_ms: int, trade_id: int
    ) -> None:
        """Fold one trade in (any arrival order).

        The sums are computed before anything is changed: an exactness trap (``Inexact``) leaves the
        accumulator as it was, so the trade can be fed again.
        """
        volume, quote_sum = self.volume + size, self.quote + quote
        buy = self.buy + size if is_buy else self.buy
        if self.count == 0:
            self._first_trade(price, ts_ms, trade_id)
        elif ts_ms > self.last_ms or (ts_ms == self.last_ms and trade_id > self.last_id):
            self.close, self.last_ms, self.last_id = price, ts_ms, trade_id
        elif ts_ms < self.first_ms or (ts_ms == self.first_ms and trade_id < self.first_id):
            self.open, self.first_ms, self.first_id = price, ts_ms, trade_id
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.volume, self.quote, self.buy = volume, quote_sum, buy
        self.count += 1
        self.dirty = True
        self.snap = None

    def merge(self, other: Accumulator) -> None:
        """Fold the trades of ``other`` (a finer, disjoint bucket inside this one) in."""
        if other.count == 0:
            return
        self.snap = None
        if self.count == 0:
            self.open, self.high, self.low, self.close = other.open, other.high, other.low, other.close
            self.first_ms, self.first_id, self.last_ms, self.last_id = (
                other.first_ms,
                other.first_id,
                other.last_ms,
                other.last_id,
            )
        else:
            if (other.first_ms, other.first_id) < (self.first_ms, self.first_id):
                self.open, self.first_ms, self.first_id = other.open, other.first_ms, other.first_id
            if (other.last_ms, other.last_id) > (self.last_ms, self.last_id):
                self.close, self.last_ms, self.last_id = other.close, other.last_ms, other.last_id
            self.high = max(self.high, other.high)
            self.low = min(self.low, other.low)
        self.volume += other.volume
        self.quote += other.quote
        self.buy += other.buy
        self.count += other.count

    @classmethod
    def carried(
        cls, *, start_ms: int, price: Decimal, source_ms: int | None, key: tuple[int, int]
    ) -> Accumulator:
        """An empty bucket carrying ``price``: the close of the trade ``key`` = ``(ts_ms, trade_id)`` of the real
        candle starting at ``source_ms``. The key rides in ``last_ms``/``last_id``, unused while empty, so
        ``(last_ms, last_id)`` names the trade behind ``close`` for every accumulator, carried or real."""
        acc = cls(start_ms=start_ms, price=price)
        acc.carry_from = source_ms
        acc.last_ms, acc.last_id = key
        return acc

    def copy(self) -> Accumulator:
        """A copy of every field (not the change flags): built directly, it is made once per changed candle
        per call when updates are on."""
        clone = _new(Accumulator)
        clone.start_ms, clone.open, clone.high, clone.low, clone.close = (
            self.start_ms,
            self.open,
            self.high,
            self.low,
            self.close,
        )
        clone.volume, clone.quote, clone.buy, clone.count = self.volume, self.quote, self.buy, self.count
        clone.first_id, clone.last_id, clone.first_ms, clone.last_ms = (
            self.first_id,
            self.last_id,
            self.first_ms,
            self.last_ms,
        )
        clone.revision, clone.folds, clone.carry_from = self.revision, self.folds, self.carry_from
        clone.dirty, clone.snap = False, None
        return clone

    def frozen(self) -> Accumulator:
        """A copy that nobody mutates, cached until this accumulator changes (for deferred updates)."""
        snap = self.snap
        if snap is None:
            snap = self.snap = self.copy()
        return snap

    def _first_trade(self, price: Decimal, ts_ms: int, trade_id: int) -> None:
        # Also turns a carried (empty) candle into a real one.
        self.open = self.high = self.low = self.close = price
        self.first_ms = self.last_ms = ts_ms
        self.first_id = self.last_id = trade_id

    def carry_price(self, price: Decimal, source_ms: int, key: tuple[int, int]) -> bool:
        """Make an empty (carried) bucket carry ``price`` from ``source_ms``/``key`` (see :meth:`carried`);
        returns whether its OHLC changed."""
        if self.count != 0:
            return False
        self.carry_from = source_ms
        self.last_ms, self.last_id = key
        if self.close == price:
            return False
        self.snap = None
        self.open = self.high = self.low = self.close = price
        return True

    def to_candle(
        self,
        *,
        exchange: str,
        inst_id: str,
        timeframe: str,
        is_closed: bool,
        is_complete: bool,
        source: CandleSource,
    ) -> Candle:
        """A frozen snapshot of the current state."""
        empty = self.count == 0
        return Candle(
            exchange=exchange,
            inst_id=inst_id,
            timeframe=timeframe,
            open_time_ms=self.start_ms,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            quote_volume=self.quote,
            trade_count=self.count,
            buy_volume=self.buy,
            sell_volume=EXACT.subtract(self.volume, self.buy) or ZERO,  # zero as 0, like the batch path
            first_trade_id=None if empty else self.first_id,
            last_trade_id=None if empty else self.last_id,
            first_trade_ms=None if empty else self.first_ms,
            last_trade_ms=None if empty else self.last_ms,
            is_closed=is_closed,
            is_complete=is_complete,
            source=source,
            revision=self.revision,
        )
