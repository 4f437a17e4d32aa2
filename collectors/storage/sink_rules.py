"""What both sinks agree on: the result of a write, which errors mean a bad row, and the upsert rules.

One home for the conflict semantics (:func:`upsert_tail`, :func:`last_per_key`) that PostgreSQL's merge and
SQLite's ``INSERT`` both apply, so the two databases store the same thing for the same batches.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from collectors.errors import StorageError
from collectors.storage.tables import Row, TableSpec

__all__ = ["VALUE_ERRORS", "WriteResult", "bad_values", "last_per_key", "upsert_tail"]

# Columns that never make a row "different" and are not compared on upsert.
_BOOKKEEPING: Final = frozenset({"updated_at", "revision", "source"})
# A final row (closed candle, confirmed exchange candle) is never overwritten by a non-final one.
_FINAL_FLAGS: Final = ("is_closed", "confirmed")
# Errors raised while converting or binding a row's values: the row is bad, the rest of the batch may be fine.
VALUE_ERRORS: Final = (ValueError, TypeError, OverflowError, struct.error, UnicodeError, ArithmeticError)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one ``write`` did: rows inserted or changed, rows already stored (identical or final), and the path."""

    written: int
    unchanged: int
    path: str


def bad_values(exc: BaseException, spec: TableSpec) -> StorageError:
    return StorageError(f"writing {spec.table}: {type(exc).__name__}: {exc}", transient=False, bad_data=True)


def last_per_key(spec: TableSpec, rows: Sequence[Row]) -> list[Row]:
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


def upsert_tail(spec: TableSpec, *, excluded: str, distinct: str) -> str:
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


def _compared(spec: TableSpec) -> list[str]:
    return [c for c in spec.names if c not in spec.key and c not in _BOOKKEEPING]


def _final_flag(spec: TableSpec) -> str | None:
    return next((f for f in _FINAL_FLAGS if f in spec.names), None)
