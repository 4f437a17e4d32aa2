"""The one verdict on a row's values, given before either database sees them.

PostgreSQL and SQLite disagree on much of what they accept (SQLite stores a float in an integer column, a NUL
byte in text, a 100-character string in ``VARCHAR(64)``, a timestamp in year 300,000); this module decides once
for both, by the column as :mod:`collectors.storage.schema` declares it:

* text: exactly ``str``, at most the column's length in characters, no NUL byte, encodable as UTF-8;
* int / int4: exactly ``int`` (not ``bool``), within 64 / 32 bits;
* decimal: exactly ``Decimal``, finite, below ``10**131072`` and with at most 16383 digits after the point
  (PostgreSQL's numeric limits);
* time: exactly ``int`` milliseconds within years 1..9999 (what a Python ``datetime`` can read back);
* bool: exactly ``bool``; ``None`` only where the column is nullable.

A refused value raises ``TypeError`` or ``ValueError`` naming ``table.column``; the sinks turn that into a
bad-data :class:`~collectors.errors.StorageError`, so the writer dead-letters that row and writes the rest.
The checks run column by column with C-level aggregates (``set``, ``min``, ``max``, ``str.join``) and only look
at single values to name the culprit, because every row of the bulk path passes here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, InvalidOperation
from itertools import chain
from typing import Any, Final

from collectors.model import format_decimal
from collectors.storage.tables import Column, Kind, Row, TableSpec

__all__ = ["CHUNK_ROWS", "check_rows", "check_value", "checked_chunks", "split_refused"]

CHUNK_ROWS: Final = 1024  # rows checked (and converted by the sinks) together: small enough to stay in cache
_INT8: Final = (-(2**63), 2**63 - 1)
_INT4: Final = (-(2**31), 2**31 - 1)
_TIME: Final = (-62_135_596_800_000, 253_402_300_799_999)  # 0001-01-01 .. 9999-12-31T23:59:59.999 UTC
_DECIMAL_LIMIT: Final = Decimal("1E+131072")
_MIN_EXPONENT: Final = -16383
_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, Inexact])
# A plain decimal text (no exponent) this long has at most 16383 digits before and after the point: within
# PostgreSQL's numeric limits (below 1E+131072, at most 16383 digits after the point).
_PLAIN_LIMIT: Final = -_MIN_EXPONENT
_REFUSALS: Final = (TypeError, ValueError, ArithmeticError)
_EXACT_TYPE: Final[dict[Kind, type]] = {
    Kind.TEXT: str,
    Kind.INT: int,
    Kind.INT4: int,
    Kind.DECIMAL: Decimal,
    Kind.TIME: int,
    Kind.BOOL: bool,
}


def check_rows(spec: TableSpec, rows: Sequence[Row]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the column of the first refused value in ``rows``."""
    checked_chunks(spec, rows)


def checked_chunks(
    spec: TableSpec, rows: Sequence[Row], *, decimals_as_text: bool = False
) -> list[list[Any]]:
    """:func:`check_rows`, returning the rows in chunks of :data:`CHUNK_ROWS`, each flat: the values of its
    rows one after another (row-major), so column ``i`` of a chunk is ``chunk[i::width]``.

    Chunks, because the checks make several C-level passes over each column: over a whole 50k-row batch every
    pass misses the CPU caches (values are objects scattered in memory), over a thousand rows the later passes
    hit them. Flat, because a strided slice takes a column out (and puts a converted one back) at the cost of a
    copy, where transposing with ``zip`` and rebuilding rows costs a tuple per row and per column. The sinks
    read the columns to convert the batch (instants for PostgreSQL's binary COPY) and to find its monotonic
    ranges, and hand the flat values to the database (SQLite's multi-row ``INSERT``).

    With ``decimals_as_text`` (SQLite stores decimals as text) every decimal is replaced by its
    :func:`~collectors.model.format_decimal` text. The verdict on a decimal column then reads that text: when
    no value prints with an exponent (``E``/``e``), as ``NaN`` or ``Infinity``, or longer than
    :data:`_PLAIN_LIMIT` characters, every value is finite, within the numeric limits, and ``str`` gave the
    same text as ``format_decimal``; otherwise the column gets the full check and ``format_decimal``.
    """
    width = len(spec.columns)
    if rows and set(map(len, rows)) != {width}:
        raise ValueError(f"{spec.table}: a row has the wrong number of values (expected {width})")
    as_text = [decimals_as_text and column.kind is Kind.DECIMAL for column in spec.columns]
    chunks = []
    for start in range(0, len(rows), CHUNK_ROWS):
        flat = list(chain.from_iterable(rows[start : start + CHUNK_ROWS]))
        for i, column in enumerate(spec.columns):
            if as_text[i]:
                flat[i::width] = _checked_texts(spec.table, column, flat[i::width])
            else:
                _check_column(spec.table, column, flat[i::width])
        chunks.append(flat)
    return chunks


def split_refused(spec: TableSpec, rows: Sequence[Row]) -> tuple[list[Row], list[tuple[Row, str]]]:
    """``rows`` the verdict accepts, and each refused row with its reason (one look at the batch when all pass).

    Used before rows leave memory for a spill file, whose JSON cannot tell a ``Decimal`` from a ``str``, an
    ``int`` or a ``bool``: a refused value must be refused now, not turned into another value on replay.
    """
    try:
        check_rows(spec, rows)
        return list(rows), []
    except _REFUSALS:
        pass
    good: list[Row] = []
    refused: list[tuple[Row, str]] = []
    for row in rows:
        try:
            check_rows(spec, (row,))
        except _REFUSALS as exc:
            refused.append((row, f"{type(exc).__name__}: {exc}"))
        else:
            good.append(row)
    return good, refused


