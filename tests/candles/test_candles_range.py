"""Re-aggregating a sub-range: widened windows, complete_range (no partial rows), previous_close seeds."""

from __future__ import annotations

import dataclasses
import random
import tracemalloc
from decimal import Decimal

import pytest
from candles_reference import differences, reference_candles

from collectors.candles import (
    CandleEngine,
    EmptyPolicy,
    EngineConfig,
    aggregate_frame,
    final_candles,
    frame_from_trades,
    reaggregate_trades,
    reaggregation_window,
    same_values,
)
from collectors.model import DEFAULT_TIMEFRAMES, Candle, Trade
from tests.builders import BTC, MINUTE, MONDAY_MS, grid_trade

T = MONDAY_MS
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def _tape() -> list[Trade]:
    rng = random.Random(7)
    ts, trades = T, []
    for i in range(1, 400):
        ts += rng.choice([1_000, 5_000, 30_000, 200_000])
        trades.append(grid_trade(BTC, i, ts, 100 + rng.randint(-5, 5), rng.randint(1, 9), i % 3 == 0))
    return trades


def _live(trades: list[Trade]) -> dict[str, dict[int, Candle]]:
    engine = CandleEngine(
        exchange="okx",
        inst_id=BTC.inst_id,
        config=EngineConfig(empty_policy=EmptyPolicy.CARRY, emit_updates=False),
    )
    events = engine.on_trades(trades) + engine.advance(T + DAY + 10_000) + engine.flush()
    return {tf: {c.open_time_ms: c for c in candles} for tf, candles in final_candles(events).items()}


def test_window_widens_to_the_coarsest_bucket_edges() -> None:
    assert reaggregation_window(T + HOUR, T + 2 * HOUR + 17 * MINUTE, DEFAULT_TIMEFRAMES) == (T, T + DAY)
    assert reaggregation_window(T + HOUR, T + 2 * HOUR + 17 * MINUTE, ("1m", "1h")) == (
        T + HOUR,
        T + 3 * HOUR,
    )
    # 3m and 5m edges meet every 15 minutes
    assert reaggregation_window(T + MINUTE, T + 2 * MINUTE, ("3m", "5m")) == (T, T + 15 * MINUTE)
    # a range already on the edges stays as it is; 1w opens on Monday
    assert reaggregation_window(T, T + DAY, ("1m", "1d")) == (T, T + DAY)
    assert reaggregation_window(T + DAY, T + DAY + 1, ("1w",)) == (T, T + 7 * DAY)
    with pytest.raises(ValueError, match="range"):
        reaggregation_window(T, T, ("1m",))


@pytest.mark.parametrize("path", ["frame", "engine"])
def test_complete_range_returns_only_rows_equal_to_the_live_ones(path: str) -> None:
    trades = _tape()
    live = _live(trades)
    lo, hi = T + HOUR, T + 2 * HOUR + 17 * MINUTE  # 01:00 - 02:17
    previous = max((t for t in trades if t.ts_ms < lo), key=lambda t: (t.ts_ms, t.trade_id)).price
    options: dict[str, object] = {
        "empty_policy": EmptyPolicy.CARRY,
        "complete_range": (lo, hi),
        "previous_close": previous,
    }
    # every trade of the tape is passed; only those inside the range count
    if path == "frame":
        again = aggregate_frame(frame_from_trades(trades, BTC), instrument=BTC, **options)  # type: ignore[arg-type]
    else:
        again = reaggregate_trades(trades, exchange="okx", inst_id=BTC.inst_id, **options)  # type: ignore[arg-type]
    assert [c.open_time_ms for c in again["1h"]] == [T + HOUR]  # not the partial 02:00 hour
    assert again["1d"] == [] and again["4h"] == []
    assert [c.open_time_ms for c in again["15m"]][-1] == T + 2 * HOUR  # 02:15 is partial
    minutes = [c.open_time_ms for c in again["1m"]]
    assert minutes == list(range(lo, hi, MINUTE))  # every minute, carried ones seeded by previous_close
    for tf, candles in again.items():
        for candle in candles:
            assert same_values(candle, live[tf][candle.open_time_ms]), (tf, candle)


