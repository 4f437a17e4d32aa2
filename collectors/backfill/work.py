"""A backfill's context and its planning step: requests in, holes and chunks out.

:class:`Backfill` holds what every step shares (the database, the REST client with the process's limiter, the
writer, the settings, the clock); the Prefect tasks and the CLI build one and pass it to each step. Steps:
:func:`plan` (this module), then :func:`~collectors.backfill.fetch.fetch_chunk` per chunk, then
:func:`~collectors.backfill.finish.finish` (coverage, candles, OKX's candles).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from sqlalchemy import Engine

from collectors.backfill import store
from collectors.backfill.locate import IdAt, newest_before, oldest_served
from collectors.backfill.plan import (
    DEFAULT_CHUNK_IDS,
    FINAL_PREFIX,
    Chunk,
    Hole,
    Span,
    chunks_of,
    final_unrecoverable,
    merge_holes,
    open_gaps,
    subtract,
)
from collectors.candles import DEFAULT_ENGINE_CONFIG, EmptyPolicy
from collectors.config import CollectorsConfig
from collectors.exchanges.okx.rest import OkxRestClient
from collectors.model import DEFAULT_TIMEFRAMES, DataType
from collectors.storage import reads
from collectors.storage.records import CoverageSpan, CoverageStatus
from collectors.storage.writer import BatchWriter

__all__ = ["Backfill", "BackfillSettings", "Plan", "Request", "plan", "settings_from_config"]

log = logging.getLogger(__name__)

DAY_MS: Final = 86_400_000
# OKX serves history-trades for the last 3 months only (shared/okx/API.md 2.2); older spans are unrecoverable.
HISTORY_TRADES_DAYS: Final = 90


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillSettings:
    """How a backfill works. ``timeframes`` per pair (others: ``default_timeframes``); ``chunk_ids`` ids per
    unit of work; ``gaps_lookback_ms`` how far back ``gaps`` mode reads the ledger and trade-id continuity;
    ``allowed_lateness_ms`` the live engine's (config ``candles.allowed_lateness_ms``): a bucket ending less than
    that before now may still be held open by a live collector, so the backfill does not close it."""

    exchange: str = "okx"
    default_timeframes: tuple[str, ...] = DEFAULT_TIMEFRAMES
    timeframes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP
    chunk_ids: int = DEFAULT_CHUNK_IDS
    history_days: float = HISTORY_TRADES_DAYS
    gaps_lookback_ms: int = DAY_MS
    exchange_candles: bool = True
    # stored ids are contiguous (one row per fill: OKX trades-all); off for aggregated trades, whose ids skip
    id_continuity: bool = True
    allowed_lateness_ms: int = DEFAULT_ENGINE_CONFIG.allowed_lateness_ms

    def timeframes_for(self, inst_id: str) -> tuple[str, ...]:
        return self.timeframes.get(inst_id, self.default_timeframes)


def settings_from_config(config: CollectorsConfig, **overrides: object) -> BackfillSettings:
    """Timeframes and the empty-interval policy of the config's ``okx`` entry."""
    entry = config.exchanges["okx"]
    per_pair = {p.inst_id: entry.timeframes_for(p) for p in entry.pairs}
    return BackfillSettings(
        default_timeframes=entry.timeframes,
        timeframes=per_pair,
        empty_policy=EmptyPolicy(config.candles.empty_intervals),
        id_continuity=config.live.trades_mode == "every_fill",
        allowed_lateness_ms=config.candles.allowed_lateness_ms,
        **overrides,  # type: ignore[arg-type]
    )


