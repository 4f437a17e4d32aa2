"""Which time of one pair the live candles are told has no data, and when that is forgotten again.

A live pair marks ``mark_no_data`` on its candle engine (through :class:`~collectors.live.candle_out.LiveCandles`)
for four kinds of time: an outage in progress (the trade stream down, or a restart catching up from the last
stored trade), every open hole of the tape, every span of ids REST could not return (no data for ever), and, on a
fresh start, the part of every bucket before the first watched trade. A filled span is forgotten with
``mark_filled`` and what is still open or lost inside it is marked again (spans are a set, not counted).

:class:`NoDataMarks` keeps that state; every method returns the candle records its engine calls produced, which
the pair core queues for the writer. Pure: times are passed in, nothing here does I/O.
"""

from __future__ import annotations

from collectors.live.candle_out import LiveCandles
from collectors.live.tape import TradeTape
from collectors.model import Candle, Timeframe

__all__ = ["NoDataMarks"]


class NoDataMarks:
    """``outage_from_ms``: a restart's outage starts at the last stored trade (``None``: no outage yet);
    ``fresh``: nothing was watched before the first trade (a start without a stored trade)."""

    def __init__(
        self, *, candles: LiveCandles, tape: TradeTape, outage_from_ms: int | None, fresh: bool
    ) -> None:
        self.candles, self.tape = candles, tape
        self.outage_ms = outage_from_ms  # start of the outage in progress, None while the tape is live
        self._unwatched = fresh
        self._outage_marked_ms: int | None = None  # where the outage's no-data span is marked up to
        self._lost: list[tuple[int, int]] = []  # spans of unrecoverable ids: no data for ever

    def mark(self, start_ms: int, end_ms: int) -> list[Candle]:
        return self.candles.no_data(start_ms, end_ms) if end_ms > start_ms else []

    def outage_begins(self, now_ms: int) -> int:
        """The stream went down: the outage starts at the frontier's time (or ``now_ms``); returns that start."""
        if self.outage_ms is None:
            self.outage_ms = self.tape.frontier_ts_ms if self.tape.frontier_ts_ms is not None else now_ms
        return self.outage_ms

    def outage_to(self, now_ms: int) -> list[Candle]:
        """The outage in progress is no data up to ``now_ms`` (included)."""
        assert self.outage_ms is not None
        marked = self._outage_marked_ms
        self._outage_marked_ms = now_ms + 1 if marked is None else max(marked, now_ms + 1)
        return self.mark(self.outage_ms, now_ms + 1)

    def lost(self, start_ms: int, end_ms: int) -> None:
        """Ids of this span are unrecoverable: it stays no data whatever is filled around it."""
        self._lost.append((start_ms, end_ms))

    def watching_from(self, start_ms: int) -> list[Candle]:
        """A fresh start's watching begins at ``start_ms``: before it, back to the start of every bucket that
        holds it, trades are not known (the rule of ``collectors.storage.records.no_data_spans``)."""
        if not self._unwatched:
            return []
        self._unwatched = False
        frames = [Timeframe.parse(name) for name in self.candles.engine.config.timeframes]
        return self.mark(min(tf.bucket_start_ms(start_ms) for tf in frames), start_ms)

    def filled(self, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        """Forget a no-data span, then mark again what is still open or lost (spans are a set, not counted)."""
        records = list(self.candles.filled(start_ms, end_ms, now_ms))
        for hole in self.tape.holes:
            records += self.mark(hole.start_ms, hole.end_ms)
        for lost_start, lost_end in self._lost:
            if lost_start < end_ms and start_ms < lost_end:
                records += self.mark(lost_start, lost_end)
        if self.outage_ms is not None and self.outage_ms < start_ms:
            records += self.outage_to(now_ms)
        return records

    def caught_up_to(self, frontier_ts: int, now_ms: int) -> list[Candle]:
        """During an outage, REST trades moved the frontier to ``frontier_ts`` (after the outage's start): the
        no-data span now starts there."""
        assert self.outage_ms is not None
        records = self.watching_from(self.outage_ms)
        records += self.filled(self.outage_ms, frontier_ts, now_ms)
        self.outage_ms = frontier_ts
        return records

    def outage_ends(self, now_ms: int) -> tuple[int, list[Candle]]:
        """The stream's trades joined the frontier: forget all the outage marked (up to its last tick's now + 1),
        not only up to the newest trade (``filled`` marks again the holes still open). Returns the outage's
        start and the records."""
        start = self.outage_ms
        assert start is not None
        self.outage_ms = None
        ends = (start, self.tape.frontier_ts_ms, self._outage_marked_ms)
        end = max(t for t in ends if t is not None)
        self._outage_marked_ms = None
        records = self.watching_from(start)
        if end > start:
            records += self.filled(start, end, now_ms)
        return start, records
