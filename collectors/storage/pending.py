"""Rows waiting to be written, per table, with their arrival times (for an exact ``lag_ms``).

Pure bookkeeping on the event loop thread: no I/O, no clock reads (times are passed in). Arrival times are
kept as runs ``[end_index, ms]`` (one per call that added rows at a new millisecond), not per row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from collectors.storage.tables import Row

__all__ = ["PendingRows", "PendingTable"]


class PendingTable:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self._taken = 0  # absolute index of rows[0] since this table's queue began
        self._runs: deque[list[int]] = deque()  # [absolute end index (exclusive), arrival ms], ascending

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: Row, now_ms: int) -> None:
        self.rows.append(row)
        end = self._taken + len(self.rows)
        if self._runs and self._runs[-1][1] == now_ms:
            self._runs[-1][0] = end
        else:
            self._runs.append([end, now_ms])

    def extend(self, rows: list[Row], now_ms: int) -> None:
        """:meth:`append` of many rows that arrived at the same instant (one bookkeeping step for all)."""
        if not rows:
            return
        self.rows.extend(rows)
        end = self._taken + len(self.rows)
        if self._runs and self._runs[-1][1] == now_ms:
            self._runs[-1][0] = end
        else:
            self._runs.append([end, now_ms])

    def oldest_ms(self) -> int | None:
        return self._runs[0][1] if self.rows else None

    def take(self, n: int) -> tuple[list[Row], int]:
        """Remove and return the first ``n`` rows and the arrival time of the oldest of them."""
        oldest = self._runs[0][1]
        batch = self.rows[:n]
        del self.rows[: len(batch)]
        self._taken += len(batch)
        while self._runs and self._runs[0][0] <= self._taken:
            self._runs.popleft()
        return batch, oldest

    def put_back(self, batch: list[Row], oldest_ms: int) -> None:
        """Undo :meth:`take`: the rows return to the front, stamped with the batch's oldest arrival time."""
        if not batch:
            return
        self.rows[:0] = batch
        self._taken -= len(batch)
        self._runs.appendleft([self._taken + len(batch), oldest_ms])


class PendingRows:
    """Every table's pending rows, and ``count``: the rows the writer holds in memory.

    ``count`` is moved by the writer, not by the tables: it includes rows staged by a ``put_many`` still
    running and rows taken for a write that has not ended (they are not stored yet; a failed write puts them
    back), so it can exceed the rows the tables hold.
    """

    def __init__(self, order: Iterable[str] = ()) -> None:
        """``order``: tables listed here come first in :attr:`tables` (the order a flush writes them in)."""
        self.tables: dict[str, PendingTable] = {name: PendingTable() for name in order}
        self.count = 0

    def add(self, table: str, rows: list[Row], now_ms: int) -> int:
        """Queue ``rows`` (already counted) that arrived at ``now_ms``; returns the table's pending length."""
        pending = self.tables.get(table)
        if pending is None:
            pending = self.tables[table] = PendingTable()
        pending.extend(rows, now_ms)
        return len(pending)

    def take_all(self) -> list[tuple[str, list[Row], int]]:
        """Remove every pending row: ``(table, rows, oldest arrival ms)`` per table that has any (still counted)."""
        return [(name, *table.take(len(table))) for name, table in self.tables.items() if table.rows]

    def put_back(self, table: str, rows: list[Row], oldest_ms: int) -> None:
        self.tables[table].put_back(rows, oldest_ms)

    def oldest_ms(self) -> int | None:
        """Arrival time of the oldest row still in a table (``None`` when they are empty)."""
        times = [t for t in map(PendingTable.oldest_ms, self.tables.values()) if t is not None]
        return min(times, default=None)
