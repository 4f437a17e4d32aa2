"""Compact memory of the trade ids seen recently, for de-duplication by trade id.

OKX trade ids of one instrument are (nearly) contiguous and increase with time, so the ids are kept as
sorted, disjoint, half-open ranges ``[start, end)``: a steady tape costs a few ranges instead of one set
entry per trade (about 60 bytes each: 40 MB at 1000 trades/s over ten minutes). Any id order works: ids that
do not increase cost one range each, like a set.

Forgetting follows the trade clock, exactly: each range holds ids of trades of one minute (``ts // 60 s``), a
range is extended only by an adjacent id of the same minute, and forgetting the minutes before ``m`` drops
every range of those minutes. So an id is held exactly as long as its trade's minute is in the window,
whatever the id order, and memory is bounded by the trades of the window, never by the tape's length.
"""

from __future__ import annotations

from bisect import bisect_right

__all__ = ["TradeIds"]

_NONE = -(2**63)


class TradeIds:
    """A set of ints stored as sorted disjoint ranges, each of one minute (see the module)."""

    __slots__ = ("end", "ends", "last_minute", "minutes", "oldest", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []  # ends[i] is the exclusive end of the range starting at starts[i]
        self.minutes: list[int] = []  # minutes[i]: the minute of every trade in range i
        self.end = _NONE  # ends[-1] (the largest id + 1), for the engine's inline fast path
        self.last_minute: int | None = None  # minutes[-1], for the same fast path
        self.oldest = 2**63  # no minute held is older: forgetting before it is a no-op

    def __contains__(self, trade_id: int) -> bool:
        if trade_id >= self.end:
            return False
        k = bisect_right(self.starts, trade_id) - 1
        return k >= 0 and trade_id < self.ends[k]

    def __len__(self) -> int:
        """The number of ids held."""
        return sum(e - s for s, e in zip(self.starts, self.ends, strict=True))

    @property
    def ranges(self) -> int:
        return len(self.starts)

    def add(self, trade_id: int, minute: int) -> None:
        """Record ``trade_id`` (not yet held) of a trade in ``minute`` (ts // 60 s)."""
        if minute < self.oldest:
            self.oldest = minute
        starts, ends, minutes = self.starts, self.ends, self.minutes
        if trade_id >= self.end:
            if trade_id == self.end and minute == self.last_minute:
                ends[-1] = self.end = trade_id + 1
            else:
                starts.append(trade_id)
                ends.append(trade_id + 1)
                minutes.append(minute)
                self.end, self.last_minute = trade_id + 1, minute
            return
        k = bisect_right(starts, trade_id)  # ranges[:k] start at or before trade_id
        joins_left = k > 0 and ends[k - 1] == trade_id and minutes[k - 1] == minute
        joins_right = k < len(starts) and starts[k] == trade_id + 1 and minutes[k] == minute
        if joins_left and joins_right:
            ends[k - 1] = ends[k]
            del starts[k], ends[k], minutes[k]
        elif joins_left:
            ends[k - 1] = trade_id + 1
        elif joins_right:
            starts[k] = trade_id
        else:
            starts.insert(k, trade_id)
            ends.insert(k, trade_id + 1)
            minutes.insert(k, minute)
        self.end, self.last_minute = ends[-1], minutes[-1]

    def forget_minutes_before(self, minute: int) -> None:
        """Forget the ids of trades in minutes before ``minute``."""
        if self.oldest >= minute:
            return
        kept = [i for i, m in enumerate(self.minutes) if m >= minute]
        self.starts = [self.starts[i] for i in kept]
        self.ends = [self.ends[i] for i in kept]
        self.minutes = [self.minutes[i] for i in kept]
        self.end = self.ends[-1] if kept else _NONE
        self.last_minute = self.minutes[-1] if kept else None
        self.oldest = min(self.minutes, default=2**63)
