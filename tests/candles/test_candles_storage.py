"""Candles persisted through the batched writer: live rows, then re-aggregation of the same trades, change nothing."""

from __future__ import annotations

import random

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.candles import CandleEngine, EngineConfig, aggregate_frame, frame_from_trades
from collectors.candles.events import CandleClosed, CandleRevised, CandleUpdated
from collectors.model import Candle, Trade
from collectors.storage.schema import CandleRow
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import DOGE, grid_trade

START = 1_786_608_000_000  # 2026-08-13 00:00 UTC


def _tape(n: int) -> list[Trade]:
    rng = random.Random(5)
    ts, price, trades = START, 1234, []
    for i in range(1, n + 1):
        ts += rng.choice([0, 0, 5, 900, 20_000, 400_000])  # bursts, and quiet minutes
        price = max(1, price + rng.randint(-2, 2))
        trades.append(grid_trade(DOGE, i, ts, price, rng.randint(1, 10**9), rng.random() < 0.5))
    return trades


def _stored(engine: Engine) -> dict[tuple[str, int], CandleRow]:
    with Session(engine) as session:
        return {(r.timeframe, r.open_time): r for r in session.scalars(select(CandleRow))}


def _values(row: CandleRow | Candle) -> tuple[object, ...]:
    if isinstance(row, Candle):
        return (row.open, row.high, row.low, row.close, row.volume, row.quote_volume, row.trade_count,
                row.buy_volume, row.sell_volume, row.first_trade_id, row.last_trade_id, row.is_closed)  # fmt: skip
    return (row.open, row.high, row.low, row.close, row.volume, row.quote_volume, row.trade_count,
            row.buy_volume, row.sell_volume, row.first_trade_id, row.last_trade_id, row.is_closed)  # fmt: skip


async def test_live_candles_persist_and_reaggregation_changes_nothing(engine: Engine) -> None:
    trades = _tape(3_000)
    live = CandleEngine(exchange="okx", inst_id=DOGE.inst_id, config=EngineConfig())
    options = WriterOptions(max_batch_rows=500, flush_interval_s=0.05)
    async with BatchWriter(open_sink(engine), options=options) as writer:
        for start in range(0, len(trades), 10):  # WebSocket-frame-sized calls, updates on
            events = live.on_trades(trades[start : start + 10])
            await writer.put_many(
                e.candle for e in events if isinstance(e, CandleUpdated | CandleClosed | CandleRevised)
            )
        await writer.put_many(e.candle for e in live.flush() if isinstance(e, CandleClosed | CandleRevised))
        await writer.drain(timeout_s=30)
        stored = _stored(engine)
        assert all(row.is_closed and row.revision == 0 and row.source == "live" for row in stored.values())

        batch = aggregate_frame(frame_from_trades(trades, DOGE), instrument=DOGE)
        expected = {(c.timeframe, c.open_time_ms): c for candles in batch.values() for c in candles}
        assert set(stored) == set(expected)
        assert all(_values(stored[key]) == _values(expected[key]) for key in expected)
        assert sum(r.trade_count for (tf, _), r in stored.items() if tf == "1d") == len(trades)

        before = writer.stats()
        await writer.put_many(c for candles in batch.values() for c in candles)
        await writer.drain(timeout_s=30)
        after = writer.stats()
    assert after.written_rows == before.written_rows  # identical rows: nothing rewritten
    assert after.unchanged_rows - before.unchanged_rows == len(expected)
    assert {k: (r.revision, r.updated_at, r.source) for k, r in _stored(engine).items()} == {
        k: (r.revision, r.updated_at, r.source) for k, r in stored.items()
    }
