"""Re-aggregation over stored trades (SQLite and PostgreSQL): nothing changes on engine-built candles; altered
and missing candles are found and rewritten exactly once; the result equals the streaming engine."""

from __future__ import annotations

from decimal import Decimal

import pytest
from quality_helpers import DAY_START, HOUR, MINUTE, collected, live_candles, store, tape
from sqlalchemy import Engine, text

from collectors.candles import reaggregate_trades
from collectors.model import DEFAULT_TIMEFRAMES
from collectors.quality.compare import ChangeKind
from collectors.quality.reads import stored_candles
from collectors.quality.reaggregate import DAY_MS, plan_chunks, reaggregate_chunk

NOW = DAY_START + 2 * DAY_MS


def test_chunks_are_whole_days_for_the_default_timeframes() -> None:
    assert plan_chunks(DAY_START + HOUR, DAY_START + DAY_MS + 5, DEFAULT_TIMEFRAMES) == [
        (DAY_START, DAY_START + DAY_MS),
        (DAY_START + DAY_MS, DAY_START + 2 * DAY_MS),
    ]
    assert plan_chunks(DAY_START + 61_000, DAY_START + 62_000, ["1m"], chunk_ms=MINUTE) == [
        (DAY_START + MINUTE, DAY_START + 2 * MINUTE)
    ]


async def _run(engine: Engine) -> tuple[int, list[tuple[str, int, ChangeKind, tuple[str, ...]]]]:
    result = await reaggregate_chunk(
        engine, exchange="okx", inst_id="BTC-USDT", timeframes=DEFAULT_TIMEFRAMES,
        start_ms=DAY_START, end_ms=DAY_START + DAY_MS, now_ms=NOW,
    )  # fmt: skip
    assert result.trades == 3_000
    return result.written, [(c.timeframe, c.open_time_ms, c.kind, c.fields) for c in result.changes]


@pytest.mark.asyncio
async def test_reaggregating_engine_built_candles_changes_nothing_and_repairs_altered_ones(
    engine: Engine,
) -> None:
    trades = tape()
    watched = collected("BTC-USDT", DAY_START, DAY_START + DAY_MS)  # else every candle is incomplete
    await store(engine, [*trades, *live_candles(trades, DAY_START, DAY_START + DAY_MS), watched])
    assert await _run(engine) == (0, [])

    altered, dropped = DAY_START + 5 * MINUTE, DAY_START + HOUR
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE candles SET close = close + 1 WHERE timeframe = '1m' AND open_time = :t"),
            {"t": _bound(engine, altered)},
        )
        conn.execute(
            text("DELETE FROM candles WHERE timeframe = '1h' AND open_time = :t"),
            {"t": _bound(engine, dropped)},
        )
    assert await _run(engine) == (
        2,
        [("1m", altered, ChangeKind.CHANGED, ("close",)), ("1h", dropped, ChangeKind.NEW, ())],
    )
    assert await _run(engine) == (0, [])  # the second run changes nothing

    engine_built = reaggregate_trades(
        trades, exchange="okx", inst_id="BTC-USDT", complete_range=(DAY_START, DAY_START + DAY_MS)
    )
    stored = stored_candles(
        engine, exchange="okx", inst_id="BTC-USDT", timeframes=DEFAULT_TIMEFRAMES,
        start_ms=DAY_START, end_ms=DAY_START + DAY_MS,
    )  # fmt: skip
    for name in DEFAULT_TIMEFRAMES:
        assert [_values(c) for c in stored[name]] == [_values(c) for c in engine_built[name]]
    repaired = next(c for c in stored["1m"] if c.open_time_ms == altered)
    assert (repaired.source.value, repaired.revision) == ("reaggregate", 1)


def _values(candle: object) -> tuple[object, ...]:
    names = ("open_time_ms", "open", "high", "low", "close", "volume", "quote_volume", "trade_count",
             "buy_volume", "sell_volume", "first_trade_id", "last_trade_id", "first_trade_ms", "last_trade_ms")  # fmt: skip
    return tuple(getattr(candle, n) for n in names)


def _bound(engine: Engine, ms: int) -> object:
    from collectors.storage.types import ms_to_datetime

    return ms_to_datetime(ms) if engine.dialect.name == "postgresql" else ms


@pytest.mark.asyncio
async def test_a_candle_whose_bucket_has_not_ended_is_left_to_the_live_engine(engine: Engine) -> None:
    trades = tape()
    await store(engine, trades)
    result = await reaggregate_chunk(
        engine, exchange="okx", inst_id="BTC-USDT", timeframes=["1m", "1d"],
        start_ms=DAY_START, end_ms=DAY_START + DAY_MS, now_ms=DAY_START + 2 * HOUR + 30_000,
    )  # fmt: skip
    written = {(c.timeframe, c.open_time_ms) for c in result.changes}
    assert ("1d", DAY_START) not in written
    assert max(ts for tf, ts in written if tf == "1m") == DAY_START + 2 * HOUR - MINUTE
    assert all(c.kind is ChangeKind.NEW for c in result.changes)
    assert Decimal(0) < min(c.recomputed.volume for c in result.changes if c.recomputed)
