"""Pure order-book state for OKX's full-depth ``books`` channel (shared/okx/API.md 1.6).

Invariants:

* A book exists only after a ``snapshot``; an ``update`` before one is a :class:`BookIntegrityError`.
* Merge: a level with size "0" deletes its price, any other size replaces (or inserts) the level. Bids are
  kept descending, asks ascending. Levels are keyed by price value, and each keeps OKX's raw strings.
* Continuity: every update's ``prevSeqId`` equals the previous frame's ``seqId``. ``seqId == prevSeqId`` (a
  heartbeat, empty lists) and ``seqId < prevSeqId`` (a reset after maintenance) are accepted; any other
  ``prevSeqId`` is a gap: :class:`BookIntegrityError`, and the collector resubscribes for a fresh snapshot.
  Frames without seqIds (2022 recordings) are checked by checksum only.
* Checksum: when a frame's ``checksum`` is not 0 (OKX sends 0 since 2026), the signed CRC32 of
  ``bid1px:bid1sz:ask1px:ask1sz:...`` over the first 25 levels of each side (raw strings; a shorter side's
  missing entries are skipped) must equal it, else :class:`BookIntegrityError`.

After an error the book is unusable (``apply`` raises until the next snapshot): never patched.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from decimal import Decimal
from typing import Final

from collectors.errors import BookIntegrityError
from collectors.exchanges.okx.events import BooksPush
from collectors.exchanges.okx.messages import OkxBookLevel
from collectors.model import BookLevel, BookSnapshot
from collectors.validation import check_book_snapshot

__all__ = ["CHECKSUM_DEPTH", "OrderBook", "okx_checksum"]

CHECKSUM_DEPTH: Final = 25


def okx_checksum(bids: list[OkxBookLevel], asks: list[OkxBookLevel]) -> int:
    """OKX's legacy book checksum over the best 25 levels of each side (signed 32-bit CRC32)."""
    parts: list[str] = []
    for i in range(CHECKSUM_DEPTH):
        if i < len(bids):
            parts += (bids[i].px, bids[i].sz)
        if i < len(asks):
            parts += (asks[i].px, asks[i].sz)
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class _Side:
    """One side of the book: price -> raw level, plus sorted keys (negated prices for bids)."""

    __slots__ = ("_keys", "_levels", "_sign")

    def __init__(self, *, descending: bool) -> None:
        self._sign = -1 if descending else 1
        self._levels: dict[Decimal, OkxBookLevel] = {}
        self._keys: list[Decimal] = []

    def replace_all(self, levels: tuple[OkxBookLevel, ...]) -> None:
        self._levels.clear()
        self._keys.clear()
        self.merge(levels)

    def merge(self, levels: tuple[OkxBookLevel, ...]) -> None:
        for level in levels:
            price = Decimal(level.px)
            key = price * self._sign
            if Decimal(level.sz) == 0:
                if self._levels.pop(price, None) is not None:
                    del self._keys[bisect_left(self._keys, key)]
                continue
            if price not in self._levels:
                insort(self._keys, key)
            self._levels[price] = level

    def top(self, depth: int) -> list[OkxBookLevel]:
        return [self._levels[key * self._sign] for key in self._keys[:depth]]

    def __len__(self) -> int:
        return len(self._keys)


class OrderBook:
    """The full-depth book of one instrument, fed with ``books`` pushes in arrival order."""

    def __init__(self, *, inst_id: str, exchange: str = "okx") -> None:
        self.inst_id = inst_id
        self.exchange = exchange
        self._bids = _Side(descending=True)
        self._asks = _Side(descending=False)
        self._ready = False
        self.seq_id: int | None = None
        self.ts_ms: int | None = None

    @property
    def ready(self) -> bool:
        """Whether the book holds a snapshot and every frame since has been consistent."""
        return self._ready

    def apply(self, push: BooksPush) -> None:
        """Apply one ``books`` push; raises :class:`BookIntegrityError` on a gap, a bad checksum, an update
        before a snapshot, or any frame after an earlier error (until the next snapshot)."""
        if push.channel != "books" or push.inst_id != self.inst_id or push.action is None:
            raise ValueError(f"not a books push for {self.inst_id}: {push.channel} {push.inst_id}")
        if push.action == "snapshot":
            self._bids.replace_all(push.bids)
            self._asks.replace_all(push.asks)
            self._ready = True
        else:
            self._check_sequence(push)
            self._bids.merge(push.bids)
            self._asks.merge(push.asks)
        self.seq_id, self.ts_ms = push.seq_id, push.ts_ms
        if push.checksum:
            self._check_checksum(push.checksum)

    def _check_sequence(self, push: BooksPush) -> None:
        if not self._ready:
            raise BookIntegrityError(f"{self.inst_id}: books update before a snapshot (or after an error)")
        if push.prev_seq_id is None or self.seq_id is None:
            return
        if push.prev_seq_id != self.seq_id:
            self._ready = False
            raise BookIntegrityError(
                f"{self.inst_id}: books gap, prevSeqId {push.prev_seq_id} after seqId {self.seq_id}"
            )

    def _check_checksum(self, expected: int) -> None:
        got = okx_checksum(self._bids.top(CHECKSUM_DEPTH), self._asks.top(CHECKSUM_DEPTH))
        if got != expected:
            self._ready = False
            raise BookIntegrityError(f"{self.inst_id}: books checksum {got} != OKX's {expected}")

    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels held."""
        return len(self._bids), len(self._asks)

    def top(self, depth: int) -> tuple[list[OkxBookLevel], list[OkxBookLevel]]:
        """The best ``depth`` (bids, asks) with OKX's raw strings, best first."""
        return self._bids.top(depth), self._asks.top(depth)

    def snapshot(self, *, depth: int, recv_ms: int | None = None) -> BookSnapshot:
        """The top ``depth`` levels as a validated :class:`BookSnapshot`; ValueError before a snapshot."""
        if not self._ready or self.ts_ms is None:
            raise ValueError(f"{self.inst_id}: no consistent book to snapshot")
        bids, asks = self.top(depth)
        return check_book_snapshot(
            BookSnapshot(
                exchange=self.exchange,
                inst_id=self.inst_id,
                ts_ms=self.ts_ms,
                bids=tuple(_model(level) for level in bids),
                asks=tuple(_model(level) for level in asks),
                seq_id=self.seq_id,
                recv_ms=recv_ms,
            )
        )


def _model(level: OkxBookLevel) -> BookLevel:
    return BookLevel(price=Decimal(level.px), size=Decimal(level.sz), orders=int(level.orders))
