"""Small reads the live collectors need on start: where the stored tape of an instrument ends.

Blocking SQLAlchemy calls (run them in a thread from async code). Driver errors become
:class:`~collectors.errors.StorageError` (transient when the database is away) through
:func:`~collectors.storage.engine.storage_error`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors.model import Candle, CandleSource, Side, Trade
from collectors.storage.engine import storage_error
from collectors.storage.schema import CandleRow, RejectedMessageRow, TradeRow

__all__ = [
    "candle_count",
    "close_before",
    "last_trade",
    "rejected_count",
    "stored_holes",
    "trade_values",
    "trades_from",
]


def candle_from_row(row: Any) -> Candle:
    """A stored ``candles`` row (an ORM ``CandleRow`` or a result row with its column names) as a :class:`Candle`:
    the one mapping from the table's columns to the model's fields."""
    return Candle(
        exchange=row.exchange,
        inst_id=row.inst_id,
        timeframe=row.timeframe,
        open_time_ms=int(row.open_time),
        open=row.open,
        high=row.high,
        low=row.low,
        close=row.close,
        volume=row.volume,
        quote_volume=row.quote_volume,
        trade_count=row.trade_count,
        buy_volume=row.buy_volume,
        sell_volume=row.sell_volume,
        first_trade_id=row.first_trade_id,
        last_trade_id=row.last_trade_id,
        first_trade_ms=row.first_trade_time,
        last_trade_ms=row.last_trade_time,
        is_closed=row.is_closed,
        is_complete=row.is_complete,
        source=CandleSource(row.source),
        revision=row.revision,
    )


def _trade(row: TradeRow) -> Trade:
    return Trade(
        exchange=row.exchange,
        inst_id=row.inst_id,
        trade_id=row.trade_id,
        ts_ms=row.ts,
        price=row.price,
        size=row.size,
        side=Side(row.side),
        recv_ms=row.recv_time,
        source=row.source,
    )


def last_trade(engine: Engine, *, exchange: str, inst_id: str) -> Trade | None:
    """The stored trade with the highest id of ``inst_id`` (None when none is stored)."""
    query = (
        select(TradeRow)
        .where(TradeRow.exchange == exchange, TradeRow.inst_id == inst_id)
        .order_by(TradeRow.trade_id.desc())
        .limit(1)
    )
    try:
        with Session(engine) as session:
            row = session.scalars(query).first()
            return None if row is None else _trade(row)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc


def trades_from(engine: Engine, *, exchange: str, inst_id: str, from_ms: int, limit: int) -> list[Trade]:
    """Stored trades of ``inst_id`` with ``ts >= from_ms``, in trade-id order, at most ``limit`` of them."""
    query = (
        select(TradeRow)
        .where(TradeRow.exchange == exchange, TradeRow.inst_id == inst_id, TradeRow.ts >= from_ms)
        .order_by(TradeRow.trade_id)
        .limit(limit)
    )
    try:
        with Session(engine) as session:
            return [_trade(row) for row in session.scalars(query)]
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc


def close_before(engine: Engine, *, exchange: str, inst_id: str, before_ms: int) -> Decimal | None:
    """The price of the last stored trade (highest id) with ``ts < before_ms``: the close a restarted candle
    engine is seeded with (None when no trade is stored before)."""
    query = (
        select(TradeRow.price)
        .where(TradeRow.exchange == exchange, TradeRow.inst_id == inst_id, TradeRow.ts < before_ms)
        .order_by(TradeRow.trade_id.desc())
        .limit(1)
    )
    try:
        with Session(engine) as session:
            price = session.scalars(query).first()
            return price
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc


def trade_values(engine: Engine, *, exchange: str, inst_id: str) -> list[tuple[int, int, str, str, str]]:
    """Every stored trade of ``inst_id`` as ``(trade_id, ts_ms, price, size, side)`` text values, in id order
    (the demo compares them with the simulator's truth)."""
    query = (
        select(TradeRow.trade_id, TradeRow.ts, TradeRow.price, TradeRow.size, TradeRow.side)
        .where(TradeRow.exchange == exchange, TradeRow.inst_id == inst_id)
        .order_by(TradeRow.trade_id)
    )
    try:
        with Session(engine) as session:
            return [
                (int(i), int(ts), str(p), str(s), str(side)) for i, ts, p, s, side in session.execute(query)
            ]
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc


def candle_count(engine: Engine, *, exchange: str, inst_id: str) -> int:
    """Stored candle rows of ``inst_id`` over every timeframe."""
    query = select(func.count()).where(CandleRow.exchange == exchange, CandleRow.inst_id == inst_id)
    try:
        with Session(engine) as session:
            return int(session.scalar(query) or 0)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="candles", action="reading") from exc


def rejected_count(engine: Engine, *, exchange: str) -> int:
    """Stored rejected messages of ``exchange`` (frames and REST rows refused)."""
    query = select(func.count()).where(RejectedMessageRow.exchange == exchange)
    try:
        with Session(engine) as session:
            return int(session.scalar(query) or 0)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="rejected_messages", action="reading") from exc


def stored_holes(
    engine: Engine,
    *,
    exchange: str,
    inst_id: str,
    from_ms: int,
    to_ms: int | None = None,
    limit: int = 10_000,
) -> list[tuple[int, int, int, int]]:
    """Id spans missing between stored trades of ``inst_id`` with ``from_ms <= ts`` (``< to_ms`` when given),
    as ``(first_missing_id, last_missing_id, ts_before_ms, ts_after_ms)`` in id order (at most ``limit``). On a
    tape with contiguous ids (``trades-all``) each is a hole: one a previous session left (a kill -9 while REST
    was still filling it), or rows lost since."""
    in_range = [TradeRow.exchange == exchange, TradeRow.inst_id == inst_id, TradeRow.ts >= from_ms]
    if to_ms is not None:
        in_range.append(TradeRow.ts < to_ms)
    previous_id = func.lag(TradeRow.trade_id, type_=TradeRow.trade_id.type).over(order_by=TradeRow.trade_id)
    previous_ts = func.lag(TradeRow.ts, type_=TradeRow.ts.type).over(order_by=TradeRow.trade_id)
    rows = (
        select(
            TradeRow.trade_id.label("id"),
            TradeRow.ts.label("ts"),
            previous_id.label("prev_id"),
            previous_ts.label("prev_ts"),
        )
        .where(*in_range)
        .subquery()
    )
    query = (
        select(rows.c.prev_id, rows.c.id, rows.c.prev_ts, rows.c.ts)
        .where(rows.c.id > rows.c.prev_id + 1)
        .order_by(rows.c.id)
        .limit(limit)
    )
    try:
        with Session(engine) as session:
            return [(int(p) + 1, int(i) - 1, int(pt), int(t)) for p, i, pt, t in session.execute(query)]
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc
