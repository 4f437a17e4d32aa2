"""Backfill: holes of the trade tape filled from OKX REST history, candles revised, coverage recorded.

See docs/backfill.md. Steps: :func:`plan` (spans -> trade-id holes -> chunks), :func:`fetch_chunk` per chunk,
:func:`finish_pair` per pair (coverage, candles, OKX's candles); :func:`run_backfill` runs them in one process
(the CLI); ``flows/backfill.py`` runs them as Prefect tasks.
"""

from __future__ import annotations

from collectors.backfill.fetch import ChunkResult, Lost, fetch_chunk
from collectors.backfill.finish import PairSummary, coverage_of, finish_pair
from collectors.backfill.plan import FINAL_PREFIX, Chunk, Hole, Span
from collectors.backfill.run import Progress, RunSummary, open_backfill, run_backfill, run_chunk
from collectors.backfill.work import Backfill, BackfillSettings, Plan, Request, plan, settings_from_config

__all__ = [
    "FINAL_PREFIX",
    "Backfill",
    "BackfillSettings",
    "Chunk",
    "ChunkResult",
    "Hole",
    "Lost",
    "PairSummary",
    "Plan",
    "Progress",
    "Request",
    "RunSummary",
    "Span",
    "coverage_of",
    "fetch_chunk",
    "finish_pair",
    "open_backfill",
    "plan",
    "run_backfill",
    "run_chunk",
    "settings_from_config",
]
