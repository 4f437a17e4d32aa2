"""Retention: delete archive rows older than the configured number of days.

Only the archive tables are ever purged (``raw_messages``, ``rejected_messages``, ``book_snapshots``,
``tickers``); trades, candles, instruments and the coverage ledger are kept forever. ``now_ms`` is passed in.

:func:`purge_batch` deletes at most ``limit`` of a table's expired rows in one short transaction, so a caller
can purge a large backlog while collectors keep writing: no transaction holds locks for long, and on SQLite the
single write lock is released between batches. Its callers: the ``retention`` flow (one task per table) and
:func:`purge_expired` (``okx-collector db purge``: every table, batch after batch, until none is left).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, func, inspect, or_, select, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import KeyedColumnElement

from collectors.config import RetentionConfig
from collectors.storage.engine import storage_error
from collectors.storage.schema import BookSnapshotRow, RawMessageRow, RejectedMessageRow, TickerRow

__all__ = ["DEFAULT_BATCH_ROWS", "DEFAULT_PAUSE_S", "Purged", "cutoffs", "purge_batch", "purge_expired"]

DEFAULT_BATCH_ROWS: Final = 10_000  # rows per transaction of ``okx-collector db purge``
DEFAULT_PAUSE_S: Final = 0.2  # seconds between two of its batches: the collectors' writes get the database
_DAY_MS: Final = 86_400_000
_TABLES: Final = {
    "raw_messages": (RawMessageRow, RawMessageRow.recv_time, "raw_messages_days"),
    "rejected_messages": (RejectedMessageRow, RejectedMessageRow.recv_time, "rejected_messages_days"),
    "book_snapshots": (BookSnapshotRow, BookSnapshotRow.ts, "book_snapshots_days"),
    "tickers": (TickerRow, TickerRow.ts, "tickers_days"),
}


# the columns in front of the time column in each table's time index (schema.py: ix_raw_messages_time,
# ix_rejected_messages_time, and the primary keys of book_snapshots and tickers)
_GROUPS: Final = {
    "raw_messages": ("exchange", "inst_id"),
    "rejected_messages": ("exchange",),
    "book_snapshots": ("exchange", "inst_id"),
    "tickers": ("exchange", "inst_id"),
}


def cutoffs(retention: RetentionConfig, *, now_ms: int) -> dict[str, int | None]:
    """Per archive table: rows with a time below this are expired (None: the table is kept forever)."""
    out: dict[str, int | None] = {}
    for table, (_, _, setting) in _TABLES.items():
        days: int | None = getattr(retention, setting)
        out[table] = None if days is None else now_ms - days * _DAY_MS
    return out


def purge_batch(engine: Engine, table: str, *, cutoff_ms: int, limit: int) -> int:
    """Delete at most ``limit`` rows of archive ``table`` older than ``cutoff_ms`` (the oldest first) in one
    transaction; returns the rows deleted (fewer than ``limit``: nothing expired is left). Raises ``KeyError``
    for another table.

    Every statement reads the table through its time index (``_GROUPS``: the columns in front of the time in
    that index): the groups (an exchange, an instrument, NULL included) are found by seeks (a loose index
    scan); in each group the n-th oldest expired row is found by a range of the index, and the rows up to it
    (time, then primary key) are deleted by the same range. No statement scans the whole table, however large
    (a bare ``time < cutoff`` filter could not use an index that starts with the exchange and instrument)."""
    if limit <= 0:
        raise ValueError(f"limit must be above 0, got {limit}")
    row_type, column, _ = _TABLES[table]
    key = [
        c for c in inspect(row_type).primary_key if c.name != column.key
    ]  # the tie-break within an instant
    deleted = 0
    try:
        with engine.begin() as conn:
            columns = inspect(row_type).local_table.c
            for group in _groups(conn, [columns[name] for name in _GROUPS[table]]):
                expired = [*group, column < cutoff_ms]
                order = [column, *key]
                nth = conn.execute(
                    select(*order).where(*expired).order_by(*order).offset(limit - deleted - 1).limit(1)
                ).first()
                if (
                    nth is not None
                ):  # the batch ends at that row: earlier instants, then that instant up to it
                    at = nth[0]
                    expired += [column <= at, or_(column < at, tuple_(*key) <= tuple(nth[1:]))]
                deleted += int(conn.execute(delete(row_type).where(*expired)).rowcount)
                if deleted >= limit:
                    break
    except SQLAlchemyError as exc:
        raise storage_error(exc, table=table) from exc
    return deleted


def _groups(conn: Connection, columns: Sequence[KeyedColumnElement[Any]]) -> Iterator[list[Any]]:
    """The distinct values of ``columns`` (the leading columns of an index; only the last may be NULL) as
    WHERE conditions, each found by one index seek (``min`` after the previous value)."""
    first, rest = columns[0], columns[1:]
    value = conn.execute(select(func.min(first))).scalar()
    while value is not None:
        here = first == value
        if not rest:
            yield [here]
        else:
            [second] = rest
            if getattr(second, "nullable", True):
                yield [here, second.is_(None)]
            inner = conn.execute(select(func.min(second)).where(here)).scalar()
            while inner is not None:
                yield [here, second == inner]
                inner = conn.execute(select(func.min(second)).where(here, second > inner)).scalar()
        value = conn.execute(select(func.min(first)).where(first > value)).scalar()


@dataclass(frozen=True, slots=True)
class Purged:
    """What :func:`purge_expired` did to one table: rows deleted, in how many :func:`purge_batch` calls (the
    last one found fewer than the limit; a table kept forever: none)."""

    deleted: int
    batches: int


def purge_expired(
    engine: Engine,
    retention: RetentionConfig,
    *,
    now_ms: int,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    pause_s: float = 0.0,
) -> Mapping[str, Purged]:
    """Delete rows older than each table's retention (:func:`cutoffs`), ``batch_rows`` per transaction
    (:func:`purge_batch`, index-driven), sleeping ``pause_s`` between two batches of a table."""
    if batch_rows <= 0:
        raise ValueError(f"batch_rows must be above 0, got {batch_rows}")
    out: dict[str, Purged] = {}
    for table, cutoff in cutoffs(retention, now_ms=now_ms).items():
        deleted = batches = 0
        while cutoff is not None:
            n = purge_batch(engine, table, cutoff_ms=cutoff, limit=batch_rows)
            deleted, batches = deleted + n, batches + 1
            if n < batch_rows:
                break
            time.sleep(pause_s)
        out[table] = Purged(deleted=deleted, batches=batches)
    return out
