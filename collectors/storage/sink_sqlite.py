"""SQLite sink: the batch in one transaction, as multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT``.

One statement carries many rows (up to :data:`~collectors.storage.values.CHUNK_ROWS`, within the
connection's limit on bound variables): SQLite then runs its VM once per statement, not once per row, and
Python binds a flat list of values, which roughly halves the cost of a row against ``executemany`` of one row
per statement. A chunk of ``n`` rows is inserted by the statements for the powers of two that add up to ``n``,
so every statement text is one of a few per table and stays in the connection's statement cache. The
``ON CONFLICT`` clauses are the same as PostgreSQL's merge (:mod:`collectors.storage.sink_rules`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from collectors.storage.engine import storage_error
from collectors.storage.sink_rules import VALUE_ERRORS, WriteResult, bad_values, last_per_key, upsert_tail
from collectors.storage.tables import Conflict, Row, TableSpec
from collectors.storage.values import CHUNK_ROWS, checked_chunks

__all__ = ["SqliteSink"]


class SqliteSink:
    dialect = "sqlite"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._statements: dict[tuple[str, int], str] = {}

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        if not rows:
            return WriteResult(0, 0, "none")
        try:
            # first: keys are hashed below (a dict in inst_id is a bad row, not a bug)
            chunks = checked_chunks(spec, rows, decimals_as_text=True)
            if spec.conflict is not Conflict.IGNORE:
                kept = last_per_key(spec, rows)
                if len(kept) != len(rows):
                    rows, chunks = kept, checked_chunks(spec, kept, decimals_as_text=True)
            raw = self._connect()
            dbapi: sqlite3.Connection = raw.driver_connection
            width = len(spec.names)
            most = _rows_per_statement(dbapi, width)
            before = dbapi.total_changes
            with dbapi:  # one transaction: commit on success, roll back on error
                for flat in chunks:
                    start, left = 0, len(flat) // width
                    while left:
                        n = most if left >= most else 1 << (left.bit_length() - 1)
                        dbapi.execute(self._insert(spec, n), flat[start : start + n * width])
                        start += n * width
                        left -= n
            changed = dbapi.total_changes - before
        except sqlite3.Error as exc:
            self._discard()
            raise storage_error(exc, table=spec.table) from exc
        except VALUE_ERRORS as exc:
            raise bad_values(exc, spec) from exc
        return WriteResult(changed, len(rows) - changed, "insert")

    def close(self) -> None:
        self._discard()

    def _insert(self, spec: TableSpec, n: int) -> str:
        text = self._statements.get((spec.table, n))
        if text is None:
            text = self._statements[spec.table, n] = _sqlite_insert(spec, n)
        return text

    def _connect(self) -> Any:
        if self._conn is None:
            self._conn = self._engine.raw_connection()
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
            finally:
                self._conn = None


def _rows_per_statement(dbapi: sqlite3.Connection, width: int) -> int:
    """The largest power of two of rows, up to a chunk, whose values the connection can bind in one statement."""
    fit = min(CHUNK_ROWS, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    return 1 << (max(1, fit).bit_length() - 1)


def _sqlite_insert(spec: TableSpec, n: int) -> str:
    cols = ", ".join(f'"{c}"' for c in spec.names)
    marks = "(" + ", ".join("?" for _ in spec.names) + ")"
    key = ", ".join(f'"{c}"' for c in spec.key)
    head = f'INSERT INTO "{spec.table}" AS cur ({cols}) VALUES {", ".join([marks] * n)} ON CONFLICT ({key}) '
    if spec.conflict is Conflict.IGNORE:
        return head + "DO NOTHING"
    return head + upsert_tail(spec, excluded="excluded", distinct="IS NOT")
