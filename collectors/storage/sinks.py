"""Bulk, idempotent writes of neutral rows (see :mod:`collectors.storage.tables`) into one database.

Sinks are synchronous and own one connection; the async :class:`~collectors.storage.writer.BatchWriter` runs
them in a worker thread. Every write is one transaction: all of a batch lands, or none of it does.

PostgreSQL has two paths (raw SQL here because COPY has no SQLAlchemy construct; identifiers come only from
the table specs, never from input):

* fast: rows of an append-only table whose monotonic column (trade id, timestamp, sequence) lies above
  everything stored for their partition cannot conflict, so they are binary-COPYed straight into the table.
  Another writer may race us; then the COPY fails with a unique violation, the transaction rolls back and
  the batch takes the merge path. Nothing is swallowed: the merge path inserts what is new.
* merge: binary COPY into a session-local staging table, then ``INSERT ... SELECT ... ON CONFLICT``.

SQLite uses ``executemany`` with the same ``ON CONFLICT`` clauses in one transaction.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, Final, Protocol

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from collectors.errors import StorageError
from collectors.model import format_decimal
from collectors.storage.engine import storage_error
from collectors.storage.tables import Conflict, Kind, Row, TableSpec
from collectors.storage.types import datetime_to_ms
from collectors.storage.values import checked_chunks

__all__ = ["PostgresSink", "Sink", "SqliteSink", "WriteResult", "open_sink"]

# Columns that never make a row "different" and are not compared on upsert.
_BOOKKEEPING: Final = frozenset({"updated_at", "revision", "source"})
# A final row (closed candle, confirmed exchange candle) is never overwritten by a non-final one.
_FINAL_FLAGS: Final = ("is_closed", "confirmed")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one ``write`` did: rows inserted or changed, rows already stored (identical or final), and the path."""

    written: int
    unchanged: int
    path: str


class Sink(Protocol):
    dialect: str

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult: ...

    def close(self) -> None: ...


def open_sink(engine: Engine) -> Sink:
    if engine.dialect.name == "postgresql":
        return PostgresSink(engine)
    if engine.dialect.name == "sqlite":
        return SqliteSink(engine)
    raise ValueError(f"no sink for {engine.dialect.name}")


def _last_per_key(spec: TableSpec, rows: Sequence[Row]) -> list[Row]:
    """Keep the last row of each key (a batch may hold several states of one candle), except that a final row
    (closed candle, confirmed exchange candle) is never replaced by a later non-final one: the same rule the
    upsert applies between batches."""
    positions = [spec.index_of(c) for c in spec.key]
    flag = _final_flag(spec)
    final = spec.index_of(flag) if flag else None
    latest: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[p] for p in positions)
        if final is not None and not row[final]:
            previous = latest.get(key)
            if previous is not None and previous[final]:
                continue
        latest[key] = row
    return list(latest.values())


# Errors raised while converting or binding a row's values: the row is bad, the rest of the batch may be fine.
_VALUE_ERRORS = (ValueError, TypeError, OverflowError, struct.error, UnicodeError, ArithmeticError)


def bad_values(exc: BaseException, spec: TableSpec) -> StorageError:
    return StorageError(f"writing {spec.table}: {type(exc).__name__}: {exc}", transient=False, bad_data=True)


def _compared(spec: TableSpec) -> list[str]:
    return [c for c in spec.names if c not in spec.key and c not in _BOOKKEEPING]


def _final_flag(spec: TableSpec) -> str | None:
    return next((f for f in _FINAL_FLAGS if f in spec.names), None)


# ----------------------------------------------------------------------------------------------- PostgreSQL

_PG_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01, PostgreSQL's binary timestamp origin
# Binary COPY types. An instant goes as int8: microseconds since 2000-01-01 are exactly timestamptz's binary
# form (binary COPY carries no type per value; the server reads the 8 bytes with timestamptz's receive function),
# so integer milliseconds become timestamptz without a datetime object or a Python dumper call per value.
_PG_COPY_TYPES: Final = {
    Kind.TEXT: "text",
    Kind.INT: "int8",
    Kind.INT4: "int4",
    Kind.DECIMAL: "numeric",
    Kind.TIME: "int8",
    Kind.BOOL: "bool",
}


Chunks = list[list[tuple[Any, ...]]]  # a checked batch: chunks of rows, each as its columns (values.py)


