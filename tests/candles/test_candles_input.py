"""Input the candle paths refuse instead of taking silently, and the all-or-nothing rule for a trade."""

from __future__ import annotations

import dataclasses
from decimal import Context, Decimal

import pandas as pd
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
    revise_candle,
    rollup,
)
from collectors.errors import InvalidRecord
from collectors.model import Side, Trade
from tests.builders import BTC, MINUTE, MONDAY_MS, grid_trade

T = MONDAY_MS + 10 * 3_600_000  # 10:00 UTC
GOOD = grid_trade(BTC, 1, T + 1_000, 1_000, 5, True)


def engine(**config: object) -> CandleEngine:
    return CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=EngineConfig(**config))  # type: ignore[arg-type]


BAD_TRADES = [
    ("size", dataclasses.replace(GOOD, size=Decimal(0)), "must be a finite number > 0"),
    ("size", dataclasses.replace(GOOD, size=Decimal("-0.1")), "must be a finite number > 0"),
    ("price", dataclasses.replace(GOOD, price=Decimal(0)), "must be a finite number > 0"),
    ("price", dataclasses.replace(GOOD, price=Decimal("Infinity")), "must be a finite number > 0"),
    ("price", dataclasses.replace(GOOD, price=Decimal("NaN")), "must be a finite number > 0"),
    ("price", dataclasses.replace(GOOD, price=1.5), "must be a Decimal"),
    ("ts_ms", dataclasses.replace(GOOD, ts_ms=float(T + 1_000)), "must be int epoch milliseconds"),
    ("side", dataclasses.replace(GOOD, side="buy"), "as a Side"),
    ("side", dataclasses.replace(GOOD, side="hold"), "as a Side"),
    ("trade_id", dataclasses.replace(GOOD, trade_id="7"), "must be an int"),
]


@pytest.mark.parametrize(
    ("field", "bad", "reason"), BAD_TRADES, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_TRADES)]
)
def test_the_engine_refuses_what_check_trade_refuses_and_changes_nothing(
    field: str, bad: Trade, reason: str
) -> None:
    eng = engine(timeframes=("1m", "5m"))
    eng.on_trade(grid_trade(BTC, 0, T, 1_000, 1, True))
    before = eng.open_candles()
    with pytest.raises(InvalidRecord, match=reason) as caught:
        eng.on_trade(bad)
    assert caught.value.field == field
    assert eng.open_candles() == before and eng.stats.trades_processed == 1
    with pytest.raises(InvalidRecord, match=reason):
        frame_from_trades([GOOD, bad], BTC)


def test_a_plain_string_side_is_no_longer_counted_as_a_sell() -> None:
    plain = dataclasses.replace(GOOD, side="buy")
    with pytest.raises(InvalidRecord, match="side"):
        engine().on_trades([plain])
    with pytest.raises(InvalidRecord, match="side"):
        frame_from_trades([plain], BTC)
    with pytest.raises(InvalidRecord, match="side"):
        revise_candle(_stored_candle(), [dataclasses.replace(plain, trade_id=9)])


def _stored_candle() -> object:
    eng = engine(timeframes=("1m",), emit_updates=False)
    return final_candles(eng.on_trade(GOOD) + eng.flush())["1m"][0]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("price_ticks", 0, "must be a finite number > 0"),
        ("size_lots", 0, "must be a finite number > 0"),
        ("ts_ms", T // 1_000, "outside 2000-01-01..2100-01-01 UTC"),
    ],
)
def test_frame_rows_breaking_the_trade_rule_are_refused_like_trades(
    column: str, value: int, reason: str
) -> None:
    frame = frame_from_trades([GOOD, grid_trade(BTC, 2, T + 2_000, 1_000, 5, True)], BTC)
    frame.loc[1, column] = value
    with pytest.raises(InvalidRecord, match=reason) as caught:
        aggregate_frame(frame, instrument=BTC, timeframes=("1m",))
    assert caught.value.field == column


def test_values_beyond_the_engines_exact_range_are_refused_before_anything_changes() -> None:
    # The trap: 1E+100 beside 1E-30 made a 5m candle with trade_count 2, volume 3 and a sell volume
    # on an all-buy tape, and a retry counted as a duplicate. Such a value is refused now, whole.
    eng = engine(timeframes=("1m", "5m"), allowed_lateness_ms=0, emit_updates=False)
    huge = dataclasses.replace(GOOD, trade_id=1, ts_ms=T, price=Decimal("1E+100"), size=Decimal(1))
    with pytest.raises(InvalidRecord, match="candle engine's exact range") as caught:
        eng.on_trade(huge)
    assert caught.value.field == "price"
    tape = [
        dataclasses.replace(huge, trade_id=2, ts_ms=T + MINUTE, price=Decimal("1E-30")),
        dataclasses.replace(huge, trade_id=3, ts_ms=T + 2 * MINUTE, price=Decimal(1)),
    ]
    events = eng.on_trades(tape) + eng.flush()
    assert eng.stats.trades_processed == 2
    for tf in ("1m", "5m"):
        assert not differences(final_candles(events)[tf], reference_candles(tape, tf))
    (five,) = final_candles(events)["5m"]
    assert (five.trade_count, five.volume, five.sell_volume) == (2, Decimal(2), Decimal(0))


