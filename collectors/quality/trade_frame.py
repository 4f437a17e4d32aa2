"""Stored trades of one pair and range as the integer frame the candle engine's batch path reads.

:func:`~collectors.candles.batch.aggregate_frame` wants prices and sizes as integer multiples of a tick and a
lot. The stored values are exact decimals of any scale, so the step is taken from the data: ``10**-k`` where
``k`` is the largest number of decimal places among the range's prices (sizes alike). Every value is then an
exact integer of steps, and the candles built from them are the same decimals.

PostgreSQL (the fast path): one ``REPEATABLE READ`` transaction reads the largest scales, then a binary
``COPY (SELECT ...) TO STDOUT`` sends five ``int8`` columns (ms, id, price and size in steps, buy flag) that
numpy reads in place: no Python object per trade. A value too large for ``int8`` in steps is a
:class:`StorageError` from the server ("bigint out of range"), never a rounded number. SQLite (tests, small
installs) reads the rows with a plain cursor and converts them in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in requirements.txt
import psycopg
from psycopg import pq, sql
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from collectors.candles import FRAME_COLUMNS
from collectors.errors import StorageError
from collectors.model import Instrument
from collectors.storage.engine import storage_error
from collectors.storage.schema import TradeRow
from collectors.storage.types import ms_to_datetime

__all__ = ["TradeFrame", "read_trade_frame"]

# Binary COPY: a 19-byte signature + flags + header-extension length, then per row an int16 field count and
# (int32 length, int64 value) per column, big-endian; the trailer is int16 -1.
_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
_ROW_BYTES: Final = 2 + 5 * (4 + 8)


@dataclass(frozen=True, slots=True)
class TradeFrame:
    """Trades of ``[start_ms, end_ms)`` with :data:`FRAME_COLUMNS`, and the instrument whose tick and lot
    they are counted in (``tick_size`` = 10**-price scale, ``lot_size`` = 10**-size scale)."""

    frame: pd.DataFrame
    instrument: Instrument

    def __len__(self) -> int:
        return len(self.frame)


def read_trade_frame(
    engine: Engine, *, exchange: str, inst_id: str, start_ms: int, end_ms: int
) -> TradeFrame:
    """The stored trades of ``inst_id`` with ``start_ms <= ts < end_ms``; raises :class:`StorageError`."""
    if end_ms <= start_ms:
        raise ValueError(f"empty or reversed range [{start_ms}, {end_ms})")
    if engine.dialect.name == "postgresql":
        return _read_postgres(engine, exchange, inst_id, start_ms, end_ms)
    return _read_generic(engine, exchange, inst_id, start_ms, end_ms)


def _instrument(exchange: str, inst_id: str, price_scale: int, size_scale: int) -> Instrument:
    base, _, quote = inst_id.partition("-")
    lot = Decimal(1).scaleb(-size_scale)
    return Instrument(
        exchange=exchange,
        inst_id=inst_id,
        base_ccy=base,
        quote_ccy=quote,
        tick_size=Decimal(1).scaleb(-price_scale),
        lot_size=lot,
        min_size=lot,
    )


def _frame(columns: dict[str, npt.NDArray[Any]]) -> pd.DataFrame:
    return pd.DataFrame({name: columns[name] for name in FRAME_COLUMNS}, copy=False)


# ---------------------------------------------------------------------------------------------- PostgreSQL

_WHERE: Final = "exchange = {exchange} AND inst_id = {inst_id} AND ts >= {start} AND ts < {end}"
_SCALES: Final = "SELECT max(scale(price)), max(scale(size)) FROM trades WHERE " + _WHERE
_COPY: Final = (
    # date_part is float8 (cheaper than extract's numeric); stored instants are whole milliseconds, so the
    # rounded product is exact (float8 error at today's epoch is under a microsecond)
    "COPY (SELECT round(date_part('epoch', ts) * 1000)::int8, trade_id, (price * {price_factor})::int8,"
    " (size * {size_factor})::int8, (side = 'buy')::int::int8 FROM trades WHERE " + _WHERE + ")"
    " TO STDOUT (FORMAT binary)"
)


def _read_postgres(engine: Engine, exchange: str, inst_id: str, start_ms: int, end_ms: int) -> TradeFrame:
    where = {
        "exchange": sql.Literal(exchange),
        "inst_id": sql.Literal(inst_id),
        "start": sql.Literal(ms_to_datetime(start_ms)),
        "end": sql.Literal(ms_to_datetime(end_ms)),
    }
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(url, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for both reads
            with conn.cursor() as cur:
                cur.execute(sql.SQL(_SCALES).format(**where))
                row = cur.fetchone()
                price_scale, size_scale = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
                query = sql.SQL(_COPY).format(
                    price_factor=sql.Literal(Decimal(1).scaleb(price_scale)),
                    size_factor=sql.Literal(Decimal(1).scaleb(size_scale)),
                    **where,
                )
            data = _copy_out(conn, query.as_bytes(conn))
            conn.rollback()
    except psycopg.Error as exc:
        raise storage_error(exc, table="trades", action="reading") from exc
    columns = _parse_binary_copy(data)
    return TradeFrame(_frame(columns), _instrument(exchange, inst_id, price_scale, size_scale))


def _copy_out(conn: psycopg.Connection[Any], query: bytes) -> bytearray:
    """The whole output of a ``COPY ... TO STDOUT``, read through libpq directly: one row is one message, and
    psycopg's ``Copy`` iterator costs about three times the CPU per message (1 s per million rows here)."""
    pgconn = conn.pgconn
    pgconn.send_query(query)
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        _drain(pgconn)
        raise _error(result, conn)
    data = bytearray()
    read = pgconn.get_copy_data
    while True:
        size, block = read(0)  # blocking; raises OperationalError when the connection fails
        if size < 0:
            break
        data += block
    result = pgconn.get_result()
    _drain(pgconn)
    if result is None or result.status != pq.ExecStatus.COMMAND_OK:
        raise _error(result, conn)
    return data


