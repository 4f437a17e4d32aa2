"""Completeness of recomputed candles from the coverage ledger (issue 10): a candle is complete only when its whole
bucket is watched (``collected`` / ``backfilled``) and no loss (``unrecoverable``, an open ``gap``) touches it, as
the backfill writes it. A collector that started mid-minute knows nothing of the trades before its start."""

from __future__ import annotations

import pytest
from quality_helpers import DAY_START, HOUR, MINUTE, collected, store, tape
from sqlalchemy import Engine

from collectors.candles import reaggregate_trades
from collectors.model import DEFAULT_TIMEFRAMES, Candle, CandleSource, DataType
from collectors.quality.reaggregate import DAY_MS, reaggregate_chunk
from collectors.quality.recompute import no_data_spans
from collectors.quality.validate import PairCheck, validate_pair
from collectors.storage.records import FILLED_BY_BACKFILL, CoverageSpan, CoverageStatus

STARTED = DAY_START + 30_000  # the collector's first trade: half a minute into the day
END = DAY_START + 3 * HOUR  # its last trade; it keeps watching a quiet market until the day's end
CHECK = PairCheck(
    exchange="okx", inst_id="BTC-USDT", start_ms=DAY_START, end_ms=END, now_ms=DAY_START + 2 * DAY_MS,
    timeframes=("1m", "5m", "15m", "1h"),
)  # fmt: skip


def _span(start: int, end: int, status: CoverageStatus) -> CoverageSpan:
    return CoverageSpan(
        exchange="okx",
        inst_id="BTC-USDT",
        data_type=DataType.TRADES,
        start_ms=start,
        end_ms=end,
        status=status,
    )


def _candles(no_data: list[tuple[int, int]]) -> list[Candle]:
    """The candles of the collector's trades over the day, with ``no_data`` (the time it did not watch)."""
    built = reaggregate_trades(
        tape(start_ms=STARTED, end_ms=END), exchange="okx", inst_id="BTC-USDT", source=CandleSource.LIVE,
        complete_range=(DAY_START, DAY_START + DAY_MS), no_data=no_data,
    )  # fmt: skip
    return [c for name in DEFAULT_TIMEFRAMES for c in built[name]]


async def _stored(engine: Engine, candles: list[Candle]) -> None:
    await store(
        engine,
        [*tape(start_ms=STARTED, end_ms=END), *candles, collected("BTC-USDT", STARTED, DAY_START + DAY_MS)],
    )


@pytest.mark.asyncio
async def test_the_minute_a_collector_started_in_is_incomplete_in_validate_and_reaggregate(
    engine: Engine,
) -> None:
    # stored as the backfill writes them: the time before the collector's start is no data
    await _stored(engine, _candles([(DAY_START, STARTED)]))
    assert validate_pair(engine, CHECK) == []
    result = await reaggregate_chunk(
        engine, exchange="okx", inst_id="BTC-USDT", timeframes=DEFAULT_TIMEFRAMES,
        start_ms=DAY_START, end_ms=DAY_START + DAY_MS, now_ms=DAY_START + 2 * DAY_MS,
    )  # fmt: skip
    assert (result.trades, result.written, list(result.changes)) == (3_000, 0, [])


@pytest.mark.asyncio
async def test_a_first_minute_stored_complete_is_reported_for_every_timeframe(engine: Engine) -> None:
    await _stored(
        engine, _candles([])
    )  # the flag a candle engine gives it when nobody marked the time before
    findings = validate_pair(engine, CHECK)
    assert [(f.kind.value, f.timeframe, f.start_ms, f.field, f.detail) for f in findings] == [
        ("candle_mismatch", tf, DAY_START, "is_complete", "is_complete: stored True, recomputed False")
        for tf in CHECK.timeframes
    ]


def test_no_data_is_the_unwatched_time_and_every_unresolved_loss() -> None:
    watched = [
        _span(100, 500, CoverageStatus.COLLECTED),
        _span(200, 220, CoverageStatus.GAP),  # found while collecting, filled
        _span(200, 220, CoverageStatus.BACKFILLED),
        _span(300, 310, CoverageStatus.GAP),  # still open
        _span(400, 410, CoverageStatus.GAP),
        _span(400, 410, CoverageStatus.UNRECOVERABLE),
        _span(600, 700, CoverageStatus.BACKFILLED),
    ]
    assert no_data_spans(watched, 0, 1_000) == [(0, 100), (300, 310), (400, 410), (500, 600), (700, 1_000)]
    assert no_data_spans(watched, 150, 450) == [(300, 310), (400, 410)]
    assert no_data_spans([], 0, MINUTE) == [(0, MINUTE)]


def test_a_live_unrecoverable_span_a_backfill_filled_is_no_longer_lost() -> None:
    """A live collector's own verdict (REST failed while it caught up) is not final: a backfill that later
    fetched every id of that time ("filled by a backfill") makes its trades known, so its candles are complete.
    The live catch-up's own span ("caught up from REST") around its verdict does not clear it, nor does a
    backfill's final verdict count as filled."""
    spans = [
        _span(100, 500, CoverageStatus.COLLECTED),
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=140, end_ms=260,
                     status=CoverageStatus.BACKFILLED, reason="caught up from REST"),
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=200, end_ms=220,
                     status=CoverageStatus.UNRECOVERABLE, reason="REST failed 5 times: ApiError"),
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=400, end_ms=410,
                     status=CoverageStatus.UNRECOVERABLE, reason="REST failed 5 times: ApiError"),
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=395, end_ms=405,
                     status=CoverageStatus.BACKFILLED, reason=FILLED_BY_BACKFILL),
    ]  # fmt: skip
    assert no_data_spans(spans, 0, 500) == [(0, 100), (200, 220), (405, 410)]
    later = CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=190,
                         end_ms=230, status=CoverageStatus.BACKFILLED, reason=FILLED_BY_BACKFILL)  # fmt: skip
    assert no_data_spans([*spans, later], 0, 500) == [(0, 100), (405, 410)]
