"""Re-aggregation: rerun the candle engine over stored trades and upsert the candles that differ.

A range is widened to complete buckets of every timeframe (:func:`~collectors.candles.reaggregation_window`)
and cut into chunks whose edges are bucket edges of every timeframe (:func:`plan_chunks`, a day by default),
so each chunk yields only complete candles and can run on its own (one Prefect task per chunk). A chunk reads
its trades (:mod:`~collectors.quality.trade_frame`), recomputes with the engine's batch path, compares with
the stored candles and writes only the new and changed ones through the
:class:`~collectors.storage.writer.BatchWriter` (``source`` = reaggregate; the upsert raises ``revision``).
Running it again changes nothing. Candles whose bucket has not ended at ``now_ms`` belong to the live engine
and are neither compared nor written. A stored candle with trades but no stored trade in its bucket is
reported (``unbacked``) and left alone: re-aggregation never deletes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from collectors.candles import EmptyPolicy, reaggregation_window
from collectors.model import Candle, Timeframe
from collectors.quality.compare import CandleChange, ChangeKind, compare_candles, inside
from collectors.quality.reads import stored_candles
from collectors.quality.recompute import recompute
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions

__all__ = ["DAY_MS", "ChunkResult", "plan_chunks", "reaggregate_chunk", "reaggregate_range"]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkResult:
    """What one chunk did: trades read, candles recomputed, the differences found and candles written."""

    inst_id: str
    start_ms: int
    end_ms: int
    trades: int
    candles: int
    changes: tuple[CandleChange, ...] = field(default=())
    written: int = 0

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for c in self.changes if c.kind is kind)


def plan_chunks(
    start_ms: int, end_ms: int, timeframes: Sequence[str], *, chunk_ms: int = DAY_MS
) -> list[tuple[int, int]]:
    """``[start_ms, end_ms)`` widened to complete buckets of every timeframe, cut into consecutive chunks of
    about ``chunk_ms`` whose edges are bucket edges of every timeframe (a chunk may be longer: a week with
    ``1w``)."""
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
    start, end = reaggregation_window(start_ms, end_ms, timeframes)
    chunks = []
    edge = start
    while edge < end:
        _, next_edge = reaggregation_window(edge, min(edge + chunk_ms, end), timeframes)
        chunks.append((edge, next_edge))
        edge = next_edge
    return chunks


def _closed(
    candles: Sequence[Candle], tf: Timeframe, start_ms: int, end_ms: int, now_ms: int
) -> list[Candle]:
    return inside(candles, tf, start_ms, min(end_ms, now_ms))


async def reaggregate_chunk(
    engine: Engine,
    *,
    exchange: str,
    inst_id: str,
    timeframes: Sequence[str],
    start_ms: int,
    end_ms: int,
    now_ms: int,
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP,
    dry_run: bool = False,
    writer_options: WriterOptions | None = None,
) -> ChunkResult:
    """Re-aggregate one chunk (edges on every timeframe's bucket grid, see :func:`plan_chunks`) and upsert the
    new and changed candles unless ``dry_run``. Raises ``StorageError`` when reading or writing fails."""
    fresh, trades = await asyncio.to_thread(
        recompute,
        engine,
        exchange=exchange,
        inst_id=inst_id,
        timeframes=timeframes,
        start_ms=start_ms,
        end_ms=end_ms,
        empty_policy=empty_policy,
    )
    stored = await asyncio.to_thread(
        stored_candles,
        engine,
        exchange=exchange,
        inst_id=inst_id,
        timeframes=timeframes,
        start_ms=start_ms,
        end_ms=end_ms,
    )
    changes: list[CandleChange] = []
    candles = 0
    for name in timeframes:
        tf = Timeframe.parse(name)
        mine = _closed(fresh.get(name, []), tf, start_ms, end_ms, now_ms)
        candles += len(mine)
        changes += compare_candles(_closed(stored[name], tf, start_ms, end_ms, now_ms), mine)
    upserts = [c.recomputed for c in changes if c.recomputed is not None]
    if upserts and not dry_run:
        async with BatchWriter(open_sink(engine), options=writer_options) as writer:
            await writer.put_many(upserts)
    return ChunkResult(
        inst_id=inst_id,
        start_ms=start_ms,
        end_ms=end_ms,
        trades=trades,
        candles=candles,
        changes=tuple(changes),
        written=0 if dry_run else len(upserts),
    )


async def reaggregate_range(
    engine: Engine,
    *,
    exchange: str,
    inst_id: str,
    timeframes: Sequence[str],
    start_ms: int,
    end_ms: int,
    now_ms: int,
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP,
    dry_run: bool = False,
    chunk_ms: int = DAY_MS,
) -> list[ChunkResult]:
    """Every chunk of :func:`plan_chunks` in turn (the CLI's way; the flow runs one task per chunk)."""
    results = []
    for chunk_start, chunk_end in plan_chunks(start_ms, end_ms, timeframes, chunk_ms=chunk_ms):
        results.append(
            await reaggregate_chunk(
                engine,
                exchange=exchange,
                inst_id=inst_id,
                timeframes=timeframes,
                start_ms=chunk_start,
                end_ms=chunk_end,
                now_ms=now_ms,
                empty_policy=empty_policy,
                dry_run=dry_run,
            )
        )
    return results
