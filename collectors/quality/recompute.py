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

_WATCHED = (CoverageStatus.COLLECTED, CoverageStatus.BACKFILLED)


def no_data_spans(spans: Sequence[CoverageSpan], start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """The time of ``[start_ms, end_ms)`` whose trades are not all known, from the coverage ledger's ``spans``:
    what no ``collected`` / ``backfilled`` span covers (before a collector's start, between sessions), every
    ``unrecoverable`` span, and every ``gap`` no ``backfilled`` span covers (still open). A ``gap`` or an
    ``unrecoverable`` span lies inside the ``collected`` time it was found in, so watching does not clear it.
    Candles overlapping the result are incomplete: the backfill's rule (``backfill/finish.py``), and the live
    engine's for its holes and outages."""
    lost = SpanSet([(start_ms, end_ms)])
    for span in spans:
        if span.status in _WATCHED:
            lost.remove(span.start_ms, span.end_ms)
    open_gaps = SpanSet((s.start_ms, s.end_ms) for s in spans if s.status is CoverageStatus.GAP)
    for span in spans:
        if span.status is CoverageStatus.BACKFILLED:
            open_gaps.remove(span.start_ms, span.end_ms)
    for start, end in open_gaps:
        lost.add(start, end)
    for span in spans:
        if span.status is CoverageStatus.UNRECOVERABLE:
            lost.add(span.start_ms, span.end_ms)
    return [(max(a, start_ms), min(b, end_ms)) for a, b in lost if min(b, end_ms) > max(a, start_ms)]


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
