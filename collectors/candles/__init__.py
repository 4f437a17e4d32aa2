"""Candles from trades: one pure engine for live collection, backfill and re-aggregation.

See docs/candles.md for alignment, lateness, revisions, empty intervals, no-data spans and exactness.
"""

from __future__ import annotations

from collectors.candles.batch import FRAME_COLUMNS, aggregate_frame, frame_from_trades, to_units
from collectors.candles.engine import CandleEngine
from collectors.candles.events import (
    DEFAULT_ENGINE_CONFIG,
    CandleClosed,
    CandleEvent,
    CandleRevised,
    CandleUpdated,
    EmptyPolicy,
    EngineConfig,
    EngineStats,
    RevisionRequired,
)
from collectors.candles.replay import final_candles, reaggregate_trades, same_values
from collectors.candles.revise import revise_candle
from collectors.candles.rollup import rollup
from collectors.candles.window import reaggregation_window

__all__ = [
    "DEFAULT_ENGINE_CONFIG",
    "FRAME_COLUMNS",
    "CandleClosed",
    "CandleEngine",
    "CandleEvent",
    "CandleRevised",
    "CandleUpdated",
    "EmptyPolicy",
    "EngineConfig",
    "EngineStats",
    "RevisionRequired",
    "aggregate_frame",
    "final_candles",
    "frame_from_trades",
    "reaggregate_trades",
    "reaggregation_window",
    "revise_candle",
    "rollup",
    "same_values",
    "to_units",
]
