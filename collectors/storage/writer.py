"""The batched writer: records in, idempotent bulk writes out, nothing lost when the database is away.

Contract:

* ``put``/``put_many`` accept any record type with a table (:mod:`collectors.storage.tables`). Rows are
  flushed when ``max_batch_rows`` are pending or every ``flush_interval_s``, one batch per table, in
  arrival order.
* Memory is bounded by ``max_pending_rows``. While the database is healthy, a full buffer makes ``put`` wait
  (back-pressure). While it is unreachable, a full buffer is written to a spill file instead (if a
  ``spill_dir`` is configured; otherwise ``put`` waits), and the writer retries with capped, jittered backoff.
* Spill files are replayed oldest first once the database answers again, and at start-up, so a restart
  after a crash loses nothing. Every write is idempotent, so replaying a row twice adds nothing.
* A batch the database rejects for a non-transient reason (a value it cannot store) is bisected: every good
  row is written, each bad row goes to a dead-letter file with the error (or stays in ``dead_letters``
  without a spill dir) and is logged. No error is swallowed for a whole batch.
* ``stats()`` reports pending and spilled rows, the age of the oldest unwritten row (``lag_ms``) and health.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from collectors.backoff import backoff
from collectors.errors import StorageError
from collectors.storage.sinks import Sink, WriteResult
from collectors.storage.spill import SpillDir
from collectors.storage.tables import Row, TableSpec, encode_value, spec_for, spec_named

__all__ = ["BatchWriter", "WriterOptions", "WriterStats"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterOptions:
    max_batch_rows: int = 5_000
    flush_interval_s: float = 1.0
    max_pending_rows: int = 200_000
    spill_dir: Path | None = None
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    close_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_batch_rows < 1 or self.max_pending_rows < self.max_batch_rows:
            raise ValueError("need 1 <= max_batch_rows <= max_pending_rows")
        if self.flush_interval_s <= 0 or self.retry_initial_s <= 0 or self.retry_max_s < self.retry_initial_s:
            raise ValueError(
                "flush_interval_s and retry delays must be positive, retry_max_s >= retry_initial_s"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStats:
    pending_rows: int
    spilled_rows: int
    written_rows: int
    unchanged_rows: int
    dead_rows: int
    retries: int
    healthy: bool
    lag_ms: int
    last_error: str | None


class BatchWriter:
    """Async front of a :class:`~collectors.storage.sinks.Sink`; use as ``async with BatchWriter(...)``."""

    def __init__(
        self, sink: Sink, *, options: WriterOptions | None = None, clock: Callable[[], int] = wall_clock_ms
    ) -> None:
        self._sink = sink
        self._opts = options or WriterOptions()
        self._clock = clock
        self._spill = SpillDir(self._opts.spill_dir) if self._opts.spill_dir else None
        self._pending: dict[str, list[Row]] = defaultdict(list)
        self._pending_count = 0
        self._oldest_ms: int | None = None
        self._spilled_rows = 0
        self._spill_oldest_ms: int | None = None
        self._written = self._unchanged = self._dead = self._retries = 0
        self._healthy = True
        self._last_error: str | None = None
        self.dead_letters: list[tuple[str, Row, str]] = []
        self._space = asyncio.Condition()
        self._wake = asyncio.Event()
        self._io_lock = asyncio.Lock()
        self._delays: Iterator[float] = self._new_backoff()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-writer")

    # ------------------------------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> BatchWriter:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        if self._spill:
            files = self._spill.files()
            self._spilled_rows = sum(await self._in_thread(lambda: [SpillDir.count_rows(f) for f in files]))
            if files:
                self._spill_oldest_ms = self._clock()
                log.info("found %d spilled rows in %d files; replaying", self._spilled_rows, len(files))
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def aclose(self) -> None:
        """Write everything; if the database stays away for ``close_timeout_s``, spill (or raise)."""
        self._closing = True
        self._wake.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.drain(timeout_s=self._opts.close_timeout_s)
        except StorageError as exc:
            if self._spill is None:
                raise StorageError(
                    f"closing with {self._pending_count} rows unwritten and no spill_dir: {exc}",
                    transient=True,
                ) from exc
            await self._spill_pending()
            log.warning(
                "database unavailable at close; %d rows kept in %s", self._spilled_rows, self._spill.path
            )
        finally:
            await self._in_thread(self._sink.close)
            self._executor.shutdown(wait=False)

    # ------------------------------------------------------------------------------------------------ input

    async def put(self, record: object) -> None:
        self._check_running()
        spec = spec_for(record)
        await self._admit(1)
        self._append(spec, spec.to_row(record, self._clock()))

    async def put_many(self, records: Iterable[object]) -> None:
        """Queue many records; the hot path of bulk loads, so the per-record work is kept inline."""
        self._check_running()
        now = self._clock()
        self._touch_oldest(now)
        max_pending, max_batch = self._opts.max_pending_rows, self._opts.max_batch_rows
        specs: dict[type, TableSpec] = {}
        for record in records:
            spec = specs.get(type(record))
            if spec is None:
                spec = specs[type(record)] = spec_for(record)
            if self._pending_count >= max_pending:
                await self._admit(1)
                self._check_running()
                self._touch_oldest(self._clock())
            rows = self._pending[spec.table]
            rows.append(spec.to_row(record, now))
            self._pending_count += 1
            if len(rows) >= max_batch:
                self._wake.set()

    def _touch_oldest(self, now_ms: int) -> None:
        if self._oldest_ms is None:
            self._oldest_ms = now_ms

    def _append(self, spec: TableSpec, row: Row) -> None:
        rows = self._pending[spec.table]
        rows.append(row)
        self._pending_count += 1
        if self._oldest_ms is None:
            self._oldest_ms = self._clock()
        if len(rows) >= self._opts.max_batch_rows:
            self._wake.set()

    async def _admit(self, n: int) -> None:
        while self._pending_count + n > self._opts.max_pending_rows:
            if not self._healthy and self._spill is not None:
                try:
                    await self._spill_pending()
                    continue
                except StorageError:
                    pass  # the disk fails too: fall back to back-pressure

            self._wake.set()
            async with self._space:
                await self._space.wait()

    # -------------------------------------------------------------------------------------------- flushing

    async def flush(self) -> None:
        """Write every pending and spilled row now; raises :class:`StorageError` if the database fails."""
        async with self._io_lock:
            await self._replay_spill()
            for table in list(self._pending):
                while self._pending.get(table):
                    rows = self._pending[table]
                    batch = rows[: self._opts.max_batch_rows]
                    del rows[: len(batch)]
                    try:
                        await self._write(spec_named(table), batch)
                    except StorageError:
                        # back to the front, order kept (a spill may have replaced the pending lists meanwhile)
                        self._pending[table][:0] = batch
                        raise
                    self._pending_count -= len(batch)
                    async with self._space:
                        self._space.notify_all()
            if self._pending_count == 0:
                self._oldest_ms = None

    async def drain(self, *, timeout_s: float) -> None:
        """Flush until nothing is pending or spilled, retrying transient failures for up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                await self.flush()
                return
            except StorageError as exc:
                if not exc.transient or time.monotonic() >= deadline:
                    raise
                self._mark_unhealthy(exc)
                await asyncio.sleep(min(next(self._delays), max(0.0, deadline - time.monotonic())))

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation racing its timeout
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._opts.flush_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            try:
                await self.flush()
            except StorageError as exc:
                self._mark_unhealthy(exc)
                await asyncio.sleep(next(self._delays))

    def _check_running(self) -> None:
        """Raise if the flush task died: accepting rows nobody will write would lose them silently."""
        if self._task is None or self._closing:
            raise StorageError("the writer is not running (use 'async with' or start())", transient=False)
        if self._task.done():
            cause = self._task.exception() if not self._task.cancelled() else None
            raise StorageError(f"the writer's flush task stopped: {cause!r}", transient=False) from cause

    async def _write(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        try:
            result = await self._in_thread(self._sink.write, spec, rows)
        except StorageError as exc:
            if not exc.bad_data:
                raise
            await self._isolate(spec, rows, exc)
            return
        self._account(result)

    async def _in_thread(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run sink and file work on the writer's one thread (DB connections are not shared across threads)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _account(self, result: WriteResult) -> None:
        self._written += result.written
        self._unchanged += result.unchanged
        if not self._healthy:
            log.info("database writes succeed again after %d retries", self._retries)
        self._healthy = True
        self._delays = self._new_backoff()

    async def _isolate(self, spec: TableSpec, rows: Sequence[Row], exc: StorageError) -> None:
        """Bisect a rejected batch: write the good rows, dead-letter each bad one with its error."""
        if len(rows) == 1:
            self._dead_letter(spec, rows[0], str(exc))
            return
        middle = len(rows) // 2
        for half in (rows[:middle], rows[middle:]):
            try:
                self._account(await self._in_thread(self._sink.write, spec, half))
            except StorageError as inner:
                if not inner.bad_data:
                    raise
                await self._isolate(spec, half, inner)

    def _dead_letter(self, spec: TableSpec, row: Row, error: str) -> None:
        self._dead += 1
        log.error("row rejected by %s and dead-lettered: %s; row=%r", spec.table, error, row)
        if self._spill is None:
            self.dead_letters.append((spec.table, row, error))
            return
        dead = self._spill.path / "dead-letters.jsonl"
        with dead.open("a", encoding="utf-8") as out:
            out.write(
                json.dumps({"t": spec.table, "r": [encode_value(v) for v in row], "error": error}) + "\n"
            )

    def _mark_unhealthy(self, exc: StorageError) -> None:
        if self._healthy:
            log.warning("database write failed, retrying with backoff: %s", exc)
        self._healthy = False
        self._retries += 1
        self._last_error = str(exc)

    # ---------------------------------------------------------------------------------------------- spill

    async def _spill_pending(self) -> None:
        assert self._spill is not None
        # Detach the pending rows before any await: the file is written on another thread, and the flush task
        # may put a failed batch back into the pending lists meanwhile.
        batches = [(spec_named(t), rows) for t, rows in self._pending.items() if rows]
        if not batches:
            return
        oldest = self._oldest_ms
        self._pending = defaultdict(list)
        self._oldest_ms = None
        try:
            path, count = await self._in_thread(self._spill.write, batches)
        except OSError as exc:
            for spec, rows in reversed(batches):  # keep them in memory; put() keeps waiting
                self._pending[spec.table][:0] = rows
            self._oldest_ms = oldest
            log.error("cannot write spill file in %s: %s", self._spill.path, exc)
            raise StorageError(f"cannot spill to {self._spill.path}: {exc}", transient=True) from exc
        log.warning("database unavailable: spilled %d rows to %s", count, path)
        self._pending_count -= count
        self._spilled_rows += count
        if self._spill_oldest_ms is None:
            self._spill_oldest_ms = oldest
        async with self._space:
            self._space.notify_all()

    async def _replay_spill(self) -> None:
        if self._spill is None:
            return
        for path in self._spill.files():
            batch: dict[str, list[Row]] = defaultdict(list)
            rows = await self._in_thread(_read_all, path)
            for spec, row in rows:
                batch[spec.table].append(row)
            for table, table_rows in batch.items():
                for start in range(0, len(table_rows), self._opts.max_batch_rows):
                    await self._write(
                        spec_named(table), table_rows[start : start + self._opts.max_batch_rows]
                    )
            await self._in_thread(path.unlink)
            self._spilled_rows -= len(rows)
            log.info("replayed %d spilled rows from %s", len(rows), path)
        self._spilled_rows = max(self._spilled_rows, 0)
        self._spill_oldest_ms = None

    # ---------------------------------------------------------------------------------------------- stats

    def stats(self) -> WriterStats:
        now = self._clock()
        oldest = min((t for t in (self._oldest_ms, self._spill_oldest_ms) if t is not None), default=None)
        return WriterStats(
            pending_rows=self._pending_count,
            spilled_rows=self._spilled_rows,
            written_rows=self._written,
            unchanged_rows=self._unchanged,
            dead_rows=self._dead,
            retries=self._retries,
            healthy=self._healthy,
            lag_ms=0 if oldest is None else max(0, now - oldest),
            last_error=self._last_error,
        )

    def _new_backoff(self) -> Iterator[float]:
        return backoff(initial_s=self._opts.retry_initial_s, max_s=self._opts.retry_max_s)


def _read_all(path: Path) -> list[tuple[TableSpec, Row]]:
    return list(SpillDir.read(path))
