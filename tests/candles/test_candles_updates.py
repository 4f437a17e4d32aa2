"""``CandleUpdated`` content: each call updates exactly the open candles it changed, with their values then.

The engine builds updates from frozen views and, when a call only added trades to the finest open candle
(on_trades' fast loop), rebuilds only the views that contain it; these tests hold both ways to the open
candles themselves (``open_candles()`` before and after each call), whatever else happens in between:
late and duplicate trades, ``advance``, no-data spans, several fold chains.
"""

from __future__ import annotations

import os
from decimal import Decimal

from candles_strategies import arrivals_within, chunkings, tapes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.candles import CandleEngine, CandleUpdated, EmptyPolicy, EngineConfig
from collectors.model import DEFAULT_TIMEFRAMES, Candle, Trade
from tests.builders import BTC, MINUTE, MONDAY_MS, grid_trade

SETTINGS = settings(
    max_examples=int(os.environ.get("CANDLES_MAX_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_Key = tuple[str, int]
# the default chain, two chains (3m is not nested in 5m), a lone coarse series, the week's Monday offset
_CONFIGS = (DEFAULT_TIMEFRAMES, ("1m", "3m", "5m", "15m"), ("1s", "1m", "1h"), ("5m",), ("1h", "1d", "1w"))


def _open(engine: CandleEngine) -> dict[_Key, Candle]:
    return {(c.timeframe, c.open_time_ms): c for c in engine.open_candles()}


@SETTINGS
@given(
    data=st.data(),
    timeframes=st.sampled_from(_CONFIGS),
    policy=st.sampled_from(EmptyPolicy),
    lateness_ms=st.sampled_from((0, 2_000, 30_000)),
)
def test_each_call_updates_exactly_the_candles_it_changed(
    data: st.DataObject, timeframes: tuple[str, ...], policy: EmptyPolicy, lateness_ms: int
) -> None:
    tape = data.draw(tapes(max_trades=60, max_gap_ms=data.draw(st.sampled_from((3_000, 40_000, 3_600_000)))))
    arrived = data.draw(arrivals_within(tape.trades, lateness_ms + 5_000))  # some late, some duplicated
    config = EngineConfig(
        timeframes=timeframes, empty_policy=policy, allowed_lateness_ms=lateness_ms, retention_ms=60_000
    )
    engine = CandleEngine(exchange="okx", inst_id=tape.instrument.inst_id, config=config)
    unread: list[tuple[CandleUpdated, Candle]] = []  # read only at the end: the value must not move
    before = _open(engine)
    for chunk in data.draw(chunkings(arrived)):
        action = data.draw(st.sampled_from(("trades", "trades", "trades", "one", "advance", "no_data")))
        if action == "advance" and engine.watermark_ms is not None:
            events = engine.advance(engine.watermark_ms + data.draw(st.integers(0, 90_000)))
            events += engine.on_trades(chunk)
        elif action == "no_data" and engine.watermark_ms is not None:
            start = engine.watermark_ms - data.draw(st.integers(0, 120_000))
            events = engine.mark_no_data(start, start + data.draw(st.integers(1, 60_000)))
            events += engine.on_trades(chunk)
        elif action == "one":
            events = [e for trade in chunk for e in engine.on_trade(trade)]
        else:
            events = engine.on_trades(chunk)
        after = _open(engine)
        updates = [e for e in events if isinstance(e, CandleUpdated)]
        changed = {
            key
            for key, candle in after.items()
            if key not in before or before[key].trade_count != candle.trade_count
        }
        if action == "one":  # one call per trade: a candle may be updated by several of those calls
            assert {(e.timeframe, e.open_time_ms) for e in updates} >= changed
        else:
            keys = [
                (e.timeframe, e.open_time_ms) for e in updates
            ]  # the key, read without building the candle
            assert sorted(keys) == sorted(changed), (keys, changed)
            unread.extend((e, after[(e.timeframe, e.open_time_ms)]) for e in updates)
        before = after
    engine.flush()
    for event, expected in unread:
        assert event.candle == expected
        assert (event.timeframe, event.open_time_ms) == (expected.timeframe, expected.open_time_ms)


def test_a_frame_in_the_newest_minute_updates_each_timeframe_once_with_every_trade() -> None:
    """The fast loop's case: frames within one open minute (with the previous minute still open during
    lateness); every update equals the open candle, and the older open minute is not updated again."""
    T = MONDAY_MS

    def trade(trade_id: int, ts_ms: int, ticks: int) -> Trade:
        return grid_trade(BTC, trade_id, ts_ms, ticks, 1, True)

    eng = CandleEngine(exchange="okx", inst_id=BTC.inst_id)
    eng.on_trades([trade(1, T + MINUTE - 500, ticks=100)])
    first = eng.on_trades([trade(2, T + MINUTE + 10, ticks=110), trade(3, T + MINUTE + 20, ticks=90)])
    second = eng.on_trades([trade(4, T + MINUTE + 30, ticks=120), trade(5, T + MINUTE + 40, ticks=80)])
    open_now = _open(eng)
    for events in (first, second):
        updates = [e.candle for e in events if isinstance(e, CandleUpdated)]
        assert sorted(c.timeframe for c in updates) == sorted(DEFAULT_TIMEFRAMES)
        assert all(c.open_time_ms in (T + MINUTE, T) for c in updates)
    final = {
        (c.timeframe, c.open_time_ms): c for e in second if isinstance(e, CandleUpdated) for c in [e.candle]
    }
    assert final == {k: v for k, v in open_now.items() if k != ("1m", T)}
    assert final[("5m", T)].trade_count == 5 and (final[("5m", T)].high, final[("5m", T)].low) == (
        Decimal("12.0"),
        Decimal("8.0"),
    )
    assert [c.trade_count for e in first if isinstance(e, CandleUpdated) for c in [e.candle]] == [
        2,
        3,
        3,
        3,
        3,
        3,
    ]


def test_a_candle_closed_in_the_same_call_still_updates_the_coarser_candle_it_folds_into() -> None:
    """Found by the property above: a trade at 00:06:39.999 and one at 00:10:00 in one call. The first
    joins the 1m 00:06 candle, which the second closes within the call and folds into the 5m 00:05 candle
    (still open: it closes at 00:10:02); that 5m candle changed (one trade) but got no update, because
    folding did not carry the change flag (before: updates for 1m 00:10, 5m 00:10, 15m, 1h, 4h, 1d only)."""
    T = MONDAY_MS

    def trade(trade_id: int, ts_ms: int) -> Trade:
        return grid_trade(BTC, trade_id, ts_ms, 100, 1, False)

    eng = CandleEngine(exchange="okx", inst_id=BTC.inst_id)
    events = eng.on_trades([trade(2, T + 6 * MINUTE + 39_999), trade(3, T + 10 * MINUTE)])
    updated = {
        (e.candle.timeframe, e.candle.open_time_ms): e.candle for e in events if isinstance(e, CandleUpdated)
    }
    assert updated == _open(eng)
    assert updated[("5m", T + 5 * MINUTE)].trade_count == 1