def _copy_rows(spec: TableSpec, chunks: Chunks) -> Iterator[Row]:
    """Rows for binary COPY from checked columns: instants (epoch ms, within years 1..9999 once checked) as
    microseconds since PostgreSQL's epoch, everything else as it is; rebuilt chunk by chunk with C-level ``zip``
    (chained in C too: no Python frame per row)."""
    times = [i for i, kind in enumerate(spec.kinds) if kind is Kind.TIME]

    def chunk_rows(columns: list[tuple[Any, ...]]) -> Iterator[Row]:
        out: list[Sequence[Any]] = list(columns)
        for i in times:
            out[i] = [None if v is None else (v - _PG_EPOCH_MS) * 1000 for v in columns[i]]
        return zip(*out, strict=True)

    return chain.from_iterable(map(chunk_rows, chunks))


def _ranges(spec: TableSpec, chunks: Chunks) -> dict[tuple[Any, ...], tuple[Any, Any]]:
    """(lowest, highest) monotonic value per partition of a checked batch, from its columns.

    Runs on every batch of the bulk path, so the common case (one partition per chunk) is a few C-level
    set/min/max per chunk.
    """
    assert spec.monotonic is not None
    positions = [spec.index_of(c) for c in spec.partition]
    mono_at = spec.index_of(spec.monotonic)
    ranges: dict[tuple[Any, ...], tuple[Any, Any]] = {}
    for columns in chunks:
        distinct = [set(columns[i]) for i in positions]
        mono = columns[mono_at]
        if all(len(values) == 1 for values in distinct):
            pairs: Iterable[tuple[tuple[Any, ...], Any, Any]] = [
                (tuple(next(iter(values)) for values in distinct), min(mono), max(mono))
            ]
        else:
            pairs = (
                (tuple(key), value, value)
                for *key, value in zip(*(columns[i] for i in positions), mono, strict=True)
            )
        for partition, low, high in pairs:
            known = ranges.get(partition)
            ranges[partition] = (low, high) if known is None else (min(known[0], low), max(known[1], high))
    return ranges


