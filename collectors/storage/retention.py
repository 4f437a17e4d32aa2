"""Retention: delete archive rows older than the configured number of days.

Only the archive tables are ever purged (``raw_messages``, ``rejected_messages``, ``book_snapshots``,
``tickers``); trades, candles, instruments and the coverage ledger are kept forever. ``now_ms`` is passed in.

:func:`purge_expired` deletes each table's expired rows in one statement (``okx-collector db purge``).
:func:`purge_batch` deletes at most ``limit`` of them in one short transaction, so a caller (the ``retention``
flow) can purge a large backlog while collectors keep writing: no transaction holds locks for long, and on
SQLite the single write lock is released between batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sqlalchemy import Engine, delete, inspect, select, tuple_
from sqlalchemy.exc import SQLAlchemyError

from collectors.config import RetentionConfig
from collectors.storage.engine import storage_error
from collectors.storage.schema import BookSnapshotRow, RawMessageRow, RejectedMessageRow, TickerRow

__all__ = ["cutoffs", "purge_batch", "purge_expired"]

_DAY_MS: Final = 86_400_000
_TABLES: Final = {
    "raw_messages": (RawMessageRow, RawMessageRow.recv_time, "raw_messages_days"),
    "rejected_messages": (RejectedMessageRow, RejectedMessageRow.recv_time, "rejected_messages_days"),
    "book_snapshots": (BookSnapshotRow, BookSnapshotRow.ts, "book_snapshots_days"),
    "tickers": (TickerRow, TickerRow.ts, "tickers_days"),
}


def cutoffs(retention: RetentionConfig, *, now_ms: int) -> dict[str, int | None]:
    """Per archive table: rows with a time below this are expired (None: the table is kept forever)."""
    out: dict[str, int | None] = {}
    for table, (_, _, setting) in _TABLES.items():
        days: int | None = getattr(retention, setting)
        out[table] = None if days is None else now_ms - days * _DAY_MS
    return out


def purge_batch(engine: Engine, table: str, *, cutoff_ms: int, limit: int) -> int:
    """Delete at most ``limit`` rows of archive ``table`` older than ``cutoff_ms`` in one transaction; returns
    the rows deleted (fewer than ``limit``: nothing expired is left). Raises ``KeyError`` for another table."""
    if limit <= 0:
        raise ValueError(f"limit must be above 0, got {limit}")
    row_type, column, _ = _TABLES[table]
    key = list(inspect(row_type).primary_key)
    chosen = select(*key).where(column < cutoff_ms).limit(limit)
    try:
        with engine.begin() as conn:
            return int(conn.execute(delete(row_type).where(tuple_(*key).in_(chosen))).rowcount)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table=table) from exc


def purge_expired(engine: Engine, retention: RetentionConfig, *, now_ms: int) -> Mapping[str, int]:
    """Delete rows older than each table's retention; returns rows deleted per table (tables kept forever: 0)."""
    deleted: dict[str, int] = {}
    for table, (row_type, column, setting) in _TABLES.items():
        days: int | None = getattr(retention, setting)
        if days is None:
            deleted[table] = 0
            continue
        cutoff = now_ms - days * _DAY_MS
        try:
            with engine.begin() as conn:
                deleted[table] = conn.execute(delete(row_type).where(column < cutoff)).rowcount
        except SQLAlchemyError as exc:
            raise storage_error(exc, table=table) from exc
    return deleted