def _drain(pgconn: Any) -> None:
    while pgconn.get_result() is not None:
        pass


def _error(result: Any, conn: psycopg.Connection[Any]) -> psycopg.Error:
    if result is None:
        return psycopg.OperationalError("COPY ended without a result")
    return psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


def _parse_binary_copy(data: bytes | bytearray) -> dict[str, npt.NDArray[Any]]:
    """Five non-null int8 columns of a binary COPY, read in place by numpy (strided views, one byte swap)."""
    if not data.startswith(_SIGNATURE) or len(data) < 21 or data[-2:] != b"\xff\xff":
        raise StorageError("reading trades: not a complete binary COPY stream", transient=False)
    start = 19 + int.from_bytes(data[15:19], "big")  # after the header extension
    count, rest = divmod(len(data) - start - 2, _ROW_BYTES)
    if rest:
        raise StorageError("reading trades: truncated binary COPY stream", transient=False)
    if count == 0:
        empty = np.zeros(0, dtype=np.int64)
        return {
            "ts_ms": empty,
            "trade_id": empty,
            "price_ticks": empty,
            "size_lots": empty,
            "is_buy": empty.astype(np.bool_),
        }
    fields = np.ndarray((count,), ">i2", buffer=data, offset=start, strides=(_ROW_BYTES,))
    lengths = np.ndarray((count, 5), ">i4", buffer=data, offset=start + 2, strides=(_ROW_BYTES, 12))
    if bool(np.any(fields != 5)) or bool(np.any(lengths != 8)):
        raise StorageError("reading trades: unexpected row layout in binary COPY", transient=False)
    raw = np.ndarray((count, 5), ">i8", buffer=data, offset=start + 6, strides=(_ROW_BYTES, 12))
    values = np.ascontiguousarray(raw.T, dtype=np.int64)  # one pass: byte swap and column order
    return {
        "ts_ms": values[0],
        "trade_id": values[1],
        "price_ticks": values[2],
        "size_lots": values[3],
        "is_buy": values[4].astype(np.bool_),
    }


# ------------------------------------------------------------------------------------------ SQLite, others


def _read_generic(engine: Engine, exchange: str, inst_id: str, start_ms: int, end_ms: int) -> TradeFrame:
    query = select(TradeRow.ts, TradeRow.trade_id, TradeRow.price, TradeRow.size, TradeRow.side).where(
        TradeRow.exchange == exchange,
        TradeRow.inst_id == inst_id,
        TradeRow.ts >= start_ms,
        TradeRow.ts < end_ms,
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc
    prices = [_digits(p) for _, _, p, _, _ in rows]
    sizes = [_digits(s) for _, _, _, s, _ in rows]
    price_scale = max((scale for _, scale in prices), default=0)
    size_scale = max((scale for _, scale in sizes), default=0)
    columns = {
        "ts_ms": np.array([int(r[0]) for r in rows], dtype=np.int64),
        "trade_id": np.array([int(r[1]) for r in rows], dtype=np.int64),
        "price_ticks": _units(prices, price_scale, "price"),
        "size_lots": _units(sizes, size_scale, "size"),
        "is_buy": np.array([r[4] == "buy" for r in rows], dtype=np.bool_),
    }
    return TradeFrame(_frame(columns), _instrument(exchange, inst_id, price_scale, size_scale))


def _digits(value: Decimal) -> tuple[int, int]:
    """``Decimal`` -> (integer of its digits, scale): ``12.50`` -> (1250, 2); a positive exponent counts as 0."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), f"not a finite decimal: {value}"
    number = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    return (number * 10**exponent, 0) if exponent > 0 else (number, -exponent)


def _units(values: list[tuple[int, int]], scale: int, column: str) -> npt.NDArray[Any]:
    units = [number * 10 ** (scale - own) for number, own in values]
    if any(u >= 2**63 or u < -(2**63) for u in units):
        raise StorageError(f"reading trades: a {column} is beyond int64 steps of 1e-{scale}", transient=False)
    return np.array(units, dtype=np.int64)
