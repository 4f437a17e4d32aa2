"""The order book implied by the tape (pure, cached per instrument).

Invariants: the book at any instant is a function of the newest book fill (source "0") at or before it: a
buy fill leaves its price as the best ask, a sell fill as the best bid, with a 1-3 tick spread. Deeper levels
sit on a fixed per-price grid (a price level exists or not, whatever the time) and each level's size changes
every few fills. So the book moves only when trades happen (quiet spells give the 60 s heartbeats), and it
never contradicts the last non-ELP trade. ELP fills (source "1") are ignored, as OKX's public books do.
"""

from __future__ import annotations

import zlib
from typing import Final, NamedTuple

from okx_simulator.instruments import InstrumentSpec
from okx_simulator.rng import key_of, mix
from okx_simulator.tape import Fill

__all__ = ["Book", "BookModel", "Level", "crc32_checksum", "diff_levels", "legacy_checksum"]

_CACHE_LIMIT: Final = 50_000
_SCAN_FACTOR: Final = 3


class Level(NamedTuple):
    """A price level in ticks and lots."""

    px: int
    sz: int
    orders: int


class Book(NamedTuple):
    """Bids best (highest) first, asks best (lowest) first."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class BookModel:
    """Computes the book of one instrument for a given newest fill."""

    def __init__(self, *, spec: InstrumentSpec, seed: int) -> None:
        self.spec = spec
        self._base = mix(seed, key_of(spec.inst_id), 11)
        self._grid: dict[int, tuple[bool, int, int]] = {}
        self._sizes: dict[tuple[bool, int, int], tuple[int, int]] = {}
        self._memo: dict[int, tuple[Fill | None, Book]] = {}  # depth -> (newest fill, its book)

    def book(self, last: Fill | None, depth: int) -> Book:
        """The top ``depth`` levels per side after ``last`` (None: no trade yet, book around the start price)."""
        memo = self._memo.get(depth)
        if memo is not None and memo[0] == last:
            return memo[1]
        book = self._compute(last, depth)
        self._memo[depth] = (last, book)
        return book

    def _compute(self, last: Fill | None, depth: int) -> Book:
        if len(self._sizes) > _CACHE_LIMIT or len(self._grid) > _CACHE_LIMIT:
            self._sizes.clear()
            self._grid.clear()
        if last is None:
            version, bid1 = 0, self.spec.start_ticks
            ask1 = bid1 + 1
        else:
            version = last.trade_id
            spread = 1 + mix(self._base, last.trade_id) % 3
            bid1 = last.px - spread if last.buy else last.px
            ask1 = last.px if last.buy else last.px + spread
        bids = self._side(False, bid1, -1, depth, version)
        asks = self._side(True, ask1, 1, depth, version)
        return Book(bids, asks)

    def _side(self, ask: bool, best: int, step: int, depth: int, version: int) -> tuple[Level, ...]:
        out: list[Level] = []
        px = best
        limit = depth * _SCAN_FACTOR + 10
        while len(out) < depth and px >= 1 and limit > 0:
            present, offset, period = self._cell(px)
            if present or px == best:
                out.append(self._level(ask, px, (version + offset) // period, px == best))
            px += step
            limit -= 1
        return tuple(out)

    def _cell(self, px: int) -> tuple[bool, int, int]:
        cell = self._grid.get(px)
        if cell is None:
            h = mix(self._base, px)
            period = 1 + (h >> 8) % 6
            cell = (h % 5 != 0, (h >> 16) % period, period)
            self._grid[px] = cell
        return cell

    def _level(self, ask: bool, px: int, epoch: int, top: bool) -> Level:
        key = (ask, px, epoch)
        cached = self._sizes.get(key)
        if cached is None:
            h = mix(self._base, px, epoch, int(ask))
            unit_px = px * float(self.spec.tick_sz) * float(self.spec.lot_sz)
            notional = 40.0 * (1 + h % 60) * (1 + (h >> 20) % 7)
            lots = max(self.spec.min_lots, int(notional / unit_px))
            orders = 1 + (h >> 40) % 12
            cached = (lots * (3 if top else 1), orders)
            self._sizes[key] = cached
        return Level(px, cached[0], cached[1])


def diff_levels(old: tuple[Level, ...], new: tuple[Level, ...]) -> list[Level]:
    """Levels to send in an update turning ``old`` into ``new``: changed or new levels, and deletions (size 0)."""
    before = {lv.px: lv for lv in old}
    after = {lv.px: lv for lv in new}
    changes = [lv for lv in new if before.get(lv.px) != lv]
    changes.extend(Level(px, 0, 0) for px in before if px not in after)
    return changes


def legacy_checksum(spec: InstrumentSpec, book: Book) -> int:
    """OKX's pre-2026 checksum of ``book`` (API.md 1.6), from the wire text of its prices and sizes."""
    bids = [(spec.price(lv.px), spec.size(lv.sz)) for lv in book.bids[:25]]
    asks = [(spec.price(lv.px), spec.size(lv.sz)) for lv in book.asks[:25]]
    return crc32_checksum(bids, asks)


def crc32_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top 25 levels of raw strings."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value