@dataclass(slots=True, kw_only=True)
class Backfill:
    """What every step of one backfill shares."""

    db: Engine
    rest: OkxRestClient
    writer: BatchWriter
    settings: BackfillSettings = field(default_factory=BackfillSettings)
    clock: Callable[[], int] = wall_clock_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """``range``: ``[start_ms, end_ms)`` of each pair (``since`` is a range ending now); ``gaps``: every open
    gap of the ledger and every trade-id hole of the last ``gaps_lookback_ms``."""

    pairs: tuple[str, ...]
    mode: Literal["range", "gaps"]
    start_ms: int | None = None
    end_ms: int | None = None
    origin: str = "range"

    def __post_init__(self) -> None:
        if not self.pairs:
            raise ValueError("a backfill needs at least one pair")
        if self.mode == "range" and (self.start_ms is None or self.end_ms is None):
            raise ValueError("a range backfill needs start_ms and end_ms")
        if self.mode == "range" and self.end_ms <= self.start_ms:  # type: ignore[operator]
            raise ValueError(f"empty or reversed range [{self.start_ms}, {self.end_ms})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The holes to fetch (by index in ``holes``), the spans they came from (coverage is written for those),
    verdicts known before fetching (``coverage``), and the requests planning took."""

    spans: tuple[Span, ...]
    holes: tuple[Hole, ...]
    chunks: tuple[Chunk, ...]
    coverage: tuple[CoverageSpan, ...]
    requests: int

    @property
    def ids(self) -> int:
        return sum(h.ids for h in self.holes if not h.bottom_open)


async def plan(bf: Backfill, request: Request) -> Plan:
    """Holes of every pair of ``request``; REST is asked only for the ids at span edges (``type=2``)."""
    requests_before = bf.rest.requests
    now = bf.clock()
    spans: list[Span] = []
    holes: list[Hole] = []
    coverage: list[CoverageSpan] = []
    for inst_id in request.pairs:
        if request.mode == "range":
            assert request.start_ms is not None and request.end_ms is not None
            pair_spans = [
                Span(inst_id=inst_id, start_ms=request.start_ms, end_ms=request.end_ms, origin=request.origin)
            ]
            id_holes: list[Hole] = []
        else:
            pair_spans, id_holes = await _open_work(bf, inst_id, now)
        spans.extend(pair_spans)
        holes.extend(id_holes)
        for span in pair_spans:
            found, verdicts = await _holes_of_span(bf, span, now)
            holes.extend(found)
            coverage.extend(verdicts)
    merged = merge_holes(holes)
    return Plan(
        spans=tuple(spans),
        holes=tuple(merged),
        chunks=tuple(chunks_of(merged, max_ids=bf.settings.chunk_ids)),
        coverage=tuple(coverage),
        requests=bf.rest.requests - requests_before,
    )


async def _open_work(bf: Backfill, inst_id: str, now: int) -> tuple[list[Span], list[Hole]]:
    """``gaps`` mode: the ledger's open gaps, and trade-id holes among stored trades not already given up."""
    since = now - bf.settings.gaps_lookback_ms
    exchange = bf.settings.exchange
    entries = await asyncio.to_thread(
        store.coverage_in, bf.db, exchange=exchange, inst_id=inst_id, start_ms=since, end_ms=now + 1
    )
    spans = [
        Span(inst_id=inst_id, start_ms=s, end_ms=e, origin="coverage gap") for s, e in open_gaps(entries)
    ]
    if not bf.settings.id_continuity:
        return spans, []
    given_up = final_unrecoverable(entries)
    found = await asyncio.to_thread(
        reads.stored_holes, bf.db, exchange=exchange, inst_id=inst_id, from_ms=since
    )
    holes = [
        Hole(inst_id=inst_id, after_id=a - 1, before_id=b + 1, start_ms=s, end_ms=e + 1, origin="id hole")
        for a, b, s, e in found
        if subtract([(s, e + 1)], given_up)
    ]
    return spans, holes


async def _holes_of_span(bf: Backfill, span: Span, now: int) -> tuple[list[Hole], list[CoverageSpan]]:
    """The id holes of ``span`` (REST finds the ids at its edges), and verdicts needing no fetch."""
    inst_id = span.inst_id
    verdicts: list[CoverageSpan] = []
    horizon = now - int(bf.settings.history_days * DAY_MS)
    start = max(span.start_ms, horizon)
    if start > span.start_ms:
        reason = f"{FINAL_PREFIX}older than OKX's {bf.settings.history_days:g} days of history-trades"
        verdicts.append(_verdict(bf, inst_id, span.start_ms, min(start, span.end_ms), reason))
    if start >= span.end_ms:
        return [], verdicts
    high = await newest_before(bf.rest, inst_id, span.end_ms)
    if high is None:
        reason = f"{FINAL_PREFIX}REST serves no trade before the span's end (beyond its history)"
        verdicts.append(_verdict(bf, inst_id, start, span.end_ms, reason))
        return [], verdicts
    holes: list[Hole] = []
    low = await newest_before(bf.rest, inst_id, start)
    if low is None:  # the span starts before REST's edge: find it, fetch down to it from there
        edge = await oldest_served(bf.rest, inst_id, start, span.end_ms)
        assert edge is not None  # ``high`` is served
        if edge.trade_id > 1:
            holes.append(
                Hole(
                    inst_id=inst_id,
                    after_id=0,
                    before_id=edge.trade_id,
                    start_ms=start,
                    end_ms=edge.ts_ms + 1,
                    origin=span.origin,
                    bottom_open=True,
                )
            )
        low = IdAt(edge.trade_id - 1, edge.ts_ms)
    holes.extend(await _missing(bf, span, low, high))
    return holes, verdicts


async def _missing(bf: Backfill, span: Span, low: IdAt, high: IdAt) -> list[Hole]:
    """Ids between ``low`` (exclusive) and ``high`` (inclusive) not stored, as holes."""
    if high.trade_id <= low.trade_id:
        return []
    gaps = await asyncio.to_thread(
        store.missing_ids,
        bf.db,
        exchange=bf.settings.exchange,
        inst_id=span.inst_id,
        after_id=low.trade_id,
        before_id=high.trade_id + 1,
    )
    return [
        Hole(
            inst_id=span.inst_id,
            after_id=a - 1,
            before_id=b + 1,
            start_ms=low.ts_ms if ts_low is None else ts_low,
            end_ms=(high.ts_ms if ts_high is None else ts_high) + 1,
            origin=span.origin,
        )
        for a, b, ts_low, ts_high in gaps
    ]


def _verdict(bf: Backfill, inst_id: str, start_ms: int, end_ms: int, reason: str) -> CoverageSpan:
    return CoverageSpan(
        exchange=bf.settings.exchange,
        inst_id=inst_id,
        data_type=DataType.TRADES,
        start_ms=start_ms,
        end_ms=end_ms,
        status=CoverageStatus.UNRECOVERABLE,
        reason=reason,
    )
