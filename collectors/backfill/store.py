"""The reads a backfill plans and re-aggregates from (blocking SQLAlchemy; run them in a thread from async code).

Driver errors become :class:`~collectors.errors.StorageError` through
:func:`~collectors.storage.engine.storage_error`, like ``collectors.storage.reads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors.backfill.plan import CoverageEntry
from collectors.model import Candle, DataType, Side, Trade
from collectors.storage.engine import storage_error
from collectors.storage.reads import candle_from_row
from collectors.storage.records import CoverageStatus
from collectors.storage.schema import CandleRow, CoverageRow, TradeRow

__all__ = ["IdGap", "candles_in", "coverage_in", "missing_ids", "trade_count", "trades_in"]

_MAX_GAPS: Final = 100_000  # id gaps read per range: a range with more is backfilled by a later run

IdGap = tuple[int, int, int | None, int | None]  # first missing id, last missing id, ts before, ts after


def _rows(engine: Engine, query: Select[Any], table: str) -> list[Any]:
    try:
        with Session(engine) as session:
            return list(session.execute(query))
    except SQLAlchemyError as exc:
        raise storage_error(exc, table=table, action="reading") from exc


def coverage_in(
    engine: Engine, *, exchange: str, inst_id: str, start_ms: int, end_ms: int
) -> list[CoverageEntry]:
    """Trade coverage rows of ``inst_id`` overlapping ``[start_ms, end_ms)``, by start."""
    c = CoverageRow
    query = (
        select(c.start_time, c.end_time, c.status, c.reason)
        .where(c.exchange == exchange, c.inst_id == inst_id, c.data_type == DataType.TRADES.value)
        .where(c.start_time < end_ms, c.end_time > start_ms)
        .order_by(c.start_time)
    )
    return [
        CoverageEntry(start_ms=int(s), end_ms=int(e), status=CoverageStatus(st), reason=r)
        for s, e, st, r in _rows(engine, query, "coverage")
    ]


def missing_ids(engine: Engine, *, exchange: str, inst_id: str, after_id: int, before_id: int) -> list[IdGap]:
    """Runs of ids ``after_id < id < before_id`` not stored, with the ts of the stored trade just below and
    just above each run (None at the range's edges). One aggregate when nothing is missing (the common case),
    a LAG over the stored ids of the range otherwise."""
    t = TradeRow
    where = (t.exchange == exchange, t.inst_id == inst_id, t.trade_id > after_id, t.trade_id < before_id)
    count_q = select(func.count(), func.min(t.trade_id), func.max(t.trade_id)).where(*where)
    [(count, low, high)] = _rows(engine, count_q, "trades")
    wanted = before_id - after_id - 1
    if count == wanted:
        return []
    if count == 0:
        return [(after_id + 1, before_id - 1, None, None)]
    gaps: list[IdGap] = []
    low, high = int(low), int(high)
    if low > after_id + 1:
        gaps.append((after_id + 1, low - 1, None, _ts_of(engine, exchange, inst_id, low)))
    previous_id = func.lag(t.trade_id, type_=t.trade_id.type).over(order_by=t.trade_id)
    previous_ts = func.lag(t.ts, type_=t.ts.type).over(order_by=t.trade_id)
    rows = select(
        t.trade_id.label("id"), t.ts.label("ts"), previous_id.label("prev_id"), previous_ts.label("prev_ts")
    ).where(*where)
    sub = rows.subquery()
    query = (
        select(sub.c.prev_id, sub.c.id, sub.c.prev_ts, sub.c.ts)
        .where(sub.c.id > sub.c.prev_id + 1)
        .order_by(sub.c.id)
        .limit(_MAX_GAPS)
    )
    gaps.extend((int(p) + 1, int(i) - 1, int(pt), int(ts)) for p, i, pt, ts in _rows(engine, query, "trades"))
    if high < before_id - 1:
        gaps.append((high + 1, before_id - 1, _ts_of(engine, exchange, inst_id, high), None))
    return gaps


def _ts_of(engine: Engine, exchange: str, inst_id: str, trade_id: int) -> int:
    t = TradeRow
    query = select(t.ts).where(t.exchange == exchange, t.inst_id == inst_id, t.trade_id == trade_id)
    [(ts,)] = _rows(engine, query, "trades")
    return int(ts)


def trades_in(engine: Engine, *, exchange: str, inst_id: str, start_ms: int, end_ms: int) -> list[Trade]:
    """Stored trades of ``inst_id`` with ``start_ms <= ts < end_ms``, in id order."""
    t = TradeRow
    query = (
        select(t.trade_id, t.ts, t.price, t.size, t.side, t.recv_time, t.source)
        .where(t.exchange == exchange, t.inst_id == inst_id, t.ts >= start_ms, t.ts < end_ms)
        .order_by(t.trade_id)
    )
    return [
        Trade(
            exchange=exchange,
            inst_id=inst_id,
            trade_id=int(i),
            ts_ms=int(ts),
            price=p,
            size=s,
            side=Side(side),
            recv_ms=None if recv is None else int(recv),
            source=src,
        )
        for i, ts, p, s, side, recv, src in _rows(engine, query, "trades")
    ]


def trade_count(engine: Engine, *, exchange: str, inst_id: str, start_ms: int, end_ms: int) -> int:
    """Stored trades of ``inst_id`` with ``start_ms <= ts < end_ms`` (one aggregate)."""
    t = TradeRow
    query = select(func.count()).where(
        t.exchange == exchange, t.inst_id == inst_id, t.ts >= start_ms, t.ts < end_ms
    )
    [(count,)] = _rows(engine, query, "trades")
    return int(count)


def candles_in(
    engine: Engine,
    *,
    exchange: str,
    inst_id: str,
    timeframes: Sequence[str],
    start_ms: int,
    end_ms: int,
) -> dict[tuple[str, int], Candle]:
    """Stored candles of ``inst_id`` in ``timeframes`` opening in ``[start_ms, end_ms)``, by (timeframe, open)."""
    c = CandleRow
    query = select(c).where(
        c.exchange == exchange,
        c.inst_id == inst_id,
        c.timeframe.in_(list(timeframes)),
        c.open_time >= start_ms,
        c.open_time < end_ms,
    )
    out: dict[tuple[str, int], Candle] = {}
    for (row,) in _rows(engine, query, "candles"):
        out[(row.timeframe, int(row.open_time))] = candle_from_row(row)
    return out
