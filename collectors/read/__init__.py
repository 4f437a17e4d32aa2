"""Reading the stored data back: trades, candles (stored or rolled up from 1m), book snapshots, tickers, the
exchange's candles and the coverage ledger of a pair over a UTC range, as pandas DataFrames with exact values,
whole or in chunks, with the same answers on PostgreSQL and SQLite. See docs/read.md.

* :class:`MarketData`: the reader (:mod:`collectors.read.api`).
* :mod:`collectors.read.frames`: the exact representation (``Decimal`` objects, ``datetime64[ns, UTC]``).
* :mod:`collectors.read.export`: the same frames into CSV or Parquet files, and :func:`~collectors.read.export.load_export` back.
"""

from __future__ import annotations

from collectors.read.api import (
    DEFAULT_CHUNK_ROWS,
    KINDS,
    ROLLUP_SOURCE,
    CandleOrigin,
    Instant,
    MarketData,
    to_ms,
)
from collectors.read.frames import TIME_DTYPE, parse_levels

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "KINDS",
    "ROLLUP_SOURCE",
    "TIME_DTYPE",
    "CandleOrigin",
    "Instant",
    "MarketData",
    "parse_levels",
    "to_ms",
]
