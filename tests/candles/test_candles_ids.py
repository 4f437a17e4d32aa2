"""The compact trade-id memory: a set of ranges with minute-based forgetting, and its memory bound."""

from __future__ import annotations

import random
import tracemalloc
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.candles import CandleEngine, EngineConfig
from collectors.candles.ids import TradeIds
from collectors.model import Side
from tests.builders import MONDAY_MS, trade

T = MONDAY_MS


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 60), st.integers(0, 8)),
            st.tuples(st.just("forget"), st.integers(0, 9), st.just(0)),
        ),
        max_size=80,
    )
)
def test_ranges_behave_like_a_set_and_forget_exactly_the_ids_of_expired_minutes(
    ops: list[tuple[str, int, int]],
) -> None:
    ids = TradeIds()
    minute_of: dict[int, int] = {}  # the model: id -> minute of its trade
    for op, value, minute in ops:
        if op == "add":
            if value in minute_of:
                assert value in ids
                continue
            assert value not in ids
            ids.add(value, minute)
            minute_of[value] = minute
        else:
            ids.forget_minutes_before(value)
            minute_of = {i: m for i, m in minute_of.items() if m >= value}  # whatever the id order
        held = sorted(i for i in range(-1, 62) if i in ids)
        assert held == sorted(minute_of)
        assert len(ids) == len(minute_of)
        assert all(a < b for a, b in zip(ids.starts, ids.starts[1:], strict=False))


def test_ids_that_do_not_increase_are_forgotten_with_their_minute() -> None:
    # The issue: 100k random ids at 10 trades/s were all held (99,956) and throughput fell as the tape grew.
    rng = random.Random(8)
    trade_ids = rng.sample(range(10**9), 100_000)
    config = EngineConfig(emit_updates=False)  # lateness 2 s + retention 10 min
    engine = CandleEngine(exchange="okx", inst_id="BTC-USDT", config=config)
    price, size = Decimal(60_000), Decimal("0.001")
    for i, trade_id in enumerate(trade_ids):
        engine.on_trade(trade(trade_id, ts_ms=T + i * 100, price=price, size=size, side=Side.BUY))
    last_ms = T + (len(trade_ids) - 1) * 100
    # held: the trades of the minutes not entirely before watermark - lateness - retention
    horizon_minute = (last_ms - 2_000 - 600_000) // 60_000
    window = [i for i in range(len(trade_ids)) if (T + i * 100) // 60_000 >= horizon_minute]
    assert len(engine._ids) == len(window) == 6_400
    assert (
        engine.on_trade(trade(trade_ids[window[0]], ts_ms=last_ms, price=price, size=size, side=Side.BUY))
        == []
        and engine.stats.duplicates == 1
    )


def test_contiguous_ids_at_1000_trades_per_second_take_one_range_per_minute() -> None:
    config = EngineConfig(emit_updates=False, retention_ms=60_000)  # a 62 s window: 62k ids at 1000/s
    engine = CandleEngine(exchange="okx", inst_id="BTC-USDT", config=config)
    price, size = Decimal(60_000), Decimal("0.001")
    trades = [trade(10**9 + i, ts_ms=T + i, price=price, size=size, side=Side.BUY) for i in range(200_000)]
    tracemalloc.start()
    try:
        for fill in trades:
            engine.on_trade(fill)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ids = engine._ids
    assert ids.ranges == len({m for m in ids.minutes}) <= 3  # a 62 s window spans at most 3 minutes
    assert 62_000 <= len(ids) <= 125_000  # the ids of the last lateness + retention and up to a minute
    assert peak < 1_000_000  # a set of those ids alone took ~60 bytes each (over 4 MB here)
    assert engine.on_trade(trades[-1]) == [] and engine.stats.duplicates == 1
