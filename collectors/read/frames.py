"""Stored rows -> pandas DataFrames with exact values: the read API's one representation. Pure.

* Prices, sizes and every other ``NUMERIC``/decimal-text column: :class:`~decimal.Decimal` objects in an
  ``object`` column (``None`` where the column is nullable and empty). The value is the stored one with its
  scale (``43210.50`` stays ``Decimal('43210.50')``) on both databases: SQLite keeps decimals as text and the
  column type turns that text into the same ``Decimal`` PostgreSQL's ``numeric`` gives.
* Instants: ``datetime64[ns, UTC]`` (tz-aware UTC; ``NaT`` where the column is nullable and empty). Stored
  instants are whole milliseconds, so the conversion is exact.
* Integers: ``int64``, or pandas' nullable ``Int64`` for nullable columns; booleans ``bool``; text ``object``.
* Book sides (``bids``/``asks``): a tuple of ``(price, size, orders)`` levels, best first, price and size
  ``Decimal``, orders ``int`` or ``None`` (the stored JSON holds the decimal text exactly).

The column kinds come from :mod:`collectors.storage.tables` (which reads them from the schema), so a column
added to the schema is converted by the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in requirements.txt

from collectors.storage.tables import Kind, TableSpec

__all__ = ["BOOK_SIDES", "TIME_DTYPE", "BookLevelTuple", "empty_frame", "frame_from_rows", "parse_levels"]

TIME_DTYPE: Final = "datetime64[ns, UTC]"
BOOK_SIDES: Final = ("bids", "asks")

BookLevelTuple = tuple[Decimal, Decimal, int | None]


def parse_levels(text: str) -> tuple[BookLevelTuple, ...]:
    """A stored book side (``[["43210.5","0.01",3], ...]``) as ``((Decimal, Decimal, orders), ...)``."""
    return tuple(
        (Decimal(price), Decimal(size), None if orders is None else int(orders))
        for price, size, orders in json.loads(text)
    )


def _column(values: Sequence[Any], kind: Kind, nullable: bool) -> pd.Series:
    if kind is Kind.TIME:
        if any(isinstance(v, datetime) for v in values):  # PostgreSQL's own values: one vectorised pass
            return pd.Series(pd.to_datetime(list(values), utc=True), dtype=TIME_DTYPE)
        ints = pd.Series(values, dtype="Int64")
        return pd.to_datetime(ints, unit="ms", utc=True).astype(TIME_DTYPE)
    if kind in (Kind.INT, Kind.INT4):
        return pd.Series(values, dtype="Int64" if nullable else "int64")
    if kind is Kind.BOOL:
        return pd.Series(values, dtype="bool")
    return pd.Series(values, dtype=object)  # Decimal, str, None: kept as the objects they are


def frame_from_rows(
    spec: TableSpec, names: Sequence[str], rows: Sequence[Sequence[Any]], *, nullable: Sequence[str] = ()
) -> pd.DataFrame:
    """A DataFrame of ``rows`` (values in the order of ``names``, each a column of ``spec``; instants as
    integer milliseconds or aware datetimes), converted by the column kinds; ``nullable`` names columns that may hold ``None`` although the table says otherwise (a
    rolled-up candle's ``updated_at``). Book sides are parsed into level tuples."""
    columns = {c.name: c for c in spec.columns}
    data: dict[str, pd.Series] = {}
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        column = columns[name]
        if spec.table == "book_snapshots" and name in BOOK_SIDES:
            data[name] = pd.Series([parse_levels(v) for v in values], dtype=object)
            continue
        data[name] = _column(values, column.kind, column.nullable or name in nullable)
    return pd.DataFrame(data, columns=list(names))


def empty_frame(spec: TableSpec, names: Sequence[str]) -> pd.DataFrame:
    """The frame of no rows, with the same columns and dtypes a non-empty read gives."""
    return frame_from_rows(spec, names, [])
