"""Compact memory of the trade ids seen recently, for de-duplication by trade id.

OKX trade ids of one instrument are (nearly) contiguous and increase with time, so the ids are kept as
sorted, disjoint, half-open ranges ``[start, end)``: a steady tape costs a few ranges instead of one set
entry per trade (about 60 bytes each: 40 MB at 1000 trades/s over ten minutes). Any id order still works
(arbitrary ids cost one range each, like a set).

Forgetting follows the trade clock: per minute of trade time the smallest id recorded is kept, and when
minutes leave the de-duplication window every id below the smallest id of the minutes still inside it is
dropped. Ids are never forgotten earlier than that; some may be kept longer (an id above that bound whose
trade is older), which only means such a trade, sent again, is still recognised as a duplicate.
"""

from __future__ import annotations

from bisect import bisect_right

__all__ = ["TradeIds"]


class TradeIds:
    """A set of ints stored as sorted disjoint ranges, with minute-based forgetting (see the module)."""

    __slots__ = ("end", "ends", "last_minute", "minute_min", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []  # ends[i] is the exclusive end of the range starting at starts[i]
        self.end = -(2**63)  # ends[-1] (the largest id + 1), for the engine's inline fast path
        self.minute_min: dict[int, int] = {}  # minute of trade time -> smallest id recorded in it
        self.last_minute: int | None = None

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
        starts, ends = self.starts, self.ends
        if trade_id == self.end:
            ends[-1] = self.end = trade_id + 1
        elif trade_id > self.end:
            starts.append(trade_id)
            ends.append(trade_id + 1)
            self.end = trade_id + 1
        else:
            k = bisect_right(starts, trade_id)  # ranges[:k] start at or before trade_id
            joins_left = k > 0 and ends[k - 1] == trade_id
            joins_right = k < len(starts) and starts[k] == trade_id + 1
            if joins_left and joins_right:
                ends[k - 1] = ends[k]
                del starts[k], ends[k]
            elif joins_left:
                ends[k - 1] = trade_id + 1
            elif joins_right:
                starts[k] = trade_id
            else:
                starts.insert(k, trade_id)
                ends.insert(k, trade_id + 1)
        low = self.minute_min.get(minute)
        if low is None or trade_id < low:
            self.minute_min[minute] = trade_id
        self.last_minute = minute

    def forget_minutes_before(self, minute: int) -> None:
        """Forget the trades of minutes before ``minute`` (ids below every later minute's smallest id)."""
        expired = [m for m in self.minute_min if m < minute]
        if not expired:
            return
        for m in expired:
            del self.minute_min[m]
        if not self.minute_min:
            self.starts, self.ends, self.end, self.last_minute = [], [], -(2**63), None
            return
        bound = min(self.minute_min.values())
        k = bisect_right(self.ends, bound)  # ranges[:k] end at or before bound: all below it
        del self.starts[:k], self.ends[:k]
        if self.starts and self.starts[0] < bound:
            self.starts[0] = bound
