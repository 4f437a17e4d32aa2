"""Keyset-paged range reads of one table: the SQL under the read API.

Each page is one short query ordered by a unique key of the table (``(ts, trade_id)`` for trades, ``ts`` for
book snapshots and tickers, ``open_time`` for candles, ``(start_time, id)`` for the coverage ledger); the next
page starts after the last key seen (``ts > t OR (ts = t AND trade_id > i)``, with ``ts >= t`` so both
databases bound the index scan). No transaction or cursor stays open between pages, so a consumer may take as
long as it likes over each; rows committed meanwhile after the last key seen are included, as in any paged read.

Blocking SQLAlchemy calls; driver errors become :class:`~collectors.errors.StorageError` through
:func:`~collectors.storage.engine.storage_error`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, exists, or_, select, type_coerce
from sqlalchemy.exc import SQLAlchemyError

from collectors.storage.engine import storage_error
from collectors.storage.schema import Base
from collectors.storage.tables import TableSpec, spec_named
from collectors.storage.types import UtcMillis, datetime_to_ms

__all__ = ["TableRead", "has_rows", "pages"]


@dataclass(frozen=True, slots=True)
class TableRead:
    """How one table is read over a time range: the output columns, the unique ordering key and the range
    rule (``time`` in ``[start, end)``, or for spans ``start_time < end AND end_time > start``)."""

    table: str
    key: tuple[str, ...]
    time: str
    span_end: str | None = None  # a span table: rows overlapping the range
    names: tuple[str, ...] = field(default=())

    @property
    def spec(self) -> TableSpec:
        return spec_named(self.table)

    @property
    def sa_table(self) -> Table:
        return Base.metadata.tables[self.table]

    @property
    def columns(self) -> tuple[str, ...]:
        """Output columns: ``names`` when given, else every column the writer stores, in schema order."""
        return self.names or self.spec.names


def _range(read: TableRead, start_ms: int, end_ms: int) -> list[ColumnElement[bool]]:
    c = read.sa_table.c
    if read.span_end is not None:
        return [c[read.time] < end_ms, c[read.span_end] > start_ms]
    return [c[read.time] >= start_ms, c[read.time] < end_ms]


def _after(read: TableRead, last: Sequence[Any]) -> list[ColumnElement[bool]]:
    """Rows whose key comes after ``last`` (lexicographic), with a bound on the first key column."""
    c = read.sa_table.c
    cols = [c[name] for name in read.key]
    later: ColumnElement[bool] = cols[-1] > last[-1]
    for i in range(len(cols) - 2, -1, -1):
        later = or_(cols[i] > last[i], and_(cols[i] == last[i], later))
    return [cols[0] >= last[0], later]


def pages(
    engine: Engine,
    read: TableRead,
    *,
    where: Sequence[ColumnElement[bool]],
    start_ms: int,
    end_ms: int,
    page_rows: int | None,
    raw_times: bool = False,
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of ``read.columns`` matching ``where`` in the range, by key, ``page_rows`` at a time (all in one
    page when None). Each row is the output columns only; an empty range yields nothing.

    Instants are integer milliseconds, or with ``raw_times`` the driver's own values (aware ``datetime`` on
    PostgreSQL, integer milliseconds on SQLite), which a caller converting whole columns at once takes
    without a Python call per value."""
    c = read.sa_table.c
    outputs = [_raw(c[name], engine) if raw_times else c[name] for name in read.columns]
    extra = [c[name] for name in read.key if name not in read.columns]
    width = len(outputs)
    key_at = [read.columns.index(k) if k in read.columns else width + extra.index(c[k]) for k in read.key]
    base = select(*outputs, *extra).where(*where, *_range(read, start_ms, end_ms))
    base = base.order_by(*(c[name] for name in read.key))
    last: list[Any] | None = None
    while True:
        query = base if last is None else base.where(*_after(read, last))
        if page_rows is not None:
            query = query.limit(page_rows)
        try:
            with engine.connect() as conn:
                rows = [tuple(r) for r in conn.execute(query).fetchall()]
        except SQLAlchemyError as exc:
            raise storage_error(exc, table=read.table, action="reading") from exc
        if not rows:
            return
        last = [_ms(rows[-1][i]) for i in key_at]
        yield [r[:width] for r in rows] if extra else rows
        if page_rows is None or len(rows) < page_rows:
            return


def _raw(column: Any, engine: Engine) -> Any:
    """``column`` without the :class:`UtcMillis` conversion: the driver's value, under the same name."""
    if isinstance(column.type, UtcMillis):
        return type_coerce(column, column.type.load_dialect_impl(engine.dialect)).label(column.name)
    return column


def _ms(value: Any) -> Any:
    return datetime_to_ms(value) if isinstance(value, datetime) else value


def has_rows(engine: Engine, table: str, where: Sequence[ColumnElement[bool]]) -> bool:
    """Whether any row of ``table`` matches ``where`` (an index-backed ``EXISTS`` on a key prefix)."""
    query = select(exists().where(*where))
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(query))
    except SQLAlchemyError as exc:
        raise storage_error(exc, table=table, action="reading") from exc
