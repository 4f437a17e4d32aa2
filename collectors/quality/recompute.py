"""Candles recomputed from stored trades by the candle engine's batch path, over a complete range."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from collectors.candles import EmptyPolicy, aggregate_frame
from collectors.model import Candle, CandleSource, DataType
from collectors.quality.reads import coverage_spans
from collectors.quality.trade_frame import read_trade_frame
from collectors.storage.reads import close_before
from collectors.storage.records import no_data_spans

__all__ = ["no_data_spans", "recompute"]  # no_data_spans lives in collectors.storage.records


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
    before ``start_ms``; a candle is complete only when its whole bucket is watched and no loss touches it
    (:func:`no_data_spans`)."""
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
        no_data=no_data_spans(spans, start_ms, end_ms),
        source=CandleSource.REAGGREGATE,
        complete_range=(start_ms, end_ms),
        previous_close=previous,
    )
    return candles, len(trades)
