"""After the chunks of a pair: the coverage verdicts, the touched candles re-aggregated, OKX's own candles.

Coverage (:func:`coverage_of`, pure): every id REST did not serve is ``unrecoverable`` over the time between
its stored neighbours, with the reason (a final verdict: its reason starts with ``plan.FINAL_PREFIX``); a hole
whose chunk failed after its retries is ``unrecoverable`` whole ("REST failed ..."); the rest of every span and
hole is ``backfilled``.

Candles (:func:`revise_candles`): the touched buckets are re-aggregated through the candle engine from the
stored trades of their whole coarsest buckets (``reaggregation_window``, complete ranges only, up to the newest
stored trade), with the time the ledger does not cover (and the unrecoverable spans) as no-data spans, so
``is_complete`` tells the truth. Candles whose values differ from the stored ones are written; the storage
layer counts the revision (``revision + 1`` on a closed candle).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from collectors.backfill import store
from collectors.backfill.fetch import ChunkResult
from collectors.backfill.plan import FINAL_PREFIX, subtract, union
from collectors.backfill.work import Backfill, Plan
from collectors.candles import EmptyPolicy, reaggregate_trades, reaggregation_window, same_values
from collectors.exchanges.okx.spec import okx_bar
from collectors.model import Candle, CandleSource, DataType, Timeframe
from collectors.storage import reads
from collectors.storage.records import CoverageSpan, CoverageStatus

__all__ = [
    "SUMMARY_COLUMNS",
    "PairSummary",
    "coverage_of",
    "exchange_candles",
    "finish_pair",
    "revise_candles",
]

_PAGE = 100  # history-candles rows per request (OKX capped the endpoint at 100 until 2025, API.md 2.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class PairSummary:
    """One pair's totals: the summary table's row."""

    inst_id: str
    holes: int
    ids: int
    trades: int
    requests: int
    unrecoverable: int
    failed_chunks: int
    candles_changed: int
    exchange_candles: int

    def row(self) -> dict[str, str | int]:
        """The summary table's row (CLI and the flow's table artifact)."""
        return {"pair": self.inst_id, **{name: getattr(self, name) for name in SUMMARY_COLUMNS[1:]}}


SUMMARY_COLUMNS = (
    "pair", "holes", "ids", "trades", "requests", "unrecoverable", "failed_chunks", "candles_changed",
    "exchange_candles",
)  # fmt: skip


def coverage_of(bf: Backfill, plan: Plan, results: Sequence[ChunkResult], inst_id: str) -> list[CoverageSpan]:
    """The coverage rows of ``inst_id`` after its chunks (pure)."""
    lost: list[tuple[int, int, str]] = []
    for index, hole in enumerate(plan.holes):
        if hole.inst_id != inst_id:
            continue
        mine = [r for r in results if r.chunk.hole == index]
        errors = [r.error for r in mine if r.error is not None]
        if errors:
            lost.append((hole.start_ms, hole.end_ms, f"{FINAL_PREFIX}REST failed after retries: {errors[0]}"))
            continue
        for result in mine:
            for item in result.lost:
                start = hole.start_ms if item.ts_before is None else item.ts_before
                end = hole.end_ms if item.ts_after is None else item.ts_after + 1
                lost.append((start, max(end, start + 1), item.reason))
    out = [_span(bf, inst_id, s, e, CoverageStatus.UNRECOVERABLE, reason) for s, e, reason in lost]
    verdicts = [c for c in plan.coverage if c.inst_id == inst_id]
    out.extend(verdicts)
    bad = [(s, e) for s, e, _ in lost] + [(c.start_ms, c.end_ms) for c in verdicts]
    asked = [(s.start_ms, s.end_ms) for s in plan.spans if s.inst_id == inst_id]
    asked += [(h.start_ms, h.end_ms) for h in plan.holes if h.inst_id == inst_id]
    for start, end in subtract(asked, bad):
        out.append(_span(bf, inst_id, start, end, CoverageStatus.BACKFILLED, "filled by a backfill"))
    return out


def _span(
    bf: Backfill, inst_id: str, start: int, end: int, status: CoverageStatus, reason: str
) -> CoverageSpan:
    return CoverageSpan(
        exchange=bf.settings.exchange,
        inst_id=inst_id,
        data_type=DataType.TRADES,
        start_ms=start,
        end_ms=end,
        status=status,
        reason=reason,
    )


async def finish_pair(bf: Backfill, plan: Plan, results: Sequence[ChunkResult], inst_id: str) -> PairSummary:
    """Write the coverage of ``inst_id``, revise its touched candles, store OKX's candles of the filled time."""
    mine = [r for r in results if r.chunk.inst_id == inst_id]
    coverage = coverage_of(bf, plan, mine, inst_id)
    await bf.writer.put_many(coverage)
    await bf.writer.flush()
    touched = union(
        (r.first_ts, r.last_ts + 1) for r in mine if r.first_ts is not None and r.last_ts is not None
    )
    changed = await revise_candles(bf, inst_id, touched)
    fetched = 0
    if bf.settings.exchange_candles:
        holes = [(h.start_ms, h.end_ms) for h in plan.holes if h.inst_id == inst_id]
        for start, end in union([*touched, *holes]):
            fetched += await exchange_candles(bf, inst_id, start, end)
    holes_of_pair = [h for h in plan.holes if h.inst_id == inst_id]
    return PairSummary(
        inst_id=inst_id,
        holes=len(holes_of_pair),
        ids=sum(h.ids for h in holes_of_pair if not h.bottom_open),
        trades=sum(r.trades for r in mine),
        requests=sum(r.requests for r in mine),
        unrecoverable=sum(1 for c in coverage if c.status is CoverageStatus.UNRECOVERABLE),
        failed_chunks=sum(1 for r in mine if r.error is not None),
        candles_changed=changed,
        exchange_candles=fetched,
    )


