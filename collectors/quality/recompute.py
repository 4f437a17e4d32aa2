"""Candles recomputed from stored trades by the candle engine's batch path, over a complete range."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from collectors.candles import EmptyPolicy, aggregate_frame
from collectors.candles.spans import SpanSet
from collectors.model import Candle, CandleSource, DataType
from collectors.quality.reads import coverage_spans
from collectors.quality.trade_frame import read_trade_frame
from collectors.storage.reads import close_before
from collectors.storage.records import CoverageSpan, CoverageStatus

__all__ = ["no_data_spans", "recompute"]

_KNOWN = (CoverageStatus.COLLECTED, CoverageStatus.BACKFILLED)
_LOST = (CoverageStatus.GAP, CoverageStatus.UNRECOVERABLE)


def no_data_spans(spans: Sequence[CoverageSpan]) -> list[tuple[int, int]]:
    """Spans the ledger marks ``gap`` or ``unrecoverable`` and no ``collected`` / ``backfilled`` span covers:
    candles overlapping them are incomplete, as the live engine marks them."""
    lost = SpanSet((s.start_ms, s.end_ms) for s in spans if s.status in _LOST)
    for span in spans:
        if span.status in _KNOWN:
            lost.remove(span.start_ms, span.end_ms)
    return list(lost)


def recompute(
    engine: Engine,
    *,
    exchange: str,
    inst_id: str,
    timeframes: Sequence[str],
    start_ms: int,
    end_ms: int,
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP,
) -> tuple[dict[str, list[Candle]], int]:
    """The candles of every bucket entirely inside ``[start_ms, end_ms)`` from the stored trades of that range,
    and the number of trades read. Carried candles (``empty_policy`` carry) start from the last stored close
    before ``start_ms``; unresolved gaps of the coverage ledger make the candles they touch incomplete."""
    trades = read_trade_frame(engine, exchange=exchange, inst_id=inst_id, start_ms=start_ms, end_ms=end_ms)
    spans = coverage_spans(
        engine,
        exchange=exchange,
        inst_id=inst_id,
        data_type=DataType.TRADES,
        start_ms=start_ms,
        end_ms=end_ms,
    )
    previous = None
    if empty_policy is EmptyPolicy.CARRY:
        previous = close_before(engine, exchange=exchange, inst_id=inst_id, before_ms=start_ms)
    candles = aggregate_frame(
        trades.frame,
        instrument=trades.instrument,
        timeframes=timeframes,
        empty_policy=empty_policy,
        no_data=no_data_spans(spans),
        source=CandleSource.REAGGREGATE,
        complete_range=(start_ms, end_ms),
        previous_close=previous,
    )
    return candles, len(trades)
