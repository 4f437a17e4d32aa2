"""What a restarted pair needs to know about its coverage ledger (blocking reads: run them in a thread).

A session writes its ``collected`` coverage every ``coverage_interval_ms`` and at a clean stop; a kill -9 (or a
crash) loses the span since its last row although its trades are stored. :func:`uncovered_from` finds where the
ledger of a pair's trades stops, so the restarted core records the span up to the last stored trade.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors.model import DataType
from collectors.storage.engine import storage_error
from collectors.storage.records import CoverageStatus
from collectors.storage.schema import CoverageRow, TradeRow

__all__ = ["uncovered_from"]

_COVERED = (CoverageStatus.COLLECTED.value, CoverageStatus.BACKFILLED.value)


def uncovered_from(engine: Engine, *, exchange: str, inst_id: str, since_ms: int) -> int | None:
    """The start of the stored trades of ``inst_id`` the ledger does not cover, looking back to ``since_ms``:
    the end of the newest ``collected`` or ``backfilled`` span, or, when that ends before ``since_ms`` (or there
    is none), the first stored trade at or after ``since_ms``. None when nothing is stored since then."""
    ledger = select(func.max(CoverageRow.end_time)).where(
        CoverageRow.exchange == exchange,
        CoverageRow.inst_id == inst_id,
        CoverageRow.data_type == DataType.TRADES.value,
        CoverageRow.status.in_(_COVERED),
    )
    first = select(func.min(TradeRow.ts)).where(
        TradeRow.exchange == exchange, TradeRow.inst_id == inst_id, TradeRow.ts >= since_ms
    )
    try:
        with Session(engine) as session:
            end = session.scalar(ledger)
            if end is not None and int(end) >= since_ms:
                return int(end)
            start = session.scalar(first)
            return None if start is None else int(start)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="coverage", action="reading") from exc