def check_value(table: str, column: Column, value: Any) -> None:
    """The verdict on one value; raises ``TypeError``/``ValueError`` naming ``table.column``."""
    where = f"{table}.{column.name}"
    if value is None:
        if not column.nullable:
            raise ValueError(f"{where}: null in a NOT NULL column")
        return
    expected = _EXACT_TYPE[column.kind]
    if type(value) is not expected:
        raise TypeError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r:.80}")
    problem = _PROBLEMS[column.kind](column, value)
    if problem:
        raise ValueError(f"{where}: {problem}: {value!r:.80}")


def _checked_texts(table: str, column: Column, values: list[Any]) -> list[Any]:
    """The verdict on a decimal column, returning each value's ``format_decimal`` text (see
    :func:`checked_chunks`); ``str`` is about twice as fast, and equal whenever it prints no exponent."""
    if set(map(type, values)) == {Decimal}:
        texts = list(map(str, values))
        joined = "".join(texts)
        if (
            "E" not in joined
            and "e" not in joined  # a context with capitals=0 prints 1e-7
            and "N" not in joined  # NaN, sNaN
            and "I" not in joined  # Infinity
            and (len(joined) <= _PLAIN_LIMIT or max(map(len, texts)) <= _PLAIN_LIMIT)
        ):
            return texts
    _check_column(table, column, values)
    return [None if v is None else format_decimal(v) for v in values]


def _check_column(table: str, column: Column, values: Sequence[Any]) -> None:
    # text repeats (exchange, inst_id, side): check each distinct string once; numbers rarely repeat
    present: Any = values
    if column.kind is Kind.TEXT:
        try:
            present = set(values)
        except TypeError:  # an unhashable value (a dict, a list): certainly not text
            pass
    if not _column_ok(column, present):
        for value in present:  # slow path: find and name the culprit
            check_value(table, column, value)
        raise AssertionError(f"{table}.{column.name}: column refused but no value is")  # pragma: no cover


def _column_ok(column: Column, values: Any) -> bool:
    types = set(map(type, values))
    if type(None) in types:
        if not column.nullable:
            return False
        types.discard(type(None))
        values = [v for v in values if v is not None]
    if not types:
        return True
    if types != {_EXACT_TYPE[column.kind]}:
        return False
    return _AGGREGATE[column.kind](column, values)


def _text_ok(column: Column, values: Any) -> bool:
    if column.max_length is not None and max(map(len, values)) > column.max_length:
        return False
    joined = "".join(values)
    if "\x00" in joined:
        return False
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def _range_ok(low: int, high: int) -> Callable[[Column, Any], bool]:
    return lambda _column, values: low <= min(values) and max(values) <= high


def _decimals_ok(_column: Column, values: Any) -> bool:
    try:
        if not (-_DECIMAL_LIMIT < min(values) and max(values) < _DECIMAL_LIMIT):  # NaN raises, Infinity fails
            return False
        # an exact sum has the smallest exponent of its terms: one look at it checks every value's scale
        total = functools.reduce(_EXACT.add, values)
    except ArithmeticError:
        return False
    return _exponent(total) >= _MIN_EXPONENT


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


_AGGREGATE: Final[dict[Kind, Callable[[Column, Any], bool]]] = {
    Kind.TEXT: _text_ok,
    Kind.INT: _range_ok(*_INT8),
    Kind.INT4: _range_ok(*_INT4),
    Kind.DECIMAL: _decimals_ok,
    Kind.TIME: _range_ok(*_TIME),
    Kind.BOOL: lambda _column, _values: True,
}


def _text_problem(column: Column, value: str) -> str | None:
    if column.max_length is not None and len(value) > column.max_length:
        return f"{len(value)} characters, the column holds {column.max_length}"
    if "\x00" in value:
        return "NUL byte in text"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not encodable as UTF-8 ({exc.reason})"
    return None


def _range_problem(low: int, high: int, problem: str) -> Callable[[Column, int], str | None]:
    return lambda _column, value: None if low <= value <= high else problem


def _decimal_problem(_column: Column, value: Decimal) -> str | None:
    if not value.is_finite():
        return "non-finite decimal"
    if not -_DECIMAL_LIMIT < value < _DECIMAL_LIMIT:
        return "too large for a database numeric (1E+131072)"
    if _exponent(value) < _MIN_EXPONENT:
        return "more than 16383 digits after the point"
    return None


_PROBLEMS: Final[dict[Kind, Callable[[Column, Any], str | None]]] = {
    Kind.TEXT: _text_problem,
    Kind.INT: _range_problem(*_INT8, "does not fit a 64-bit integer"),
    Kind.INT4: _range_problem(*_INT4, "does not fit a 32-bit integer"),
    Kind.DECIMAL: _decimal_problem,
    Kind.TIME: _range_problem(*_TIME, "outside years 1..9999 (milliseconds)"),
    Kind.BOOL: lambda _column, _value: None,
}
