"""Retention: delete archive rows older than the configured number of days.

Only the archive tables are ever purged (``raw_messages``, ``rejected_messages``, ``book_snapshots``,
``tickers``); trades, candles, instruments and the coverage ledger are kept forever. ``now_ms`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from collectors.config import RetentionConfig
from collectors.storage.engine import storage_error
from collectors.storage.schema import BookSnapshotRow, RawMessageRow, RejectedMessageRow, TickerRow

__all__ = ["purge_expired"]

_DAY_MS: Final = 86_400_000
_TABLES: Final = {
    "raw_messages": (RawMessageRow, RawMessageRow.recv_time, "raw_messages_days"),
    "rejected_messages": (RejectedMessageRow, RejectedMessageRow.recv_time, "rejected_messages_days"),
    "book_snapshots": (BookSnapshotRow, BookSnapshotRow.ts, "book_snapshots_days"),
    "tickers": (TickerRow, TickerRow.ts, "tickers_days"),
}


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
