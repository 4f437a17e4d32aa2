"""Batches through a :class:`~collectors.storage.sinks.Sink` on the writer's thread, counted and bisected.

:meth:`BatchSink.write` writes one batch in one sink call (one transaction). A batch the sink (or
:mod:`collectors.storage.values`) refuses because of some row's values (``StorageError.bad_data``) is
bisected: every good row is written and each bad row is dead-lettered with its error. Any other error
propagates untouched: retrying is the writer's job, not this one's.

``written``/``unchanged`` count what the database reported. A sink call whose caller is cancelled is not
waited for (the cancellation goes on at once), but it is counted when it ends: the database may commit it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from collectors.errors import StorageError
from collectors.storage.dead_letters import DeadLetters
from collectors.storage.sinks import Sink, WriteResult
from collectors.storage.tables import Row, TableSpec
from collectors.storage.writer_thread import WriterThread

__all__ = ["BatchSink"]


class BatchSink:
    def __init__(
        self, sink: Sink, thread: WriterThread, letters: DeadLetters, *, on_success: Callable[[], None]
    ) -> None:
        """``on_success`` is called after every sink call that succeeded (the database answers)."""
        self._sink = sink
        self._thread = thread
        self._letters = letters
        self._on_success = on_success
        self.written = self.unchanged = 0

    async def write(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        """Write ``rows`` of ``spec``'s table; raises the sink's :class:`StorageError` unless it is bad data."""
        try:
            await self._write_once(spec, rows)
        except StorageError as exc:
            if not exc.bad_data:
                raise
            await self._isolate(spec, rows, exc)

    async def _isolate(self, spec: TableSpec, rows: Sequence[Row], exc: StorageError) -> None:
        """Bisect a rejected batch: write the good rows, dead-letter each bad one with its error."""
        if len(rows) == 1:
            await self._thread.run(self._letters.add, spec, rows[0], str(exc))
            return
        middle = len(rows) // 2
        for half in (rows[:middle], rows[middle:]):
            try:
                await self._write_once(spec, half)
            except StorageError as inner:
                if not inner.bad_data:
                    raise
                await self._isolate(spec, half, inner)

    async def _write_once(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        work = self._thread.submit(self._sink.write, spec, rows)
        try:
            result = await asyncio.shield(work)  # a cancellation leaves the sink call to end on its own
        except asyncio.CancelledError:
            work.add_done_callback(self._count_late)
            raise
        self._count(result)
        self._on_success()

    def _count(self, result: WriteResult) -> None:
        self.written += result.written
        self.unchanged += result.unchanged

    def _count_late(self, work: asyncio.Future[WriteResult]) -> None:
        """A sink call that ended after its caller was cancelled: count what it wrote (health is left as is)."""
        if not work.cancelled() and work.exception() is None:
            self._count(work.result())