def test_partial_candles_can_be_kept_marked_incomplete() -> None:
    trades = _tape()
    lo, hi = T + HOUR, T + 2 * HOUR + 17 * MINUTE
    again = aggregate_frame(
        frame_from_trades(trades, BTC), instrument=BTC, complete_range=(lo, hi), partial="incomplete"
    )
    assert [(c.open_time_ms, c.is_complete) for c in again["1h"]] == [(T + HOUR, True), (T + 2 * HOUR, False)]
    assert [c.is_complete for c in again["1d"]] == [False]
    assert again["1d"][0].trade_count == sum(1 for t in trades if lo <= t.ts_ms < hi)


def test_previous_close_seeds_carries_of_a_range_without_trades() -> None:
    empty = frame_from_trades([], BTC)
    got = aggregate_frame(
        empty,
        instrument=BTC,
        timeframes=("1m", "5m"),
        empty_policy=EmptyPolicy.CARRY,
        complete_range=(T + 2 * MINUTE, T + 10 * MINUTE),
        previous_close=Decimal("42.5"),
    )
    assert [(c.open_time_ms - T, c.close, c.trade_count) for c in got["1m"]] == [
        (m * MINUTE, Decimal("42.5"), 0) for m in range(2, 10)
    ]
    assert [c.open_time_ms - T for c in got["5m"]] == [5 * MINUTE]  # 00:00 5m is only partly in the range
    engine = reaggregate_trades(
        [],
        exchange="okx",
        inst_id=BTC.inst_id,
        timeframes=("1m", "5m"),
        empty_policy=EmptyPolicy.CARRY,
        complete_range=(T + 2 * MINUTE, T + 10 * MINUTE),
        previous_close=Decimal("42.5"),
    )
    assert {tf: [(c.open_time_ms, c.close) for c in cs] for tf, cs in engine.items()} == {
        tf: [(c.open_time_ms, c.close) for c in cs] for tf, cs in got.items()
    }
    with pytest.raises(ValueError, match="complete_range"):
        aggregate_frame(empty, instrument=BTC, previous_close=Decimal(1))


def test_reaggregating_unsorted_trades_sorts_once_and_costs_what_sorted_input_costs() -> None:
    # The issue: 50k shuffled trades peaked at 97 MB against 0.1 MB sorted (and ran superlinearly).
    rng = random.Random(5)
    tape = [grid_trade(BTC, 10 + i, T + i * 1_000, 1_000 + rng.randrange(50), 1 + i % 7, i % 3 == 0)
            for i in range(20_000)]  # fmt: skip
    shuffled = rng.sample(tape, len(tape))
    shuffled.append(dataclasses.replace(tape[5], price=tape[5].price + 1))  # a later copy: ignored

    def run(trades: list[Trade]) -> tuple[dict[str, list[Candle]], int]:
        tracemalloc.start()
        try:
            result = reaggregate_trades(trades, exchange="okx", inst_id=BTC.inst_id, timeframes=("1m", "1h"))
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    (in_order, sorted_peak), (unsorted, shuffled_peak) = run(tape), run(shuffled)
    for tf in ("1m", "1h"):
        assert not differences(unsorted[tf], in_order[tf])
        assert not differences(unsorted[tf], reference_candles(tape, tf))
    assert shuffled_peak < 2 * sorted_peak


def test_reaggregating_no_trades_gives_every_timeframe_an_empty_list() -> None:
    # a range without trades: the result still has a key per asked timeframe (it had none: {} made callers
    # that index by timeframe raise KeyError), and trades outside the complete range count as none
    from collectors.candles import reaggregate_trades
    from tests.builders import trade

    assert reaggregate_trades([], exchange="okx", inst_id="BTC-USDT", timeframes=("1m", "1h")) == {
        "1m": [],
        "1h": [],
    }
    outside = reaggregate_trades(
        [trade(10, ts_ms=MONDAY_MS + 120 * MINUTE)],
        exchange="okx",
        inst_id="BTC-USDT",
        timeframes=("1m",),
        complete_range=(MONDAY_MS, MONDAY_MS + MINUTE),
    )
    assert outside == {"1m": []}