class PostgresSink:
    dialect = "postgresql"

    def __init__(
        self, engine: Engine, *, connect_timeout_s: int = 10, statement_timeout_s: int = 120
    ) -> None:
        self._engine = engine
        self._connect_timeout_s = connect_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        # Highest monotonic value known to be stored per (table, partition); only a hint for the fast path.
        self._high_water: dict[tuple[str, tuple[Any, ...]], Any] = {}

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        if not rows:
            return WriteResult(0, 0, "none")
        try:
            chunks = checked_chunks(spec, rows)
            conn = self._connect()
            ranges = _ranges(spec, chunks) if spec.monotonic else {}
            if (
                spec.conflict is Conflict.IGNORE
                and spec.monotonic
                and self._cannot_conflict(conn, spec, ranges)
            ):
                try:
                    with conn.transaction():
                        self._copy(conn, spec, spec.table, chunks)
                    self._remember(spec, ranges)
                    return WriteResult(len(rows), 0, "copy")
                except psycopg.errors.UniqueViolation:
                    pass  # raced by another writer or duplicates inside the batch: merge instead
            if self._all_stored(conn, spec, ranges):
                return WriteResult(0, len(rows), "skip")
            result = self._merge(conn, spec, rows, chunks)
            if spec.monotonic:
                self._remember(spec, ranges)
            return result
        except psycopg.Error as exc:
            self._discard()
            raise storage_error(exc, table=spec.table) from exc
        except _VALUE_ERRORS as exc:  # raised by our checks or while a value was converted for COPY
            raise bad_values(exc, spec) from exc

    def close(self) -> None:
        self._discard()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            url = self._engine.url.set(drivername="postgresql")
            # Bounded waits: a black-holed network or a held lock must not stall the writer forever.
            self._conn = psycopg.connect(
                url.render_as_string(hide_password=False),
                connect_timeout=self._connect_timeout_s,
                options=f"-c statement_timeout={self._statement_timeout_s * 1000}",
            )
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _cannot_conflict(
        self, conn: psycopg.Connection[Any], spec: TableSpec, ranges: dict[tuple[Any, ...], tuple[Any, Any]]
    ) -> bool:
        assert spec.monotonic is not None
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in spec.partition)
        query = sql.SQL("SELECT max({}) FROM {} WHERE {}").format(
            sql.Identifier(spec.monotonic), sql.Identifier(spec.table), where
        )
        mono_kind = spec.kind_of(spec.monotonic)
        for partition, (lowest, _) in ranges.items():
            known = self._high_water.get((spec.table, partition))
            if known is None:
                with conn.transaction():
                    stored = conn.execute(query, partition).fetchone()
                known = stored[0] if stored else None
                if known is not None and mono_kind is Kind.TIME:
                    known = datetime_to_ms(known)
            if known is not None and lowest <= known:
                return False
        return True

    def _all_stored(
        self, conn: psycopg.Connection[Any], spec: TableSpec, ranges: dict[tuple[Any, ...], tuple[Any, Any]]
    ) -> bool:
        """True when every row's key is certainly stored already (a replay): then nothing needs writing.

        Only for integer sequences (trade ids, message seq): if the table holds every integer of the batch's
        ``[lowest, highest]`` range for its partition, it holds each of the batch's keys. One index-only count.
        """
        if spec.conflict is not Conflict.IGNORE or spec.monotonic is None:
            return False
        if spec.kind_of(spec.monotonic) is not Kind.INT:
            return False
        if len(ranges) != 1:
            return False
        ((partition, (lowest, highest)),) = ranges.items()
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in spec.partition)
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} AND {} BETWEEN %s AND %s").format(
            sql.Identifier(spec.table), where, sql.Identifier(spec.monotonic)
        )
        with conn.transaction():
            found = conn.execute(query, (*partition, lowest, highest)).fetchone()
        return found is not None and found[0] == highest - lowest + 1

    def _remember(self, spec: TableSpec, ranges: dict[tuple[Any, ...], tuple[Any, Any]]) -> None:
        for partition, (_, highest) in ranges.items():
            key = (spec.table, partition)
            current = self._high_water.get(key)
            if current is None or highest > current:
                self._high_water[key] = highest

    def _copy(self, conn: psycopg.Connection[Any], spec: TableSpec, target: str, chunks: Chunks) -> None:
        """Binary COPY of a checked batch, given column by column (see :func:`_copy_rows`)."""
        names = sql.SQL(", ").join(map(sql.Identifier, spec.names))
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(target), names)
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types([_PG_COPY_TYPES[k] for k in spec.kinds])
            write_row = copy.write_row
            for row in _copy_rows(spec, chunks):
                write_row(row)

    def _merge(
        self,
        conn: psycopg.Connection[Any],
        spec: TableSpec,
        rows: Sequence[Row],
        chunks: Chunks,
    ) -> WriteResult:
        staging = f"_staging_{spec.table}"
        if spec.conflict is not Conflict.IGNORE:
            kept = _last_per_key(spec, rows)
            if len(kept) != len(rows):
                rows, chunks = kept, checked_chunks(spec, kept)
        with conn.transaction():
            # in every transaction (cheap): a cached "already created" would be wrong after a rollback
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
                ).format(
                    sql.Identifier(staging),
                    sql.SQL(", ").join(map(sql.Identifier, spec.names)),
                    sql.Identifier(spec.table),
                )
            )
            self._copy(conn, spec, staging, chunks)
            written = conn.execute(_pg_upsert(spec, staging)).rowcount
        return WriteResult(written, len(rows) - written, "merge")


def _pg_upsert(spec: TableSpec, staging: str) -> sql.Composed:
    cols = sql.SQL(", ").join(map(sql.Identifier, spec.names))
    key = sql.SQL(", ").join(map(sql.Identifier, spec.key))
    head = sql.SQL("INSERT INTO {} AS cur ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
        sql.Identifier(spec.table), cols, cols, sql.Identifier(staging), key
    )
    if spec.conflict is Conflict.IGNORE:
        return head + sql.SQL("DO NOTHING")
    return head + sql.SQL(_upsert_tail(spec, excluded="EXCLUDED", distinct="IS DISTINCT FROM"))


# ---------------------------------------------------------------------------------------------------- SQLite


