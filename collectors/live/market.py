"""Books, tickers and the exchange's candles of one pair, as records (pure; times are parameters)."""

from __future__ import annotations

from collectors.errors import BookIntegrityError
from collectors.exchanges.okx.book import OrderBook
from collectors.exchanges.okx.events import BooksPush, CandlePush, TickerPush
from collectors.model import BookSnapshot, Ticker
from collectors.storage.records import ExchangeCandle

__all__ = ["MarketState"]


class MarketState:
    """Top-of-book snapshots throttled to one per ``interval_ms`` and only when changed; every ticker and
    exchange candle kept; the full-depth book (``full_depth_levels`` not None) checked for continuity."""

    def __init__(self, *, inst_id: str, interval_ms: int, full_depth_levels: int | None) -> None:
        self.inst_id = inst_id
        self.interval_ms = interval_ms
        self.full_depth_levels = full_depth_levels
        self._last: dict[str, tuple[int, BookSnapshot]] = {}  # channel -> (stored at, snapshot)
        self._book = OrderBook(inst_id=inst_id) if full_depth_levels is not None else None
        self.book_errors: list[str] = []

    def books(self, push: BooksPush, now_ms: int) -> tuple[list[BookSnapshot], bool]:
        """Snapshots to store, and whether the channel must be resubscribed (a full-depth book broke)."""
        if push.snapshot is not None:
            return self._throttled(push.channel, push.snapshot, now_ms), False
        if self._book is None or self.full_depth_levels is None:
            return [], False
        try:
            self._book.apply(push)
        except BookIntegrityError as exc:
            self.book_errors.append(str(exc))
            return [], True
        snapshot = self._book.snapshot(depth=self.full_depth_levels, recv_ms=push.recv_ms)
        return self._throttled(push.channel, snapshot, now_ms), False

    def _throttled(self, channel: str, snapshot: BookSnapshot, now_ms: int) -> list[BookSnapshot]:
        last = self._last.get(channel)
        if last is not None:
            stored_ms, previous = last
            if now_ms - stored_ms < self.interval_ms:
                return []
            if (previous.bids, previous.asks) == (snapshot.bids, snapshot.asks):
                return []
        self._last[channel] = (now_ms, snapshot)
        return [snapshot]

    @staticmethod
    def tickers(push: TickerPush) -> list[Ticker]:
        return list(push.tickers)

    @staticmethod
    def candles(push: CandlePush) -> list[ExchangeCandle]:
        return list(push.candles)
