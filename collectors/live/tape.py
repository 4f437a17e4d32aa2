"""Trade-id continuity of one instrument: every id delivered once, in id order, holes found and tracked.

Pure: no I/O, no clock (times are parameters). Ids on OKX are contiguous per instrument (``trades-all``); an
aggregated ``trades`` push covers ``tradeId - count + 1 .. tradeId``. The tape keeps a *frontier* (the highest
id delivered), a short hold-back buffer for pushes that arrive ahead of a missing id (reordered pushes), and
*holes*: id spans below the frontier not delivered yet, each with the time span it may cover (for the candle
engine's no-data spans). A push ahead of the frontier waits at most ``reorder_window_ms``; then the ids it
skipped become a hole. Sources are the WebSocket (:meth:`TradeTape.offer`) and REST (:meth:`TradeTape.fill`,
complete for the requested id range except what REST says it cannot return).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import localcontext
from operator import itemgetter

from collectors.candles.exact import EXACT
from collectors.model import Trade

__all__ = ["Delivery", "Hole", "TradeTape", "aggregate_fills"]


@dataclass(slots=True, kw_only=True)
class Hole:
    """Ids ``first_id .. last_id`` (inclusive) not delivered; ``missing`` the sub-ranges still missing.

    ``start_ms .. end_ms`` (half-open) is the time the missing trades may lie in: from the trade before the
    hole to just after the trade after it (trades of one taker order share a timestamp)."""

    first_id: int
    last_id: int
    start_ms: int
    end_ms: int
    reason: str
    missing: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.missing:
            self.missing = [(self.first_id, self.last_id)]

    def take(self, first: int, last: int) -> bool:
        """Remove ``first..last`` from the missing ids; True when any of it was missing."""
        kept: list[tuple[int, int]] = []
        hit = False
        for a, b in self.missing:
            if b < first or a > last:
                kept.append((a, b))
                continue
            hit = True
            if a < first:
                kept.append((a, first - 1))
            if b > last:
                kept.append((last + 1, b))
        self.missing = kept
        return hit

    @property
    def missing_count(self) -> int:
        return sum(b - a + 1 for a, b in self.missing)


@dataclass(slots=True)
class Delivery:
    """What one call changed: trades to store and feed (id order), holes opened, holes closed."""

    trades: list[Trade] = field(default_factory=list)
    opened: list[Hole] = field(default_factory=list)
    closed: list[Hole] = field(default_factory=list)
    duplicates: int = 0

    def extend(self, other: Delivery) -> None:
        self.trades.extend(other.trades)
        self.opened.extend(other.opened)
        self.closed.extend(other.closed)
        self.duplicates += other.duplicates


class TradeTape:
    """One instrument's tape. ``last_id``/``last_ts_ms``: where a previous session's stored tape ended."""

    def __init__(
        self, *, reorder_window_ms: int, last_id: int | None = None, last_ts_ms: int | None = None
    ) -> None:
        self.reorder_window_ms = reorder_window_ms
        self.frontier_id = last_id
        self.frontier_ts_ms = last_ts_ms
        self.holes: list[Hole] = []
        self._held: dict[int, tuple[Trade, int]] = {}  # first id -> (trade, last id)
        self._held_since_ms: int | None = None

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, trades: Sequence[Trade], counts: Sequence[int], now_ms: int) -> Delivery:
        """A WebSocket push's trades (any order); ``counts[i]``: the fills ``trades[i]`` stands for (1 on
        ``trades-all``; an aggregated ``trades`` row covers ids ``trade_id - count + 1 .. trade_id``)."""
        out = Delivery()
        frontier = self.frontier_id
        if len(trades) == 1 and not self._held:  # the usual push: one trade, the next id (or the first)
            trade = trades[0]
            last = trade.trade_id
            if frontier is None or last - counts[0] == frontier:
                self.frontier_id, self.frontier_ts_ms = last, trade.ts_ms
                out.trades.append(trade)
                return out
        spans = [(t.trade_id - c + 1, t.trade_id, t) for t, c in zip(trades, counts, strict=True)]
        for first, last, trade in sorted(spans, key=itemgetter(0)):
            frontier = self.frontier_id
            if frontier is not None and first > frontier + 1:
                if first not in self._held:
                    self._held[first] = (trade, last)
                    self._held_since_ms = now_ms if self._held_since_ms is None else self._held_since_ms
                else:
                    out.duplicates += 1
                continue
            self._place(trade, first, last, out)
        self._release_contiguous(out)
        return out

    def release_due(self, now_ms: int) -> Delivery:
        """Give up waiting for ids skipped by pushes held longer than the reorder window: they become holes."""
        out = Delivery()
        if self._held_since_ms is None or now_ms - self._held_since_ms < self.reorder_window_ms:
            return out
        self.flush_held(out, reason="jump")
        return out

    def flush_held(self, out: Delivery, *, reason: str) -> None:
        """Deliver every held push now; skipped ids become holes."""
        while self._held:
            first = min(self._held)
            trade, last = self._held.pop(first)
            self._open_hole(first - 1, trade, reason, out)
            self._place(trade, first, last, out)
            self._release_contiguous(out)
        self._held_since_ms = None

    def fill(
        self,
        trades: Sequence[Trade],
        *,
        after_id: int,
        before_id: int | None,
        unrecoverable: tuple[int, int] | None,
        counts: Sequence[int] | None = None,
    ) -> Delivery:
        """REST's answer for ids in ``(after_id, before_id)``: complete except ``unrecoverable`` (inclusive).
        ``counts``: the fills each trade stands for (:func:`aggregate_fills`; None: one each).

        Ids of that range still missing afterwards (REST skipped them, or said it cannot return them) are given
        up: their holes close, listed in ``closed`` with ``missing`` left as it is (unrecoverable)."""
        out = Delivery()
        spans = [(t.trade_id - c + 1, t) for t, c in zip(trades, counts or [1] * len(trades), strict=True)]
        spans.sort(key=itemgetter(0))
        for first, trade in spans:
            frontier = self.frontier_id
            if frontier is not None and first > frontier + 1:
                self._open_hole(first - 1, trade, "rest", out)
            self._held.pop(first, None)
            self._place(trade, first, trade.trade_id, out)
        ordered = [trade for _, trade in spans]
        self._release_contiguous(out)
        # what REST answered for: up to before_id, or (open range) up to the newest id it returned
        upper = before_id if before_id is not None else (ordered[-1].trade_id if ordered else after_id) + 1
        for hole in list(self.holes):
            if hole.first_id > after_id and hole.last_id < upper:
                self.holes.remove(hole)
                out.closed.append(hole)
        del unrecoverable  # within the range by contract: the holes of the range closed above include it
        return out

    # -- internals ---------------------------------------------------------------------------------------

    def _place(self, trade: Trade, first: int, last: int, out: Delivery) -> None:
        frontier = self.frontier_id
        if frontier is None or first > frontier:
            self.frontier_id, self.frontier_ts_ms = last, trade.ts_ms
            out.trades.append(trade)
            return
        for hole in self.holes:
            if hole.first_id <= last and first <= hole.last_id and hole.take(first, last):
                out.trades.append(trade)
                if not hole.missing:
                    self.holes.remove(hole)
                    out.closed.append(hole)
                return
        out.duplicates += 1

    def _release_contiguous(self, out: Delivery) -> None:
        while self.frontier_id is not None and self._held:
            nxt = self.frontier_id + 1
            entry = self._held.pop(nxt, None)
            if entry is None:
                for first in [f for f, (_, last) in self._held.items() if last <= self.frontier_id]:
                    del self._held[first]
                    out.duplicates += 1
                break
            self._place(entry[0], nxt, entry[1], out)
        if not self._held:
            self._held_since_ms = None

    def _open_hole(self, last_missing: int, after: Trade, reason: str, out: Delivery) -> None:
        frontier = self.frontier_id
        if frontier is None or last_missing <= frontier:
            return
        start_ms = self.frontier_ts_ms if self.frontier_ts_ms is not None else after.ts_ms
        hole = Hole(
            first_id=frontier + 1,
            last_id=last_missing,
            start_ms=min(start_ms, after.ts_ms),
            end_ms=after.ts_ms + 1,
            reason=reason,
        )
        self.holes.append(hole)
        out.opened.append(hole)
        # the trade after the hole is placed right after this; the frontier jumps past the hole
        self.frontier_id = last_missing


def aggregate_fills(fills: Sequence[Trade]) -> tuple[list[Trade], list[int]]:
    """Single fills (REST) in the shape of OKX's aggregated ``trades`` pushes: consecutive ids with the same
    time, side, price and source become one trade (the last fill's id, the sizes' exact sum); returns the trades
    in id order and the fills each stands for. One taker order's fills at one price share all four, so this is
    OKX's grouping except for two orders that touch with all four equal (merged here; volume and ids the same)."""
    trades: list[Trade] = []
    counts: list[int] = []
    for trade in sorted(fills, key=lambda t: t.trade_id):
        if trades:
            last = trades[-1]
            if (
                trade.trade_id == last.trade_id + 1
                and trade.ts_ms == last.ts_ms
                and trade.side is last.side
                and trade.price == last.price
                and trade.source == last.source
            ):
                with localcontext(EXACT):
                    size = last.size + trade.size
                trades[-1] = replace(trade, size=size)
                counts[-1] += 1
                continue
        trades.append(trade)
        counts.append(1)
    return trades, counts
