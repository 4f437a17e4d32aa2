"""The vectorised batch path: overflow safety, ordering, duplicates, no-data, trailing carries, rollup errors."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
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
    rollup,
    same_values,
    to_units,
)
from collectors.model import CandleSource
from tests.builders import BTC, MINUTE, MONDAY_MS, grid_trade

T = MONDAY_MS


def test_quote_volume_beyond_int64_is_computed_on_python_ints() -> None:
    lots = 4 * 10**18  # 40 BTC... of a coin with 1e-8 lots; price x size overflows int64 by far
    trades = [grid_trade(BTC, i, T + i, 10**12, lots, i % 3 == 0) for i in range(1, 5)]
    result = aggregate_frame(frame_from_trades(trades, BTC), instrument=BTC, timeframes=("1m", "1h"))
    for tf, candles in result.items():
        assert not differences(candles, reference_candles(trades, tf))


def test_ticks_beyond_int64_are_refused_with_a_pointer_to_the_engine() -> None:
    with pytest.raises(ValueError, match="CandleEngine"):
        frame_from_trades([grid_trade(BTC, 1, T, 10**19, 1, True)], BTC)


def test_unordered_rows_with_duplicates_and_no_data() -> None:
    trades = [grid_trade(BTC, i, T + i * 7_000, 100 + i % 5, i, i % 2 == 0) for i in range(1, 60)]
    frame = frame_from_trades([*reversed(trades), trades[3], trades[10]], BTC)
    spans = [(T + 2 * MINUTE, T + 3 * MINUTE + 1)]
    result = aggregate_frame(frame, instrument=BTC, timeframes=("1m", "5m"), no_data=spans)
    for tf, candles in result.items():
        assert not differences(candles, reference_candles(trades, tf, no_data=spans))
        assert [c.is_complete for c in candles].count(False) == (2 if tf == "1m" else 1)


def test_carry_runs_on_to_closed_until() -> None:
    trades = [grid_trade(BTC, 1, T + 1_000, 100, 1, True)]
    until = T + 10 * MINUTE + 30_000
    batch = aggregate_frame(
        frame_from_trades(trades, BTC),
        instrument=BTC,
        timeframes=("1m",),
        empty_policy=EmptyPolicy.CARRY,
        closed_until_ms=until,
    )["1m"]
    assert len(batch) == 10  # minutes 0..9 end at or before 10:30
    streamed = reaggregate_trades(
        trades,
        exchange="okx",
        inst_id=BTC.inst_id,
        timeframes=("1m",),
        empty_policy=EmptyPolicy.CARRY,
        closed_until_ms=until,
    )["1m"]
    assert len(streamed) == len(batch) and all(map(same_values, streamed, batch))
    assert not differences(batch, reference_candles(trades, "1m", carry=True, closed_until_ms=until))


def test_empty_frame_gives_no_candles() -> None:
    empty = frame_from_trades([], BTC)
    assert aggregate_frame(empty, instrument=BTC) == {tf: [] for tf in ("1m", "5m", "15m", "1h", "4h", "1d")}


def test_frame_without_required_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        aggregate_frame(pd.DataFrame({"ts_ms": [1]}), instrument=BTC)


def test_reaggregating_a_live_range_gives_identical_rows() -> None:
    trades = [grid_trade(BTC, i, T + i * 1_300, 100 + (i * 7) % 13, i, i % 2 == 1) for i in range(1, 400)]
    live = reaggregate_trades(trades, exchange="okx", inst_id=BTC.inst_id, source=CandleSource.LIVE)
    again = aggregate_frame(frame_from_trades(trades, BTC), instrument=BTC)
    for tf in live:
        assert len(live[tf]) == len(again[tf]) and all(map(same_values, live[tf], again[tf]))
        assert {c.source for c in again[tf]} == {CandleSource.REAGGREGATE}


def test_rollup_refuses_mixed_or_non_nesting_input() -> None:
    trades = [grid_trade(BTC, 1, T, 100, 1, True)]
    minutes = reference_candles(trades, "1m")
    fives = reference_candles(trades, "5m")
    with pytest.raises(ValueError, match="mixes"):
        rollup([*minutes, *fives], "1h")
    with pytest.raises(ValueError, match="do not nest"):
        rollup(fives, "3m")
    (hour,) = rollup(minutes, "1h")
    assert (hour.timeframe, hour.open, hour.volume) == ("1h", Decimal("10.0"), Decimal("0.00000001"))


@pytest.mark.parametrize(
    ("ticks", "lots", "count"),
    [
        (600_000, 10**9, 20_000),  # product fits, quote sum needs limbs
        (10**6, 10**13, 50),  # product needs the size split
        (10**12, 4 * 10**18, 5),  # price beyond 2**32: Python integers
        (30, 50, 100),  # everything fits in int64
    ],
)
def test_every_overflow_regime_is_exact(ticks: int, lots: int, count: int) -> None:
    frame = pd.DataFrame(
        {
            "ts_ms": [T + i for i in range(count)],
            "trade_id": list(range(1, count + 1)),
            "price_ticks": [ticks - i % 3 for i in range(count)],
            "size_lots": [lots - i % 7 for i in range(count)],
            "is_buy": [i % 2 == 0 for i in range(count)],
        }
    )
    (candle,) = aggregate_frame(frame, instrument=BTC, timeframes=("1h",))["1h"]
    rows = list(frame.itertuples(index=False))
    volume = sum(int(r.size_lots) for r in rows)
    quote = sum(int(r.price_ticks) * int(r.size_lots) for r in rows)
    buy = sum(int(r.size_lots) for r in rows if r.is_buy)
    assert candle.volume == Decimal(f"{volume}E-8")
    assert candle.quote_volume == Decimal(f"{quote}E-9")
    assert candle.buy_volume == Decimal(f"{buy}E-8")
    assert candle.sell_volume == Decimal(f"{volume - buy}E-8")


def _frame(**overrides: object) -> pd.DataFrame:
    columns: dict[str, object] = {
        "ts_ms": [T, T + 1],
        "trade_id": [1, 2],
        "price_ticks": [100, 101],
        "size_lots": [5, 7],
        "is_buy": [True, False],
    }
    return pd.DataFrame(columns | overrides)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("is_buy", ["buy", "sell"], "'is_buy' must hold booleans"),
        ("is_buy", [1, 0], "'is_buy' must hold booleans"),
        ("price_ticks", [100.7, 100.2], "'price_ticks' must hold integers.*to_units"),
        ("price_ticks", [100.0, 101.0], "'price_ticks' must hold integers"),
        ("size_lots", ["5", "7"], "'size_lots' must hold integers"),
        ("ts_ms", [float(T), float(T + 1)], "'ts_ms' must hold integers"),
        ("trade_id", [True, False], "'trade_id' must hold integers"),
    ],
)
def test_frame_columns_are_never_silently_cast(column: str, values: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aggregate_frame(_frame(**{column: values}), instrument=BTC, timeframes=("1m",))


def test_frame_accepts_exact_integer_and_bool_columns_of_other_dtypes() -> None:
    frame = _frame(
        price_ticks=pd.Series([100, 101], dtype="uint32"),
        size_lots=pd.Series([5, 7], dtype=object),
        is_buy=pd.Series([True, False], dtype=object),
    )
    (candle,) = aggregate_frame(frame, instrument=BTC, timeframes=("1m",))["1m"]
    assert (candle.open, candle.close, candle.buy_volume, candle.sell_volume) == (
        Decimal("10.0"),
        Decimal("10.1"),
        Decimal("5E-8"),
        Decimal("7E-8"),
    )
    with pytest.raises(ValueError, match="'size_lots' has values beyond int64"):
        aggregate_frame(_frame(size_lots=pd.Series([2**63, 1], dtype="uint64")), instrument=BTC)


def test_to_units_converts_strings_and_decimals_exactly_and_refuses_off_grid_values() -> None:
    ticks = to_units(
        ["64321.2", "0.1", "100", "7.50", Decimal("3.3"), Decimal("1E+1"), "12."], Decimal("0.1")
    )
    assert ticks.dtype == np.int64
    assert ticks.tolist() == [643212, 1, 1000, 75, 33, 100, 120]
    lots = to_units(pd.Series(["0.00000001", "1E-8", "0.0001234", "2"]), Decimal("1E-8"), column="sz")
    assert lots.tolist() == [1, 1, 12340, 200_000_000]
    assert to_units(["0.5", "1.25"], Decimal("0.05")).tolist() == [10, 25]  # a step that is not 10**-k
    with pytest.raises(ValueError, match=r"'px': '64321\.25' is off the 0\.1 grid"):
        to_units(["1.0", "64321.25"], Decimal("0.1"), column="px")
    with pytest.raises(ValueError, match=r"off the 0\.05 grid"):
        to_units(["0.51"], Decimal("0.05"))
    with pytest.raises(ValueError, match="'sz': '-1' is not a non-negative decimal"):
        to_units(["-1"], Decimal(1), column="sz")
    with pytest.raises(ValueError, match="floats"):
        to_units([0.1], Decimal("0.1"))
    with pytest.raises(ValueError, match="beyond int64"):
        to_units(["1" + "0" * 19], Decimal(1))
    # the converted columns aggregate to exactly the candles of the same trades
    trades = [grid_trade(BTC, i, T + i, 600_000 + i, 10**i, i % 2 == 0) for i in range(1, 6)]
    frame = pd.DataFrame(
        {
            "ts_ms": [t.ts_ms for t in trades],
            "trade_id": [t.trade_id for t in trades],
            "price_ticks": to_units([str(t.price) for t in trades], BTC.tick_size),
            "size_lots": to_units([t.size for t in trades], BTC.lot_size),
            "is_buy": [t.side.value == "buy" for t in trades],
        }
    )
    (candle,) = aggregate_frame(frame, instrument=BTC, timeframes=("1m",))["1m"]
    assert not differences([candle], reference_candles(trades, "1m"))


def test_engine_and_batch_write_the_same_digits_for_zero_volumes() -> None:
    # The same value in another exponent ("0" against "0.00000000") is another row to a text column (SQLite):
    # re-aggregating a live range rewrote every candle without a buy (or a sell). Zero is written "0" by both.
    tape = [
        grid_trade(BTC, 1, T + 1_000, 1_000, 5, False),  # 00:00 sells only
        grid_trade(BTC, 2, T + MINUTE, 1_000, 5, True),  # 00:01 buys only
        grid_trade(BTC, 3, T + 5 * MINUTE, 1_000, 5, True),  # the 00:05 5m candle buys only
    ]
    eng = CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=EngineConfig(timeframes=("1m", "5m")))
    live = final_candles(eng.on_trades(tape) + eng.flush())
    batch = aggregate_frame(frame_from_trades(tape, BTC), instrument=BTC, timeframes=("1m", "5m"))
    fields = ("open", "high", "low", "close", "volume", "quote_volume", "buy_volume", "sell_volume")
    for tf in ("1m", "5m"):
        assert [[str(getattr(c, f)) for f in fields] for c in live[tf]] == [
            [str(getattr(c, f)) for f in fields] for c in batch[tf]
        ]
    assert [(str(c.buy_volume), str(c.sell_volume)) for c in live["1m"]] == [
        ("0", "5E-8"),
        ("5E-8", "0"),
        ("5E-8", "0"),
    ]
    rolled = rollup(live["1m"], "5m")
    assert [(str(c.buy_volume), str(c.sell_volume)) for c in rolled] == [("5E-8", "5E-8"), ("5E-8", "0")]
