"""The batched writer: records in, idempotent bulk writes out, nothing lost when the database is away.

Contract:

* ``put``/``put_many`` accept any record type with a table (:mod:`collectors.storage.tables`). Rows are
  flushed when ``max_batch_rows`` are pending or every ``flush_interval_s``, one batch per table, in
  arrival order, the tables in the order of ``tables.SPECS`` (trades first). A record whose row cannot be built (an enum field holding a plain string) raises
  ``TypeError`` naming the field at ``put`` (a caller's misuse; earlier records of the call are queued).
* Memory is bounded by ``max_pending_rows``. While the database is healthy, a full buffer makes ``put`` wait
  (back-pressure). While it is unreachable, pending rows go to a spill file at every flush interval (and
  whenever a batch fills up), if a ``spill_dir`` is configured; otherwise ``put`` waits once memory is full.
  Writes are retried with capped, jittered backoff.
* Crashes: a kill -9 during an outage loses at most the rows accepted since the last spill, i.e. one flush
  interval (plus the length of a connection attempt still hanging at that moment). Spill files are
  replayed oldest first once the database answers again, and at start-up. Every write is idempotent, and an
  older state never replaces a newer one (``updated_at``), so replaying a row twice or late changes nothing.
* A batch the database (or :mod:`collectors.storage.values`) refuses because of some row's values is bisected:
  every good row is written, each bad row goes to a dead-letter file with the error (or stays in
  ``dead_letters`` without a spill dir) and is logged. No error is swallowed for a whole batch.
* Order: writes and spills never overlap (one I/O lock), so spill files always hold older states than memory
  and are replayed first; the last state of a candle is the one that ends up stored.
* Failure: a transient error is retried; a non-transient one (no schema, no permission) or an unexpected
  exception (a bug) is not: the writer spills what is pending, reports ``failed`` in ``stats()``, and
  ``put``/``flush``/``aclose`` raise :class:`~collectors.errors.StorageError`. Cancellation puts an in-flight
  batch back (if the database still commits it, it is counted then). ``aclose()`` never drops pending rows:
  whatever the error, they are spilled first.
* ``stats()`` reports pending and spilled rows, the age of the oldest unwritten row (``lag_ms``) and health.

Parts: :mod:`~collectors.storage.writer_options` (options and stats, re-exported here; the clock),
:mod:`~collectors.storage.writer_thread`, :mod:`~collectors.storage.pending` (rows in memory and their count),
:mod:`~collectors.storage.batch_sink` (writes and bisection), :mod:`~collectors.storage.dead_letters`,
:mod:`~collectors.storage.spill_keeper` (spilling pending rows, replaying spill files).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, repeat
from operator import is_
from types import TracebackType
from typing import Final

from collectors.backoff import backoff
from collectors.errors import StorageError
from collectors.storage.batch_sink import BatchSink
from collectors.storage.dead_letters import DeadLetters
from collectors.storage.pending import PendingRows
from collectors.storage.sinks import Sink
from collectors.storage.spill import SpillDir
from collectors.storage.spill_keeper import SpillKeeper
from collectors.storage.tables import SPECS, Row, TableSpec, row_error, spec_for, spec_named
from collectors.storage.writer_options import ForwardClock, WriterOptions, WriterStats, wall_clock_ms
from collectors.storage.writer_thread import WriterThread

__all__ = ["BatchWriter", "WriterOptions", "WriterStats"]

log = logging.getLogger(__name__)


_BULK_TYPES: Final = 8  # a list of at most this many record types is split by type in C (see _bulk_rows)


def _bulk_rows(
    records: list[object], now: int
) -> list[tuple[TableSpec, Callable[[object, int], Row], list[Row]]] | None:
    """The bulk case of ``put_many`` (a list with room for all): each type's records taken out in order by
    C-level ``compress`` over the list of types, and its rows built by one C-level ``map``: no Python loop per
    record. ``None`` when a record has no table or a row cannot be built (the caller's loop then finds the
    culprit, queues the records before it and raises) or when the list mixes too many types."""
    types = list(map(type, records))
    distinct = list(dict.fromkeys(types))
    if len(distinct) > _BULK_TYPES:
        return None
    built = []
    try:
        for kind in distinct:
            spec = SPECS[kind]
            same = records if len(distinct) == 1 else list(compress(records, map(is_, types, repeat(kind))))
            built.append((spec, spec.to_row, list(map(spec.to_row, same, repeat(now)))))
    except (KeyError, AttributeError, TypeError, ValueError):
        return None
    return built


class BatchWriter:
    """Async front of a :class:`~collectors.storage.sinks.Sink`; use as ``async with BatchWriter(...)``."""

    def __init__(
        self, sink: Sink, *, options: WriterOptions | None = None, clock: Callable[[], int] = wall_clock_ms
    ) -> None:
        self._sink = sink
        self._opts = options or WriterOptions()
        self._clock = clock
        self._now = ForwardClock(clock).now  # rows' arrival and updated_at: never backwards within a writer
        self._thread = WriterThread()  # sink and file work, in order, on one thread
        self._letters = DeadLetters(self._opts.spill_dir)
        self._spill = (
            SpillKeeper(SpillDir(self._opts.spill_dir), self._thread, self._letters)
            if self._opts.spill_dir
            else None
        )
        self._batches = BatchSink(sink, self._thread, self._letters, on_success=self._healthy_again)
        # its count: rows held in memory, staged or in flight included. A flush writes the tables in the order
        # of SPECS (trades first, the archives late): a trade's commit does not wait for the raw archive's
        self._pending = PendingRows(order=(spec.table for spec in SPECS.values()))
        self._retries = 0
        self._healthy = True
        self._last_error: str | None = None
        self._failure: BaseException | None = None
        # (table, row, error) of dead letters not in a file (no spill dir, or the file cannot be written)
        self.dead_letters: list[tuple[str, Row, str]] = self._letters.entries
        self._space = asyncio.Condition()
        self._wake = asyncio.Event()  # "a batch is full": flush now
        self._stop = asyncio.Event()  # closing: interrupts waits and backoff
        self._io_lock = asyncio.Lock()  # writes and spills never overlap
        self._delays: Iterator[float] = self._new_backoff()
        self._task: asyncio.Task[None] | None = None
        self._closing = self._closed = False

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
            await self._spill.recover()
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def aclose(self) -> None:
        """Write everything; if the database stays away for ``close_timeout_s``, spill (or raise).

        Whatever goes wrong (the database, a bug, cancellation), rows still pending are spilled before the
        error propagates; without a spill dir the error says how many rows could not be kept. Raises
        :class:`StorageError` if the writer had failed (after keeping its rows).
        """
        if self._closed:
            return
        self._closing = True
        self._stop.set()
        self._wake.set()
        unwritten: BaseException | None = None
        try:
            if self._task is not None:
                with contextlib.suppress(Exception):  # a failure is in self._failure, already logged
                    await self._task  # it finishes its current flush (bounded by the sink's timeouts)
                self._task = None
            if self._failure is None:
                await self.drain(timeout_s=self._opts.close_timeout_s)
        except StorageError as exc:  # the database stayed away
            unwritten = exc
        finally:
            try:
                await self._keep_unwritten(unwritten or self._failure)
            finally:
                self._closed = True
                await self._thread.run(self._sink.close)
                self._thread.shutdown()
        if self._failure is not None:
            raise StorageError(f"the writer failed: {self._last_error}", transient=False) from self._failure

    async def _keep_unwritten(self, cause: BaseException | None) -> None:
        """Rows still in memory go to the spill directory; the close names every row it leaves there, also
        those an outage spilled before it (an operator reads this line to know a replay is due)."""
        if self._pending.count:
            if self._spill is None:
                raise StorageError(
                    f"closing with {self._pending.count} rows unwritten and no spill_dir: {cause}",
                    transient=True,
                ) from cause
            await self._spill_pending()
        if self._spill is not None and self._spill.rows:
            log.warning(
                "closing without the database; %d rows kept in %s", self._spill.rows, self._spill.path
            )

    # ------------------------------------------------------------------------------------------------ input

    async def put(self, record: object) -> None:
        await self.put_many((record,))

    async def put_many(self, records: Iterable[object]) -> None:
        """Queue records (any mix of types); the hot path of bulk loads, so per-record work is kept inline.

        Rows of this call are staged in plain lists and moved into their pending tables (one bookkeeping step
        per table) before anything is awaited and when the call ends, also on error: nothing else runs on the
        loop in between, so the flush task and ``stats()`` never see the difference.
        """
        self._check_running()
        max_pending = self._opts.max_pending_rows
        staged: dict[type, tuple[TableSpec, Callable[[object, int], Row], list[Row]]] = {}
        now = self._now()
        if type(records) is list and records and self._pending.count + len(records) <= max_pending:
            built = _bulk_rows(records, now)
            if built is not None:
                self._pending.count += len(records)
                self._enqueue(built, now)
                return
        try:
            for record in records:
                target = staged.get(type(record))
                if target is None:
                    spec = spec_for(record)
                    target = staged[type(record)] = (spec, spec.to_row, [])
                if self._pending.count >= max_pending:
                    self._enqueue(staged.values(), now)
                    await self._admit()
                    now = self._now()
                try:
                    row = target[1](record, now)
                except (AttributeError, TypeError, ValueError) as exc:  # a record not built as its type says
                    raise row_error(record, exc) from exc
                target[2].append(row)
                self._pending.count += 1
        finally:
            self._enqueue(staged.values(), now)

    def _enqueue(
        self, staged: Iterable[tuple[TableSpec, Callable[[object, int], Row], list[Row]]], now: int
    ) -> None:
        """Move staged rows (already counted in the pending count) into their pending tables."""
        for spec, _, rows in staged:
            if not rows:
                continue
            if self._pending.add(spec.table, rows, now) >= self._opts.max_batch_rows:
                self._wake.set()
            rows.clear()

    async def _admit(self) -> None:
        """Wait for room: back-pressure while healthy, spill while the database is away."""
        spill_possible = self._spill is not None
        while self._pending.count >= self._opts.max_pending_rows:
            self._check_running()
            if spill_possible and not self._healthy:
                try:
                    if await self._spill_pending():
                        continue
                except StorageError:
                    spill_possible = False  # the disk fails too: fall back to back-pressure
            self._wake.set()
            async with self._space:
                # checked under the lock: a notification sent before we wait is not lost
                await self._space.wait_for(
                    functools.partial(self._may_proceed, spill_possible=spill_possible)
                )

    def _may_proceed(self, *, spill_possible: bool) -> bool:
        return (
            self._pending.count < self._opts.max_pending_rows
            or (spill_possible and not self._healthy)
            or self._closing
            or self._failure is not None
        )

    def _check_running(self) -> None:
        """Refuse rows nobody would write."""
        if self._task is None or self._closing:
            raise StorageError("the writer is not running (use 'async with' or start())", transient=False)
        if self._failure is not None or self._task.done():
            cause = self._failure
            if cause is None and not self._task.cancelled():
                cause = self._task.exception()
            raise StorageError(f"the writer's flush task stopped: {cause!r}", transient=False) from cause

    async def _notify_space(self) -> None:
        async with self._space:
            self._space.notify_all()

    # -------------------------------------------------------------------------------------------- flushing

    async def flush(self) -> None:
        """Write every spilled and pending row now; raises :class:`StorageError` if the database fails."""
        if self._failure is not None:
            raise StorageError(f"the writer failed: {self._last_error}", transient=False) from self._failure
        async with self._io_lock:
            await self._replay_spill()
            for name, table in list(self._pending.tables.items()):
                spec = spec_named(name)
                while table.rows:
                    batch, oldest = table.take(self._opts.max_batch_rows)
                    try:
                        await self._batches.write(spec, batch)
                    except BaseException:
                        table.put_back(batch, oldest)  # errors and cancellation alike: nothing is lost
                        raise
                    self._pending.count -= len(batch)
                    await self._notify_space()

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
                await self._mark_unhealthy(exc)
                await asyncio.sleep(min(next(self._delays), max(0.0, deadline - time.monotonic())))

    async def _run(self) -> None:
        """Flush every interval (or when a batch is full). While the database is away, pending rows go to the
        spill dir at every wake-up, so a crash loses at most one flush interval of rows; writes are retried
        with backoff. A non-transient error or a bug is not retried: the writer fails (see :meth:`_fail`)."""
        loop = asyncio.get_running_loop()
        retry_at = 0.0
        while not self._stop.is_set():
            await self._wait(self._wake, self._opts.flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not self._healthy:
                await self._spill_quietly()
                if loop.time() < retry_at:
                    continue
            try:
                await self.flush()
            except StorageError as exc:
                if not exc.transient:
                    await self._fail(exc)
                    raise
                await self._mark_unhealthy(exc)
                retry_at = loop.time() + next(self._delays)
                await self._spill_quietly()
            except Exception as exc:  # a bug: surfaced once, never retried
                await self._fail(exc)
                raise

    async def _fail(self, exc: BaseException) -> None:
        """Stop for good: keep every pending row in the spill dir and make ``put``/``flush``/``aclose`` raise."""
        self._healthy = False
        self._last_error = f"{type(exc).__name__}: {exc}"
        log.error("the writer failed and stops (not retried): %s", self._last_error, exc_info=exc)
        await self._spill_quietly()
        self._failure = exc  # rows put meanwhile are kept by aclose
        await self._notify_space()  # producers waiting for room must see the failure

    async def _spill_quietly(self) -> None:
        """Spill what is pending; if the disk fails too, the rows stay in memory (the error is logged)."""
        if self._spill is None:
            return
        with contextlib.suppress(StorageError):
            await self._spill_pending()

    @staticmethod
    async def _wait(event: asyncio.Event, timeout_s: float) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation racing its timeout
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    def _healthy_again(self) -> None:
        """A sink call succeeded: the database answers."""
        if not self._healthy:
            log.info("database writes succeed again after %d retries", self._retries)
        self._healthy = True
        self._delays = self._new_backoff()

    async def _mark_unhealthy(self, exc: StorageError) -> None:
        if self._healthy:
            log.warning("database write failed, retrying with backoff: %s", exc)
        self._healthy = False
        self._retries += 1
        self._last_error = str(exc)
        await self._notify_space()  # producers waiting for room may now spill instead

    # ---------------------------------------------------------------------------------------------- spill

    async def _spill_pending(self) -> int:
        """Move every pending row to a new spill file (see :meth:`SpillKeeper.spill_pending`); returns how many
        rows left memory. Never overlaps a write; a cancellation meanwhile goes on once the rows are accounted."""
        assert self._spill is not None
        async with self._io_lock:
            moved, cancelled = await self._spill.spill_pending(self._pending)
        if moved:
            await self._notify_space()
        if cancelled:
            raise asyncio.CancelledError
        return moved

    async def _replay_spill(self) -> None:
        """Write spill files oldest first (caller holds the I/O lock; see :meth:`SpillKeeper.replay`)."""
        if self._spill is not None:
            await self._spill.replay(
                self._batches.write, batch_rows=self._opts.max_batch_rows, on_unreadable=self._report
            )

    def _report(self, error: str) -> None:
        self._last_error = error

    # ---------------------------------------------------------------------------------------------- stats

    def stats(self) -> WriterStats:
        now = self._clock()
        times = [self._pending.oldest_ms(), self._spill.oldest_ms if self._spill else None]
        oldest = min((t for t in times if t is not None), default=None)
        return WriterStats(
            pending_rows=self._pending.count,
            spilled_rows=self._spill.rows if self._spill else 0,
            written_rows=self._batches.written,
            unchanged_rows=self._batches.unchanged,
            dead_rows=self._letters.count,
            retries=self._retries,
            healthy=self._healthy,
            failed=self._failure is not None,
            lag_ms=0 if oldest is None else max(0, now - oldest),
            last_error=self._last_error,
        )

    def _new_backoff(self) -> Iterator[float]:
        return backoff(initial_s=self._opts.retry_initial_s, max_s=self._opts.retry_max_s)
