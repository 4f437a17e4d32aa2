"""PostgreSQL sink: bulk, idempotent writes by binary COPY (raw SQL, because COPY has no SQLAlchemy construct;
identifiers come only from the table specs, never from input).

* fast: rows of an append-only table whose monotonic column (trade id, timestamp, sequence) lies above
  everything stored for their partition cannot conflict, so they are binary-COPYed straight into the table,
  one statement in autocommit (its own transaction: no BEGIN and COMMIT round trips). Another writer may race
  us; then the COPY fails with a unique violation and stores nothing, and the batch takes the merge path.
  Nothing is swallowed: the merge path inserts what is new.
* skip: a replay of integer sequences whose every id is already stored writes nothing.
* merge: binary COPY into a session-local staging table, then ``INSERT ... SELECT ... ON CONFLICT``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, Final

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from collectors.storage.engine import CONNECT_TIMEOUT_S, storage_error
from collectors.storage.sink_rules import VALUE_ERRORS, WriteResult, bad_values, last_per_key, upsert_tail
from collectors.storage.tables import Conflict, Kind, Row, TableSpec
from collectors.storage.types import datetime_to_ms
from collectors.storage.values import checked_chunks

__all__ = ["PostgresSink"]

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

Chunks = list[list[Any]]  # a checked batch: chunks of rows, each flat (row-major; values.checked_chunks)
Ranges = dict[tuple[Any, ...], tuple[Any, Any]]


def _copy_rows(spec: TableSpec, chunks: Chunks) -> Iterator[Row]:
    """Rows for binary COPY from checked flat chunks: instants (epoch ms, within years 1..9999 once checked) as
    microseconds since PostgreSQL's epoch, everything else as it is. Each chunk's instant columns are converted
    in a copy (the chunks may be copied twice: the fast path, then the merge) through strided slices, and its
    rows are cut by C-level ``zip`` over one iterator (chained in C too: no Python frame per row)."""
    width = len(spec.kinds)
    times = [i for i, kind in enumerate(spec.kinds) if kind is Kind.TIME]

    def chunk_rows(flat: list[Any]) -> Iterator[Row]:
        if times:
            flat = flat.copy()
            for i in times:
                flat[i::width] = [None if v is None else (v - _PG_EPOCH_MS) * 1000 for v in flat[i::width]]
        return zip(*[iter(flat)] * width, strict=False)  # one iterator: cuts rows of width values

    return chain.from_iterable(map(chunk_rows, chunks))


def _ranges(spec: TableSpec, chunks: Chunks) -> Ranges:
    """(lowest, highest) monotonic value per partition of a checked batch, from its columns.

    Runs on every batch of the bulk path, so the common case (one partition per chunk) is a few C-level
    set/min/max per chunk.
    """
    assert spec.monotonic is not None
    width = len(spec.kinds)
    positions = [spec.index_of(c) for c in spec.partition]
    mono_at = spec.index_of(spec.monotonic)
    ranges: Ranges = {}
    for flat in chunks:
        keys = [flat[i::width] for i in positions]
        distinct = [set(values) for values in keys]
        mono = flat[mono_at::width]
        if all(len(values) == 1 for values in distinct):
            pairs: Iterable[tuple[tuple[Any, ...], Any, Any]] = [
                (tuple(next(iter(values)) for values in distinct), min(mono), max(mono))
            ]
        else:
            pairs = ((tuple(key), value, value) for *key, value in zip(*keys, mono, strict=True))
        for partition, low, high in pairs:
            known = ranges.get(partition)
            ranges[partition] = (low, high) if known is None else (min(known[0], low), max(known[1], high))
    return ranges


class PostgresSink:
    dialect = "postgresql"

    def __init__(
        self, engine: Engine, *, connect_timeout_s: int = CONNECT_TIMEOUT_S, statement_timeout_s: int = 120
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
                    self._copy(conn, spec, spec.table, chunks)  # autocommit: one statement, all or nothing
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
        except VALUE_ERRORS as exc:  # raised by our checks or while a value was converted for COPY
            raise bad_values(exc, spec) from exc

    def close(self) -> None:
        self._discard()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            url = self._engine.url.set(drivername="postgresql")
            # Bounded waits: a black-holed network or a held lock must not stall the writer forever.
            # autocommit: a lone COPY or SELECT is its own transaction (no BEGIN and COMMIT round trips on the
            # fast path); the merge opens one explicitly
            # a connect_timeout in the URL's query wins (a keyword would override it)
            timeout: dict[str, Any] = (
                {} if "connect_timeout" in url.query else {"connect_timeout": self._connect_timeout_s}
            )
            self._conn = psycopg.connect(
                url.render_as_string(hide_password=False),
                autocommit=True,
                options=f"-c statement_timeout={self._statement_timeout_s * 1000}",
                **timeout,
            )
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _cannot_conflict(self, conn: psycopg.Connection[Any], spec: TableSpec, ranges: Ranges) -> bool:
        assert spec.monotonic is not None
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in spec.partition)
        query = sql.SQL("SELECT max({}) FROM {} WHERE {}").format(
            sql.Identifier(spec.monotonic), sql.Identifier(spec.table), where
        )
        mono_kind = spec.kind_of(spec.monotonic)
        for partition, (lowest, _) in ranges.items():
            known = self._high_water.get((spec.table, partition))
            if known is None:
                stored = conn.execute(query, partition).fetchone()
                known = stored[0] if stored else None
                if known is not None and mono_kind is Kind.TIME:
                    known = datetime_to_ms(known)
            if known is not None and lowest <= known:
                return False
        return True

    def _all_stored(self, conn: psycopg.Connection[Any], spec: TableSpec, ranges: Ranges) -> bool:
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
        found = conn.execute(query, (*partition, lowest, highest)).fetchone()
        return found is not None and found[0] == highest - lowest + 1

    def _remember(self, spec: TableSpec, ranges: Ranges) -> None:
        for partition, (_, highest) in ranges.items():
            key = (spec.table, partition)
            current = self._high_water.get(key)
            if current is None or highest > current:
                self._high_water[key] = highest

    def _copy(self, conn: psycopg.Connection[Any], spec: TableSpec, target: str, chunks: Chunks) -> None:
        """Binary COPY of a checked batch (see :func:`_copy_rows`)."""
        names = sql.SQL(", ").join(map(sql.Identifier, spec.names))
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(target), names)
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types([_PG_COPY_TYPES[k] for k in spec.kinds])
            write_row = copy.write_row
            for row in _copy_rows(spec, chunks):
                write_row(row)

    def _merge(
        self, conn: psycopg.Connection[Any], spec: TableSpec, rows: Sequence[Row], chunks: Chunks
    ) -> WriteResult:
        staging = f"_staging_{spec.table}"
        if spec.conflict is not Conflict.IGNORE:
            kept = last_per_key(spec, rows)
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
    return head + sql.SQL(upsert_tail(spec, excluded="EXCLUDED", distinct="IS DISTINCT FROM"))
