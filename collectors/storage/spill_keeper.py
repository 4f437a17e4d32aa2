"""The batched writer's side of its spill dir: the rows waiting there, and spilling and replaying them.

:class:`SpillKeeper` counts the rows in spill files (``spilled_rows``) and when the oldest was spilled (for
``lag_ms``), moves every pending row to a new file (dead-lettering the rows the value verdict refuses), and
replays the files oldest first through the writer's batch writes: a file is deleted once replayed, an
unreadable one is moved aside as ``.bad`` (its rows count as dead). File work runs on the writer's thread;
a step that changes the files is waited for even if the caller is cancelled meanwhile, and accounted before
the cancellation goes on, so the counts always match the files and no row is lost or counted twice. The I/O
lock (writes and spills never overlap) and when to spill stay with :class:`~collectors.storage.writer.BatchWriter`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from collectors.errors import StorageError
from collectors.storage.dead_letters import DeadLetters
from collectors.storage.pending import PendingRows
from collectors.storage.spill import SpillDir
from collectors.storage.tables import Row, TableSpec, spec_named
from collectors.storage.values import split_refused
from collectors.storage.writer_thread import WriterThread

__all__ = ["Batches", "Refused", "SpillKeeper", "split_for_spill"]

log = logging.getLogger(__name__)

Batches = list[tuple[TableSpec, list[Row]]]
Refused = list[tuple[TableSpec, Row, str]]


def split_for_spill(taken: Sequence[tuple[TableSpec, list[Row], int]]) -> tuple[Batches, Refused]:
    """Set apart the rows the value verdict refuses (a spill file's JSON would turn a float or a str price into
    a Decimal on replay); ``taken`` is ``(spec, rows, oldest_ms)`` per table. Returns the good rows per table
    (one entry per entry of ``taken``, in order) and the refused rows with their error."""
    batches: Batches = []
    refused: Refused = []
    for spec, rows, _ in taken:
        good, bad = split_refused(spec, rows)
        batches.append((spec, good))
        refused.extend((spec, row, f"spilling {spec.table}: {reason}") for row, reason in bad)
    return batches, refused


class SpillKeeper:
    def __init__(self, spill: SpillDir, thread: WriterThread, letters: DeadLetters) -> None:
        self._dir = spill
        self._thread = thread
        self._letters = letters
        self.rows = 0  # rows in spill files, not replayed yet
        self.oldest_ms: int | None = None  # when the oldest of them was spilled

    @property
    def path(self) -> Path:
        return self._dir.path

    def files(self) -> list[Path]:
        return self._dir.files()

    async def recover(self) -> None:
        """At start: turn ``.partial`` files a crash left into spill files and count the rows to replay."""
        for path in await self._thread.run(self._dir.recover_partials):
            log.warning("recovered a spill file a crash left half-written: %s", path)
        files = self._dir.files()
        if files:
            counts = await self._thread.run(lambda: [SpillDir.count_rows(f) for f in files])
            self.rows = sum(counts)
            self.oldest_ms = min(int(f.stat().st_mtime * 1000) for f in files)
            log.info("found %d spilled rows in %d files; replaying", self.rows, len(files))

    async def spill_pending(self, pending: PendingRows) -> tuple[int, bool]:
        """Move every pending row to a new spill file (the caller holds the writer's I/O lock).

        Rows the value verdict refuses are dead-lettered instead (see :func:`split_for_spill`). Returns how many
        rows left memory, by the file or as dead letters (``pending.count`` is reduced by as many), and whether
        a cancellation came meanwhile. If the file cannot be written, the other rows go back into ``pending``
        and the error propagates (see :meth:`spill`).
        """
        taken = [(spec_named(name), rows, oldest) for name, rows, oldest in pending.take_all()]
        if not taken:
            return 0, False
        batches, refused = split_for_spill(taken)
        try:
            count, cancelled = await self.spill(batches, refused, min(t for _, _, t in taken))
        except BaseException:
            for (spec, good), (_, _, oldest) in zip(batches, taken, strict=True):
                pending.put_back(spec.table, good, oldest)
            pending.count -= len(refused)  # dead-lettered before the file was written
            raise
        pending.count -= count + len(refused)
        return count + len(refused), cancelled

    async def replay(
        self,
        write: Callable[[TableSpec, list[Row]], Awaitable[None]],
        *,
        batch_rows: int,
        on_unreadable: Callable[[str], None],
    ) -> None:
        """Write every spill file through ``write``, oldest first, in batches of at most ``batch_rows`` per table
        (the caller holds the writer's I/O lock); a file is deleted once all its rows are written.

        An unreadable file is moved aside (its rows count as dead; ``on_unreadable`` gets the error to report)
        and never blocks the others. An error of ``write`` propagates and leaves its file for the next replay
        (the sinks are idempotent). A cancellation during a file step is re-raised once the step is done and
        accounted (``rows`` stays exact).
        """
        for path in self.files():
            try:
                batches = await self.read(path, batch_rows)
            except (ValueError, OSError) as exc:
                error, cancelled = await self.quarantine(path, exc)
                on_unreadable(error)
            else:
                for spec, rows in batches:
                    await write(spec, rows)
                cancelled = await self.replayed(path, sum(len(rows) for _, rows in batches))
            if cancelled:
                raise asyncio.CancelledError
        self.replay_done()

    async def spill(self, batches: Batches, refused: Refused, oldest_ms: int) -> tuple[int, bool]:
        """Dead-letter ``refused``, then write ``batches`` (rows that arrived from ``oldest_ms`` on) to a new file.

        Returns how many rows the file holds and whether a cancellation came meanwhile. If the file cannot be
        written, raises a transient :class:`StorageError` (anything else propagates as is); the caller then keeps
        the rows of ``batches`` in memory (the refused ones are dead-lettered already).
        """
        try:
            (path, count), cancelled = await self._thread.run_to_the_end(self._write_file, batches, refused)
        except OSError as exc:
            log.error("cannot write a spill file in %s: %s", self.path, exc)
            raise StorageError(f"cannot spill to {self.path}: {exc}", transient=True) from exc
        if count:
            self.oldest_ms = oldest_ms if self.oldest_ms is None else min(self.oldest_ms, oldest_ms)
            self.rows += count
            log.info("database unavailable: spilled %d rows to %s", count, path)
        return count, cancelled

    def _write_file(self, batches: Batches, refused: Refused) -> tuple[Path | None, int]:
        """On the writer's thread: dead-letter the refused rows, then write the others to a new spill file."""
        for spec, row, error in refused:
            self._letters.add(spec, row, error)
        if not any(rows for _, rows in batches):
            return None, 0
        return self._dir.write(batches)

    async def read(self, path: Path, batch_rows: int) -> Batches:
        """The rows of one file as batches of at most ``batch_rows`` per table; raises ``ValueError`` for a line
        that does not decode and ``OSError`` for a file that cannot be read."""
        return await self._thread.run(_read_batches, path, batch_rows)

    async def replayed(self, path: Path, rows: int) -> bool:
        """Delete a file whose ``rows`` were all written; returns whether a cancellation came meanwhile."""
        _, cancelled = await self._thread.run_to_the_end(path.unlink)
        self.rows = max(0, self.rows - rows)
        log.info("replayed %d spilled rows from %s", rows, path)
        return cancelled

    async def quarantine(self, path: Path, exc: Exception) -> tuple[str, bool]:
        """Move an unreadable file aside; its rows are NOT replayed and count as dead. Returns the error to
        report and whether a cancellation came meanwhile."""
        (bad, lost), cancelled = await self._thread.run_to_the_end(self._set_aside, path)
        self.rows = max(0, self.rows - lost)
        self._letters.set_aside(lost)  # kept aside in the .bad file, not written
        log.error("unreadable spill file moved to %s, its %d rows are NOT replayed: %s", bad, lost, exc)
        return f"unreadable spill file {bad}: {exc}", cancelled

    def _set_aside(self, path: Path) -> tuple[Path, int]:
        bad = self._dir.quarantine(path)
        return bad, SpillDir.count_rows(bad)

    def replay_done(self) -> None:
        """After a replay: once no file is left, spilled rows no longer age ``lag_ms``."""
        if not self._dir.files():
            self.oldest_ms = None


def _read_batches(path: Path, batch_rows: int) -> Batches:
    by_table: dict[str, list[Row]] = {}
    for spec, row in SpillDir.read(path):
        by_table.setdefault(spec.table, []).append(row)
    return [
        (spec_named(name), rows[start : start + batch_rows])
        for name, rows in by_table.items()
        for start in range(0, len(rows), batch_rows)
    ]
