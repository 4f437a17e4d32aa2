"""After the chunks of a pair: the coverage verdicts, the touched candles re-aggregated, OKX's own candles.

Coverage (:func:`coverage_of`, pure): every id REST did not serve is ``unrecoverable`` over the time between
its stored neighbours, with the reason (a final verdict: its reason starts with ``plan.FINAL_PREFIX``); a hole
whose chunk failed after its retries is ``unrecoverable`` whole ("REST failed ..."); the rest of every span and
hole is ``backfilled``.

Candles (:func:`revise_candles`): the touched buckets of the finest timeframe are re-aggregated through the
candle engine from their stored trades (``reaggregation_window``, complete ranges only, up to :func:`closed_until`:
the end of the span the backfill asked for, or the newest stored trade when that is later); the coarser timeframes are rolled up from the finest candles then stored (``rollup``, equal to
aggregating the trades), or re-aggregated from the trades of their whole buckets when those candles do not
count every stored trade. The time the ledger does not cover (and the unrecoverable spans) are no-data spans,
so ``is_complete`` tells the truth. Candles whose values differ from the stored ones are written; the storage
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
from collectors.candles import EmptyPolicy, reaggregate_trades, reaggregation_window, rollup, same_values
from collectors.exchanges.okx.spec import okx_bar
from collectors.model import Candle, CandleSource, DataType, Timeframe
from collectors.storage import reads
from collectors.storage.records import FILLED_BY_BACKFILL, CoverageSpan, CoverageStatus, no_data_spans

__all__ = [
    "SUMMARY_COLUMNS",
    "PairSummary",
    "closed_until",
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
    left_open: list[tuple[int, int]] = []  # a chunk the database failed: no verdict, the next run asks again
    for index, hole in enumerate(plan.holes):
        if hole.inst_id != inst_id:
            continue
        mine = [r for r in results if r.chunk.hole == index]
        failed = [r for r in mine if r.error is not None]
        if failed and not all(r.rest_verdict for r in failed):
            left_open.append((hole.start_ms, hole.end_ms))
            continue
        if failed:
            lost.append(
                (hole.start_ms, hole.end_ms, f"{FINAL_PREFIX}REST failed after retries: {failed[0].error}")
            )
            continue
        for result in mine:
            for item in result.lost:
                start = hole.start_ms if item.ts_before is None else item.ts_before
                end = hole.end_ms if item.ts_after is None else item.ts_after + 1
                lost.append((start, max(end, start + 1), item.reason))
    out = [_span(bf, inst_id, s, e, CoverageStatus.UNRECOVERABLE, reason) for s, e, reason in lost]
    verdicts = [c for c in plan.coverage if c.inst_id == inst_id]
    out.extend(verdicts)
    bad = [(s, e) for s, e, _ in lost] + [(c.start_ms, c.end_ms) for c in verdicts] + left_open
    asked = [(s.start_ms, s.end_ms) for s in plan.spans if s.inst_id == inst_id]
    asked += [(h.start_ms, h.end_ms) for h in plan.holes if h.inst_id == inst_id]
    for start, end in subtract(asked, bad):
        out.append(_span(bf, inst_id, start, end, CoverageStatus.BACKFILLED, FILLED_BY_BACKFILL))
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
    asked = [(s.start_ms, s.end_ms) for s in plan.spans if s.inst_id == inst_id]
    asked += [(h.start_ms, h.end_ms) for h in plan.holes if h.inst_id == inst_id]
    changed = await revise_candles(bf, inst_id, touched, asked=asked)
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


async def revise_candles(
    bf: Backfill,
    inst_id: str,
    touched: Sequence[tuple[int, int]],
    *,
    asked: Sequence[tuple[int, int]] = (),
) -> int:
    """Re-aggregate the buckets overlapping ``touched``; write those that changed. Returns how many.

    The finest timeframe (and any that it does not nest in) comes from the stored trades of its own touched
    buckets; the coarser ones are rolled up (``candles.rollup``, equal to aggregating the trades) from the
    finest candles then stored, so a touched day reads at most 1,440 one-minute candles, not a day of trades.
    Buckets ending by :func:`closed_until` (``asked``: the spans and holes the backfill filled) are written
    closed; later ones are left to a live collector.
    """
    if not touched:
        return 0
    frames = sorted((Timeframe.parse(n) for n in bf.settings.timeframes_for(inst_id)), key=_duration)
    finest = frames[0]
    rolled = [f.name for f in frames[1:] if finest.nests_in(f)]
    direct = [finest.name, *(f.name for f in frames[1:] if not finest.nests_in(f))]
    exchange = bf.settings.exchange
    newest = await asyncio.to_thread(reads.last_trade, bf.db, exchange=exchange, inst_id=inst_id)
    if newest is None:
        return 0
    changed = 0
    now = bf.clock()
    for names, step in ((direct, _window), (rolled, _rolled_up)):
        if not names:
            continue
        for start, end in union(reaggregation_window(s, e, names) for s, e in touched):
            clock = closed_until(newest.ts_ms, asked, start, end, now, bf.settings.allowed_lateness_ms)
            cut = min(end, clock)
            if cut <= start:
                continue
            candles = await asyncio.to_thread(step, bf, inst_id, names, start, cut, touched)
            await bf.writer.put_many(candles)
            changed += len(candles)
        await bf.writer.flush()  # the rollup reads the finest candles just written
    return changed


def closed_until(
    newest_ms: int,
    asked: Sequence[tuple[int, int]],
    start_ms: int,
    end_ms: int,
    now_ms: int,
    lateness_ms: int,
) -> int:
    """The clock of a backfill's candles in the window ``[start_ms, end_ms)`` (pure): buckets ending by it are
    closed. It is the end of a span the backfill filled (``asked``) that reaches into the window, so the
    bucket holding the newest fetched trade closes when the span ended after it, but no later than
    ``now_ms - lateness_ms`` (a bucket ending within the allowed lateness of now may still be held open by a
    live collector, whose engine closes it then); never earlier than the newest stored trade ``newest_ms``
    (what a live collector wrote up to it is final)."""
    ends = [min(e, now_ms - lateness_ms) for s, e in asked if s < end_ms and e > start_ms]
    return max([newest_ms, *ends])


def _duration(tf: Timeframe) -> int:
    return tf.duration_ms


def _no_data(bf: Backfill, inst_id: str, start: int, end: int) -> list[tuple[int, int]]:
    """Time of ``[start, end)`` whose trades are not all known, by the ledger (one rule:
    :func:`collectors.storage.records.no_data_spans`)."""
    entries = store.coverage_in(
        bf.db, exchange=bf.settings.exchange, inst_id=inst_id, start_ms=start, end_ms=end
    )
    return no_data_spans(entries, start, end)


def _changed(
    bf: Backfill,
    inst_id: str,
    fresh: dict[str, list[Candle]],
    start: int,
    end: int,
    touched: Sequence[tuple[int, int]],
) -> list[Candle]:
    """The candles of ``fresh`` in touched buckets that differ from the stored ones, as backfill candles."""
    stored = store.candles_in(
        bf.db,
        exchange=bf.settings.exchange,
        inst_id=inst_id,
        timeframes=list(fresh),
        start_ms=start,
        end_ms=end,
    )
    out: list[Candle] = []
    for name, candles in fresh.items():
        duration = Timeframe.parse(name).duration_ms
        for candle in candles:
            open_ms = candle.open_time_ms
            inside = start <= open_ms and open_ms + duration <= end
            if not inside or not any(s < open_ms + duration and open_ms < e for s, e in touched):
                continue
            old = stored.get((name, open_ms))
            if old is not None and same_values(candle, old):
                continue
            revision = 0 if old is None else old.revision + 1
            out.append(dataclasses.replace(candle, source=CandleSource.BACKFILL, revision=revision))
    return out


def _rolled_up(
    bf: Backfill,
    inst_id: str,
    timeframes: Sequence[str],
    start: int,
    end: int,
    touched: Sequence[tuple[int, int]],
) -> list[Candle]:
    """Blocking: the changed coarse candles of one window, rolled up from the stored finest candles; from the
    trades (:func:`_window`) when those candles do not count every stored trade of the window (a timeframe
    added to the config later, candles lost)."""
    finest = min((Timeframe.parse(n) for n in bf.settings.timeframes_for(inst_id)), key=_duration)
    exchange = bf.settings.exchange
    fine_end = finest.bucket_start_ms(end)  # fine buckets wholly before ``end``
    fine = store.candles_in(
        bf.db, exchange=exchange, inst_id=inst_id, timeframes=[finest.name], start_ms=start, end_ms=fine_end
    )
    trades = store.trade_count(bf.db, exchange=exchange, inst_id=inst_id, start_ms=start, end_ms=fine_end)
    if sum(c.trade_count for c in fine.values()) != trades:
        return _window(bf, inst_id, timeframes, start, end, touched)
    ordered = [fine[key] for key in sorted(fine)]
    no_data = _no_data(bf, inst_id, start, end)
    fresh = {
        name: rollup(
            ordered, name, empty_policy=bf.settings.empty_policy, no_data=no_data, closed_until_ms=end
        )
        for name in timeframes
    }
    return _changed(bf, inst_id, fresh, start, end, touched)


def _window(
    bf: Backfill,
    inst_id: str,
    timeframes: Sequence[str],
    start: int,
    end: int,
    touched: Sequence[tuple[int, int]],
) -> list[Candle]:
    """Blocking: the changed candles of one window, from its stored trades through the engine."""
    exchange, db = bf.settings.exchange, bf.db
    trades = store.trades_in(db, exchange=exchange, inst_id=inst_id, start_ms=start, end_ms=end)
    carry = bf.settings.empty_policy is EmptyPolicy.CARRY
    previous = reads.close_before(db, exchange=exchange, inst_id=inst_id, before_ms=start) if carry else None
    fresh = reaggregate_trades(
        trades,
        exchange=exchange,
        inst_id=inst_id,
        timeframes=timeframes,
        empty_policy=bf.settings.empty_policy,
        no_data=_no_data(bf, inst_id, start, end),
        source=CandleSource.BACKFILL,
        complete_range=(start, end),
        previous_close=previous,
    )
    return _changed(bf, inst_id, fresh, start, end, touched)


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