def _upsert_tail(spec: TableSpec, *, excluded: str, distinct: str) -> str:
    """``DO UPDATE SET ... WHERE <something changed> [AND NOT <final row overwritten by a non-final one>]
    [AND <not older than the stored row by updated_at>]``.

    ``distinct`` is the NULL-safe inequality: ``IS DISTINCT FROM`` on PostgreSQL, ``IS NOT`` on SQLite (which
    means the same there and, unlike IS DISTINCT FROM, works before SQLite 3.39).
    """

    def q(name: str) -> str:
        return f'"{name}"'

    settable = [c for c in spec.names if c not in spec.key and c != "revision"]
    sets = [f"{q(c)} = {excluded}.{q(c)}" for c in settable]
    if "revision" in spec.names:
        # the revision counts changes to a closed candle; while a candle is open it is the engine's value
        sets.append(f"revision = CASE WHEN cur.is_closed THEN cur.revision + 1 ELSE {excluded}.revision END")
    changed = " OR ".join(f"cur.{q(c)} {distinct} {excluded}.{q(c)}" for c in _compared(spec))
    where = f"({changed})"
    flag = _final_flag(spec)
    if flag:
        where += f" AND NOT (cur.{q(flag)} AND NOT {excluded}.{q(flag)})"
    if "updated_at" in spec.names:
        # an older state (a spill replay, a recovered file) never replaces a newer one
        where += f" AND cur.updated_at <= {excluded}.updated_at"
    return f"DO UPDATE SET {', '.join(sets)} WHERE {where}"


class SqliteSink:
    dialect = "sqlite"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        if not rows:
            return WriteResult(0, 0, "none")
        try:
            # first: keys are hashed below (a dict in inst_id is a bad row, not a bug)
            chunks = checked_chunks(spec, rows)
            if spec.conflict is not Conflict.IGNORE:
                kept = _last_per_key(spec, rows)
                if len(kept) != len(rows):
                    rows, chunks = kept, checked_chunks(spec, kept)
            raw = self._connect()
            dbapi = raw.driver_connection
            before = dbapi.total_changes
            with dbapi:  # one transaction: commit on success, roll back on error
                dbapi.executemany(_sqlite_insert(spec), _sqlite_rows(spec, rows, chunks))
            changed = dbapi.total_changes - before
        except sqlite3.Error as exc:
            self._discard()
            raise storage_error(exc, table=spec.table) from exc
        except _VALUE_ERRORS as exc:
            raise bad_values(exc, spec) from exc
        return WriteResult(changed, len(rows) - changed, "executemany")

    def close(self) -> None:
        self._discard()

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


def _sqlite_insert(spec: TableSpec) -> str:
    cols = ", ".join(f'"{c}"' for c in spec.names)
    marks = ", ".join("?" for _ in spec.names)
    key = ", ".join(f'"{c}"' for c in spec.key)
    head = f'INSERT INTO "{spec.table}" AS cur ({cols}) VALUES ({marks}) ON CONFLICT ({key}) '
    if spec.conflict is Conflict.IGNORE:
        return head + "DO NOTHING"
    return head + _upsert_tail(spec, excluded="excluded", distinct="IS NOT")


def _sqlite_rows(spec: TableSpec, rows: Sequence[Row], chunks: Chunks) -> Iterable[Row]:
    """Rows as SQLite stores them: decimals as plain text (:func:`format_decimal`), converted column-wise."""
    decimals = [i for i, kind in enumerate(spec.kinds) if kind is Kind.DECIMAL]
    if not decimals:
        return rows
    return _sqlite_chunk_rows(chunks, decimals)


def _sqlite_chunk_rows(chunks: Chunks, decimals: list[int]) -> Iterator[Row]:
    def chunk_rows(columns: list[tuple[Any, ...]]) -> Iterator[Row]:
        out: list[Sequence[Any]] = list(columns)
        for i in decimals:
            out[i] = _decimal_texts(columns[i])
        return zip(*out, strict=True)

    return chain.from_iterable(map(chunk_rows, chunks))


def _decimal_texts(values: tuple[Any, ...]) -> list[Any]:
    """``format_decimal`` of each checked value (``None`` stays ``None``).

    ``str`` is about twice as fast and gives the same text whenever it uses no exponent (exponent <= 0 and
    adjusted exponent >= -6: then both print the coefficient with the point placed by the exponent), so it is
    tried first for a whole column; one exponent anywhere sends the column through ``format(value, "f")``.
    """
    if None in values:
        return [None if v is None else format_decimal(v) for v in values]
    texts = list(map(str, values))
    if "E" in "".join(texts):
        return list(map(format, values, repeat("f")))
    return texts
