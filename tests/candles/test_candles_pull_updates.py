"""``CandleEngine.updates()``: the open candles changed since the last read, read on the consumer's clock.

The live collector reads updates on its tick (``emit_updates=False``) instead of taking one per trade and call.
What it then writes must be what a consumer of the per-call updates would have written at the same instants
(per candle, the newest update not yet superseded by the candle's close), each read being the open candle as
it stands.
"""

from __future__ import annotations

import os
from dataclasses import replace

from candles_strategies import arrivals_within, chunkings, tapes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.candles import (
    CandleClosed,
    CandleEngine,
    CandleEvent,
    CandleRevised,
    CandleUpdated,
    EmptyPolicy,
    EngineConfig,
)
from collectors.model import DEFAULT_TIMEFRAMES, Candle
from tests.builders import BTC, MINUTE, MONDAY_MS, grid_trade

SETTINGS = settings(
    max_examples=int(os.environ.get("CANDLES_MAX_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_Key = tuple[str, int]
_CONFIGS = (DEFAULT_TIMEFRAMES, ("1m", "3m", "5m", "15m"), ("1s", "1m", "1h"), ("5m",), ("1h", "1d", "1w"))


class _Pending:
    """What a writer of updates holds between two reads: the newest update per candle, dropped at its close."""

    def __init__(self) -> None:
        self.rows: dict[_Key, Candle] = {}

    def take(self, events: list[CandleEvent]) -> None:
        for event in events:
            if isinstance(event, CandleUpdated):
                self.rows[(event.timeframe, event.open_time_ms)] = event.candle
            elif isinstance(event, CandleClosed | CandleRevised):
                self.rows.pop((event.candle.timeframe, event.candle.open_time_ms), None)

    def read(self) -> dict[_Key, Candle]:
        rows, self.rows = self.rows, {}
        return rows


@SETTINGS
@given(
    data=st.data(),
    timeframes=st.sampled_from(_CONFIGS),
    policy=st.sampled_from(EmptyPolicy),
    lateness_ms=st.sampled_from((0, 2_000, 30_000)),
)
def test_updates_read_on_a_clock_equal_the_newest_per_call_updates(
    data: st.DataObject, timeframes: tuple[str, ...], policy: EmptyPolicy, lateness_ms: int
) -> None:
    tape = data.draw(tapes(max_trades=60, max_gap_ms=data.draw(st.sampled_from((3_000, 40_000, 3_600_000)))))
    arrived = data.draw(arrivals_within(tape.trades, lateness_ms + 5_000))  # some late, some duplicated
    per_call, on_clock = (
        CandleEngine(
            exchange="okx",
            inst_id=tape.instrument.inst_id,
            config=EngineConfig(
                timeframes=timeframes,
                empty_policy=policy,
                allowed_lateness_ms=lateness_ms,
                retention_ms=60_000,
                emit_updates=emit,
            ),
        )
        for emit in (True, False)
    )
    ours, theirs = _Pending(), _Pending()
    for chunk in data.draw(chunkings(arrived)):
        action = data.draw(st.sampled_from(("trades", "trades", "advance", "no_data", "filled")))
        step = data.draw(st.integers(0, 90_000))
        for engine, pending in ((per_call, theirs), (on_clock, ours)):
            if action == "advance" and engine.watermark_ms is not None:
                pending.take(engine.advance(engine.watermark_ms + step))
            elif action in ("no_data", "filled") and engine.watermark_ms is not None:
                start = engine.watermark_ms - 30_000
                mark = engine.mark_no_data if action == "no_data" else engine.mark_filled
                pending.take(mark(start, start + 40_000))
            pending.take(engine.on_trades(chunk))
        if data.draw(st.booleans()):  # the consumer's clock: read now
            ours.take(on_clock.updates())
            got, expected = ours.read(), theirs.read()
            assert got.keys() == expected.keys()
            # each read is the open candle as it stands; a per-call update can be older than a no-data mark
            # that changed only the candle's completeness (no call updates a candle for that)
            opened = {(c.timeframe, c.open_time_ms): c for c in on_clock.open_candles()}
            assert all(opened[key] == candle for key, candle in got.items())
            assert {k: replace(c, is_complete=True) for k, c in got.items()} == {
                k: replace(c, is_complete=True) for k, c in expected.items()
            }
    ours.take(on_clock.updates())
    assert ours.read().keys() == theirs.read().keys()
    assert per_call.open_candles() == on_clock.open_candles()
    assert on_clock.updates() == []  # nothing changed since


def test_a_thousand_trades_in_one_candle_between_reads_are_one_update_per_timeframe() -> None:
    engine = CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=EngineConfig(emit_updates=False))
    start = MONDAY_MS + 5 * MINUTE
    trades = [grid_trade(BTC, i + 1, start + i, 100 + i % 7, 1, i % 2 == 0) for i in range(1_000)]
    for trade in trades:
        assert engine.on_trades([trade]) == []  # nothing per call
    updates = [u for u in engine.updates() if isinstance(u, CandleUpdated)]
    assert [(u.timeframe, u.open_time_ms) for u in updates] == [
        ("1m", start),
        ("5m", start),
        ("15m", MONDAY_MS),
        ("1h", MONDAY_MS),
        ("4h", MONDAY_MS),
        ("1d", MONDAY_MS),
    ]
    assert {(u.candle.trade_count, u.candle.open, u.candle.close, u.candle.is_closed) for u in updates} == {
        (1_000, trades[0].price, trades[-1].price, False)
    }
    assert engine.updates() == []