def test_every_value_in_range_sums_exactly_in_every_timeframe_without_a_trap() -> None:
    # 9E+39 x 9E+39 beside 1E-40 x 1E-40 needs 160 digits: the old 120-digit context trapped half way.
    big = dataclasses.replace(GOOD, trade_id=1, ts_ms=T, price=Decimal("9E+39"), size=Decimal("9E+39"))
    tape = [
        big,
        dataclasses.replace(big, trade_id=2, ts_ms=T + MINUTE, price=Decimal("1E-40"), size=Decimal("1E-40")),
        dataclasses.replace(big, trade_id=3, ts_ms=T + 2 * MINUTE, price=Decimal("1.5"), size=Decimal("2")),
    ]
    eng = engine(timeframes=("1m", "5m"), allowed_lateness_ms=0, emit_updates=False)
    events = eng.on_trades(tape) + eng.flush()
    for tf in ("1m", "5m"):
        assert not differences(final_candles(events)[tf], reference_candles(tape, tf))
    (five,) = final_candles(events)["5m"]
    wide = Context(prec=500)
    assert five.quote_volume == wide.add(wide.add(Decimal("8.1E+79"), Decimal("1E-80")), Decimal(3))


def test_rollup_counts_the_newest_revision_of_each_candle_once() -> None:
    eng = engine(timeframes=("1m",), allowed_lateness_ms=0, retention_ms=600_000, emit_updates=False)
    tape = [grid_trade(BTC, 1, T + 1_000, 1_000, 1, True), grid_trade(BTC, 3, T + MINUTE + 1, 1_200, 2, True)]
    events = eng.on_trades(tape)
    events += eng.on_trade(grid_trade(BTC, 2, T + 2_000, 1_100, 4, False))  # revises 10:00
    events += eng.flush()
    every_version = [e.candle for e in events if e.candle.timeframe == "1m"]  # type: ignore[union-attr]
    assert [(c.open_time_ms, c.revision) for c in every_version] == [(T, 0), (T, 1), (T + MINUTE, 0)]
    (five,) = rollup(every_version, "5m")
    assert (five.trade_count, five.volume, five.sell_volume) == (3, Decimal("7E-8"), Decimal("4E-8"))
    assert rollup(list(reversed(every_version)), "5m") == [five]
    conflicting = dataclasses.replace(every_version[1], volume=Decimal(1))
    with pytest.raises(ValueError, match="two different candles"):
        rollup([*every_version, conflicting], "5m")


def test_frame_columns_keep_is_buy_from_side_members_only() -> None:
    frame = frame_from_trades([GOOD, dataclasses.replace(GOOD, trade_id=2, side=Side.SELL)], BTC)
    assert frame["is_buy"].tolist() == [True, False]
    assert isinstance(frame, pd.DataFrame)


BAD_CLOSES = [Decimal("NaN"), Decimal("Infinity"), Decimal(-1), Decimal(0), Decimal("1E+40"), 1.5, "100"]


@pytest.mark.parametrize("close", BAD_CLOSES, ids=[repr(c) for c in BAD_CLOSES])
def test_a_seeded_close_breaking_the_price_rule_is_refused(close: object) -> None:
    # seed_close and previous_close carried a NaN, a negative, a float or a str into every empty candle.
    eng = engine(timeframes=("1m",), empty_policy=EmptyPolicy.CARRY)
    with pytest.raises(InvalidRecord, match="price") as caught:
        eng.seed_close(close, T)  # type: ignore[arg-type]
    assert caught.value.field == "previous_close"
    assert eng.advance(T + 5 * MINUTE) == []  # nothing was seeded
    options = {
        "timeframes": ("1m",),
        "empty_policy": EmptyPolicy.CARRY,
        "complete_range": (T, T + 3 * MINUTE),
        "previous_close": close,
    }
    with pytest.raises(InvalidRecord, match="price"):
        aggregate_frame(frame_from_trades([GOOD], BTC), instrument=BTC, **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord, match="price"):
        reaggregate_trades([GOOD], exchange="okx", inst_id=BTC.inst_id, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("when", [float(T + 5 * MINUTE), Decimal(T + 5 * MINUTE), True, str(T)])
def test_times_that_are_not_int_milliseconds_are_refused_by_every_engine_method(when: object) -> None:
    # advance(float) and seed_close(from_ms=float) made float (or Decimal) open times.
    eng = engine(timeframes=("1m",), empty_policy=EmptyPolicy.CARRY, emit_updates=False)
    eng.on_trade(GOOD)
    for call in (
        lambda: eng.advance(when),  # type: ignore[arg-type]
        lambda: eng.mark_no_data(when, T + 10 * MINUTE),  # type: ignore[arg-type]
        lambda: eng.mark_filled(T, when),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match="int epoch milliseconds"):
            call()
    fresh = engine(timeframes=("1m",), empty_policy=EmptyPolicy.CARRY)
    with pytest.raises(TypeError, match="int epoch milliseconds"):
        fresh.seed_close(Decimal(100), when)  # type: ignore[arg-type]
    events = eng.advance(T + 3 * MINUTE) + eng.flush()
    assert [type(c.open_time_ms) for c in final_candles(events)["1m"]] == [int, int]  # 10:00, carried 10:01
