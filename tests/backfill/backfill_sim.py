"""Helpers of the backfill tests: a backfill on the simulator, holes cut into a stored true tape, the truth.

The simulator and the tape come from tests/live/sim_run.py (one home); the checks compare values with
``/sim/tape`` and with the candle engine run on the true tape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from collectors.backfill import BackfillSettings, Request, RunSummary, open_backfill, run_backfill
from collectors.backfill.run import Progress
from collectors.candles import reaggregate_trades
from collectors.exchanges.okx.limits import OKX_REST_QUOTAS
from collectors.model import Candle, Trade
from collectors.ratelimit import RateLimiter
from collectors.storage.schema import CandleRow, CoverageRow, ExchangeCandleRow, TradeRow
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter
from okx_simulator import SimulatorServer
from tests.live.sim_run import short_backoff

MINUTE_MS = 60_000
FIELDS = (
    "open", "high", "low", "close", "volume", "quote_volume", "trade_count", "buy_volume", "sell_volume",
    "first_trade_id", "last_trade_id",
)  # fmt: skip


async def backfill(
    sim: SimulatorServer,
    db: Engine,
    request: Request,
    *,
    share: float = 1.0,
    timeframes: Sequence[str] = ("1m", "5m"),
    on_progress: Callable[[Progress], None] | None = None,
    rest_backoff: Callable[[], Iterator[float]] = short_backoff,
    chunk_attempts: int = 3,
    limiter: RateLimiter | None = None,
    **settings: Any,
) -> RunSummary:
    """One backfill on ``sim``: with its own limiter (``share`` of OKX's quotas), as a new process has, or with
    ``limiter``, as the next run of one process has (it knows the requests of the last window)."""
    limiter = limiter if limiter is not None else RateLimiter(quotas=OKX_REST_QUOTAS, share=share)
    options = BackfillSettings(default_timeframes=tuple(timeframes), **settings)
    async with open_backfill(
        db=db, rest_url=sim.rest_url, limiter=limiter, settings=options, rest_backoff=rest_backoff
    ) as bf:
        return await run_backfill(bf, request, on_progress=on_progress, chunk_attempts=chunk_attempts)


async def sim_stats(sim: SimulatorServer) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sim.control_url}/stats")
    stats: dict[str, Any] = response.json()
    return stats


async def clear_faults(sim: SimulatorServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.delete(f"{sim.control_url}/faults")
    assert response.status_code == 200, response.text


async def store(db: Engine, records: Sequence[object]) -> None:
    async with BatchWriter(open_sink(db)) as writer:
        await writer.put_many(list(records))


def cut(db: Engine, inst_id: str, first_id: int, last_id: int) -> int:
    """Delete stored trades ``first_id..last_id`` (the hole a lost batch or a bad restore leaves)."""
    with Session(db) as session, session.begin():
        result = session.execute(
            delete(TradeRow).where(
                TradeRow.inst_id == inst_id, TradeRow.trade_id >= first_id, TradeRow.trade_id <= last_id
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def true_candles(tape: Sequence[Trade], inst_id: str, timeframes: Sequence[str]) -> dict[str, list[Candle]]:
    """The engine on the true tape, complete buckets only (the first one of the visible tape is partial)."""
    first = (tape[0].ts_ms // MINUTE_MS + 1) * MINUTE_MS
    last = tape[-1].ts_ms // MINUTE_MS * MINUTE_MS
    return reaggregate_trades(
        tape, exchange="okx", inst_id=inst_id, timeframes=timeframes, complete_range=(first, last)
    )


def candle_values(candles: Sequence[Candle]) -> list[tuple[object, ...]]:
    return [(c.timeframe, c.open_time_ms, *(getattr(c, f) for f in FIELDS)) for c in candles]


def stored_candles(
    db: Engine, inst_id: str, timeframe: str, start_ms: int, end_ms: int
) -> list[tuple[object, ...]]:
    """Stored candles of ``inst_id`` opening in ``[start_ms, end_ms)``, as :func:`candle_values` gives them."""
    with Session(db) as session:
        rows = session.scalars(
            select(CandleRow)
            .where(CandleRow.inst_id == inst_id, CandleRow.timeframe == timeframe)
            .where(CandleRow.open_time >= start_ms, CandleRow.open_time < end_ms)
            .order_by(CandleRow.open_time)
        )
        return [(r.timeframe, r.open_time, *(getattr(r, f) for f in FIELDS)) for r in rows]


def revisions(db: Engine, inst_id: str) -> dict[tuple[str, int], int]:
    with Session(db) as session:
        rows = session.execute(
            select(CandleRow.timeframe, CandleRow.open_time, CandleRow.revision).where(
                CandleRow.inst_id == inst_id
            )
        )
        return {(tf, int(t)): int(r) for tf, t, r in rows}


def row_counts(db: Engine) -> dict[str, int]:
    """Rows per table a backfill writes (a second run must add none)."""
    with Session(db) as session:
        return {
            row.__tablename__: int(session.scalar(select(func.count()).select_from(row)) or 0)
            for row in (TradeRow, CandleRow, CoverageRow, ExchangeCandleRow)
        }


def coverage(db: Engine, inst_id: str) -> list[tuple[int, int, str, str | None]]:
    with Session(db) as session:
        rows = session.execute(
            select(CoverageRow.start_time, CoverageRow.end_time, CoverageRow.status, CoverageRow.reason)
            .where(CoverageRow.inst_id == inst_id)
            .order_by(CoverageRow.start_time, CoverageRow.status)
        )
        return [(int(s), int(e), st, r) for s, e, st, r in rows]