async def revise_candles(bf: Backfill, inst_id: str, touched: Sequence[tuple[int, int]]) -> int:
    """Re-aggregate the buckets overlapping ``touched``; write those that changed. Returns how many."""
    if not touched:
        return 0
    timeframes = bf.settings.timeframes_for(inst_id)
    exchange = bf.settings.exchange
    newest = await asyncio.to_thread(reads.last_trade, bf.db, exchange=exchange, inst_id=inst_id)
    if newest is None:
        return 0
    windows = union(reaggregation_window(s, e, timeframes) for s, e in touched)
    changed = 0
    for start, end in windows:
        cut = min(end, newest.ts_ms)  # buckets ending after the newest stored trade may still be filling
        if cut <= start:
            continue
        candles = await asyncio.to_thread(_window, bf, inst_id, timeframes, start, cut, touched)
        await bf.writer.put_many(candles)
        changed += len(candles)
    await bf.writer.flush()
    return changed


def _window(
    bf: Backfill,
    inst_id: str,
    timeframes: Sequence[str],
    start: int,
    end: int,
    touched: Sequence[tuple[int, int]],
) -> list[Candle]:
    """Blocking: the changed candles of one window (reads, the engine, the comparison)."""
    exchange, db = bf.settings.exchange, bf.db
    trades = store.trades_in(db, exchange=exchange, inst_id=inst_id, start_ms=start, end_ms=end)
    entries = store.coverage_in(db, exchange=exchange, inst_id=inst_id, start_ms=start, end_ms=end)
    covered = [
        (e.start_ms, e.end_ms)
        for e in entries
        if e.status in (CoverageStatus.COLLECTED, CoverageStatus.BACKFILLED)
    ]
    lost = [(e.start_ms, e.end_ms) for e in entries if e.status is CoverageStatus.UNRECOVERABLE]
    no_data = union([*subtract([(start, end)], covered), *lost])
    carry = bf.settings.empty_policy is EmptyPolicy.CARRY
    previous = reads.close_before(db, exchange=exchange, inst_id=inst_id, before_ms=start) if carry else None
    fresh = reaggregate_trades(
        trades,
        exchange=exchange,
        inst_id=inst_id,
        timeframes=timeframes,
        empty_policy=bf.settings.empty_policy,
        no_data=[(max(s, start), min(e, end)) for s, e in no_data if min(e, end) > max(s, start)],
        source=CandleSource.BACKFILL,
        complete_range=(start, end),
        previous_close=previous,
    )
    stored = store.candles_in(
        db, exchange=exchange, inst_id=inst_id, timeframes=timeframes, start_ms=start, end_ms=end
    )
    out: list[Candle] = []
    for name, candles in fresh.items():
        duration = Timeframe.parse(name).duration_ms
        for candle in candles:
            open_ms = candle.open_time_ms
            if not any(s < open_ms + duration and open_ms < e for s, e in touched):
                continue
            old = stored.get((name, open_ms))
            if old is not None and same_values(candle, old):
                continue
            out.append(dataclasses.replace(candle, revision=0 if old is None else old.revision + 1))
    return out


async def exchange_candles(bf: Backfill, inst_id: str, start_ms: int, end_ms: int) -> int:
    """OKX's history-candles of every timeframe of ``inst_id`` opening in the buckets over ``[start_ms,
    end_ms)``, stored in ``exchange_candles``. Returns the rows stored."""
    stored = 0
    for name in bf.settings.timeframes_for(inst_id):
        first_open = Timeframe.parse(name).bucket_start_ms(start_ms)
        after = end_ms  # OKX's ``after``: bars opening before it; ``before``: bars opening after it
        while True:
            rows = await bf.rest.history_candles(
                inst_id, okx_bar(name), after_ms=after, before_ms=first_open - 1, limit=_PAGE
            )
            await bf.writer.put_many(rows)
            stored += len(rows)
            if len(rows) < _PAGE or rows[0].open_time_ms <= first_open:
                break
            after = rows[0].open_time_ms
    await bf.writer.flush()
    return stored
