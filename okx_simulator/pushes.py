"""What each public channel pushes for one instrument, tick after tick (pure: time is a parameter).

One ``InstFeed`` per instrument holds the last state sent on each channel, so every subscriber of a channel
gets the same frames and ``books`` updates chain ``prevSeqId`` -> ``seqId`` across connections, as on OKX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from okx_simulator.book import Book, diff_levels, legacy_checksum
from okx_simulator.candles import CandleRow, bar_for, candle_rows, candle_wire
from okx_simulator.config import SimulatorConfig
from okx_simulator.market import Instrument
from okx_simulator.tape import Fill
from okx_simulator.wire import (
    TradesAllEncoder,
    aggregate,
    book_levels,
    encode,
    ticker_row,
    trades_all_row,
    ws_trade_row,
)

__all__ = ["InstFeed"]

Json = dict[str, Any]
BOOKS_DEPTH: Final = 400
_TRADE_SLOT: Final = 4
_BOOK_SLOT: Final = 9


def _encoded(channel: str, message: Json) -> tuple[str, Json | None, str]:
    return channel, message, encode(message)


@dataclass(slots=True)
class _CandleState:
    open_ms: int
    row: CandleRow | None
    pushed_ms: int


class InstFeed:
    """Channel state of one instrument; ``step`` returns the frames of one tick as (channel, message)."""

    def __init__(self, *, inst: Instrument, config: SimulatorConfig, now_ms: int) -> None:
        self.inst = inst
        self.config = config
        self.spec = inst.spec
        self.last_ms = now_ms
        self.book: Book | None = None
        self.books_seq = -1
        self.books_pushed_ms = now_ms
        self.tops: dict[str, tuple[Book, int]] = {}  # books5 / bbo-tbt: last levels sent, and when
        self.ticker_key: tuple[Any, ...] | None = None
        self.candles: dict[str, _CandleState] = {}
        self.seq_offset = 0
        self._trades_all = TradesAllEncoder(inst.spec)

    def _arg(self, channel: str) -> Json:
        return {"channel": channel, "instId": self.spec.inst_id}

    # -- initial state on subscribe -------------------------------------------------------------------
    def initial(self, channel: str, now_ms: int) -> list[Json]:
        """Frames pushed right after a subscribe: last trade, ticker, book snapshot or forming candle."""
        if channel in ("trades", "trades-all"):
            # The newest fill already stepped past: the next tick sends only newer ones, so none is sent twice.
            last = self.inst.tape.last_fill(self.last_ms)
            if last is None:
                return []
            group = [
                f for f in self.inst.tape.fills(self.inst.tape.chunk_of(last.ts_ms)) if f.order == last.order
            ]
            group = [f for f in group if f.trade_id <= last.trade_id and f.px == last.px]
            return [self._trades_frame(channel, group)]
        if channel == "tickers":
            return [self._ticker(now_ms)]
        if channel == "books":
            if self.book is None:
                self._advance_books(now_ms)
            assert self.book is not None
            return [self._books_frame("snapshot", self.book.asks, self.book.bids, -1, now_ms)]
        if channel in ("books5", "bbo-tbt"):
            book = self.inst.book_at(now_ms, 5 if channel == "books5" else 1)
            self.tops.setdefault(channel, (book, now_ms))
            return [self._top_frame(channel, book, now_ms)]
        return self._candle_initial(channel, now_ms)

    # -- one tick -------------------------------------------------------------------------------------
    def step(self, channels: set[str], now_ms: int) -> list[tuple[str, Json | None, str]]:
        """Frames of one tick as (channel, message, wire text); ``message`` is None for the pre-encoded
        ``trades-all`` pushes (the firehose path: no dict is built per fill)."""
        fills = self.inst.tape.between(self.last_ms + 1, now_ms + 1)
        self.last_ms = now_ms
        out: list[tuple[str, Json | None, str]] = []
        if "trades" in channels:
            out += [_encoded("trades", self._trades_frame("trades", g)) for g in aggregate(fills)]
        if "trades-all" in channels:
            out += [("trades-all", None, text) for text in self._trades_all_texts(fills)]
        if "tickers" in channels:
            out += [_encoded("tickers", t) for t in self._ticker_if_changed(now_ms, bool(fills))]
        if "books" in channels:
            out += [_encoded("books", b) for b in self._books_step(now_ms)]
        for channel, depth in (("bbo-tbt", 1), ("books5", 5)):
            if channel in channels:
                out += [_encoded(channel, b) for b in self._top_step(channel, depth, now_ms)]
        for channel in channels:
            if channel.startswith("candle"):
                out += [_encoded(channel, c) for c in self._candle_step(channel, now_ms)]
        return out

    def _trades_all_texts(self, fills: list[Fill]) -> list[str]:
        frame = self._trades_all.frame
        if self.config.trades_all_seq_id:
            return [frame(f, self._seq(f.ts_ms, _TRADE_SLOT)) for f in fills]
        return [frame(f) for f in fills]

    def _seq(self, ts_ms: int, slot: int) -> int:
        return self.inst.seq_at(ts_ms, slot=slot) + self.seq_offset

    def reset_sequence(self) -> None:
        """Simulate a post-maintenance sequence reset: the next books frame has seqId < prevSeqId."""
        self.seq_offset -= 1_000_000

    def _trades_frame(self, channel: str, group: list[Fill]) -> Json:
        seq = self._seq(group[-1].ts_ms, _TRADE_SLOT)
        if channel == "trades-all":
            row = trades_all_row(self.spec, group[-1])
            if self.config.trades_all_seq_id:
                row["seqId"] = seq
            return {"arg": self._arg(channel), "data": [row]}
        return {"arg": self._arg(channel), "data": [ws_trade_row(self.spec, group, seq)]}

    def _ticker(self, now_ms: int) -> Json:
        return {"arg": self._arg("tickers"), "data": [ticker_row(self.spec, self.inst.ticker(now_ms))]}

    def _ticker_if_changed(self, now_ms: int, traded: bool) -> list[Json]:
        top = self.inst.book_at(now_ms, 1)
        key = (top.bids[:1], top.asks[:1])
        if not traded and key == self.ticker_key:
            return []
        self.ticker_key = key
        return [self._ticker(now_ms)]

    # -- books ----------------------------------------------------------------------------------------
    def _advance_books(self, now_ms: int) -> tuple[Book | None, Book]:
        old = self.book
        self.book = self.inst.book_at(now_ms, BOOKS_DEPTH)
        self.books_seq = self._seq(now_ms, _BOOK_SLOT)
        self.books_pushed_ms = now_ms
        return old, self.book

    def _books_step(self, now_ms: int) -> list[Json]:
        new = self.inst.book_at(now_ms, BOOKS_DEPTH)
        if self.book is None:
            return []
        if new == self.book:
            if now_ms - self.books_pushed_ms < self.config.heartbeat_s * 1000:
                return []
            self.books_pushed_ms = now_ms
            return [self._books_frame("update", (), (), self.books_seq, now_ms, seq=self.books_seq)]
        prev_seq, old = self.books_seq, self.book
        self._advance_books(now_ms)
        asks = sorted(diff_levels(old.asks, new.asks), key=lambda lv: lv.px)
        bids = sorted(diff_levels(old.bids, new.bids), key=lambda lv: -lv.px)
        return [self._books_frame("update", asks, bids, prev_seq, now_ms)]

    def _books_frame(
        self, action: str, asks: Any, bids: Any, prev_seq: int, now_ms: int, *, seq: int | None = None
    ) -> Json:
        assert self.book is not None
        checksum = legacy_checksum(self.spec, self.book) if self.config.legacy_checksum else 0
        body = {
            "asks": book_levels(self.spec, asks),
            "bids": book_levels(self.spec, bids),
            "ts": str(now_ms),
            "checksum": checksum,
            "prevSeqId": prev_seq,
            "seqId": self.books_seq if seq is None else seq,
        }
        return {"arg": self._arg("books"), "action": action, "data": [body]}

    def _top_frame(self, channel: str, book: Book, now_ms: int) -> Json:
        body: Json = {"asks": book_levels(self.spec, book.asks), "bids": book_levels(self.spec, book.bids)}
        if channel == "books5":
            body["instId"] = self.spec.inst_id
        body["ts"] = str(now_ms)
        body["seqId"] = self._seq(now_ms, _BOOK_SLOT)
        return {"arg": self._arg(channel), "data": [body]}

    def _top_step(self, channel: str, depth: int, now_ms: int) -> list[Json]:
        """books5 / bbo-tbt: push when the levels changed; books5 also resends after ``heartbeat_s``."""
        book = self.inst.book_at(now_ms, depth)
        last, pushed_ms = self.tops.get(channel, (None, now_ms))
        stale = channel == "books5" and now_ms - pushed_ms >= self.config.heartbeat_s * 1000
        if book == last and not stale:
            return []
        self.tops[channel] = (book, now_ms)
        return [self._top_frame(channel, book, now_ms)]

    # -- candles --------------------------------------------------------------------------------------
    def _current(self, channel: str, now_ms: int) -> CandleRow | None:
        bar = bar_for(channel.removeprefix("candle"), hk_aligned=self.config.hk_aligned)
        if bar is None:
            return None
        open_ms = bar.open_of(now_ms)
        rows = list(candle_rows(self.inst.tape, bar, first_open=open_ms, last_open=open_ms, now_ms=now_ms))
        return rows[-1] if rows else None

    def _candle_frame(self, channel: str, row: CandleRow) -> Json:
        return {"arg": self._arg(channel), "data": [candle_wire(self.inst.tape, row)]}

    def _candle_initial(self, channel: str, now_ms: int) -> list[Json]:
        row = self._current(channel, now_ms)
        if row is None:
            return []
        self.candles.setdefault(channel, _CandleState(row.open_ms, row, now_ms))
        return [self._candle_frame(channel, row)]

    def _candle_step(self, channel: str, now_ms: int) -> list[Json]:
        state = self.candles.get(channel)
        if state is None or now_ms - state.pushed_ms < self.config.candle_push_ms:
            return []
        row = self._current(channel, now_ms)
        if row is None:
            return []
        out: list[Json] = []
        if row.open_ms != state.open_ms and state.row is not None and self.config.candle_confirm_push:
            bar = bar_for(channel.removeprefix("candle"), hk_aligned=self.config.hk_aligned)
            assert bar is not None
            closed = list(
                candle_rows(
                    self.inst.tape, bar, first_open=state.open_ms, last_open=state.open_ms, now_ms=now_ms
                )
            )
            out += [self._candle_frame(channel, r) for r in closed]
        if row != state.row:
            out.append(self._candle_frame(channel, row))
        state.open_ms, state.row, state.pushed_ms = row.open_ms, row, now_ms
        return out
