"""The carry and no-data state of the engine against the batch path (issue 8's reproductions).

Each case is a reproduction from the issue, with its numbers: 1m (and 5m) candles, ``carry``, lateness 0, on
one day from 10:00 UTC. The oracle is :func:`aggregate_frame` (and :func:`reaggregate_trades`), which the
reference in candles_reference.py checks in the property tests.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from candles_reference import differences, reference_candles

from collectors.candles import (
    CandleClosed,
    CandleEngine,
    CandleEvent,
    EmptyPolicy,
    RevisionRequired,
    aggregate_frame,
    final_candles,
    frame_from_trades,
    reaggregate_trades,
    revise_candle,
)
from collectors.candles.events import EngineConfig
from collectors.model import Candle, Trade
from tests.builders import BTC, MINUTE, MONDAY_MS, grid_trade

T = MONDAY_MS + 10 * 3_600_000  # 10:00 UTC


def at(minute: int, second: int = 0) -> int:
    return T + minute * MINUTE + second * 1_000


def trade(trade_id: int, ts_ms: int, price: int = 100) -> Trade:
    return grid_trade(BTC, trade_id, ts_ms, price * 10, 1, True)  # BTC ticks are 0.1


def engine(timeframes: tuple[str, ...] = ("1m",), retention_ms: int = 0) -> CandleEngine:
    config = EngineConfig(
        timeframes=timeframes,
        empty_policy=EmptyPolicy.CARRY,
        allowed_lateness_ms=0,
        retention_ms=retention_ms,
        emit_updates=False,
    )
    return CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=config)


def closed(events: list[CandleEvent], timeframe: str = "1m") -> list[Candle]:
    return [e.candle for e in events if isinstance(e, CandleClosed) and e.candle.timeframe == timeframe]


def batch(trades: list[Trade], timeframe: str, **options: object) -> list[Candle]:
    frame = frame_from_trades(trades, BTC)
    result = aggregate_frame(
        frame,
        instrument=BTC,
        timeframes=(timeframe,),
        empty_policy=EmptyPolicy.CARRY,
        **options,  # type: ignore[arg-type]
    )
    return result[timeframe]


def test_a_late_trade_beyond_retention_moves_the_close_the_engine_carries() -> None:
    eng = engine(("1m", "5m"))
    first, late = trade(1, at(0, 10), 100), trade(2, at(0, 50), 150)
    eng.on_trade(first)
    eng.advance(at(5))
    events = eng.on_trade(late)
    assert [e for e in events if isinstance(e, RevisionRequired)] == [
        RevisionRequired(trade=late, timeframes=("1m", "5m"))
    ]
    events = eng.advance(at(10))
    # 10:05-10:09 are emitted after the engine saw the 150: they carry it, as the batch path says
    assert [(c.open_time_ms, c.close) for c in closed(events)] == [
        (at(m), Decimal(150)) for m in range(5, 10)
    ]
    assert [(c.open_time_ms, c.close) for c in closed(events, "5m")] == [(at(5), Decimal(150))]
    for tf, count in (("1m", 5), ("5m", 1)):
        expected = batch([first, late], tf, closed_until_ms=at(10))[-count:]
        assert not differences(closed(events, tf), expected)


def test_a_restarted_engine_carries_from_its_first_trade_even_when_that_trade_is_late() -> None:
    eng = engine(("1m", "5m"))
    first, later = trade(1, at(0, 30), 100), trade(2, at(20, 30), 120)
    events = eng.advance(at(15))
    events += eng.on_trade(first)
    assert [e for e in events if isinstance(e, RevisionRequired)] == [
        RevisionRequired(trade=first, timeframes=("1m", "5m"))
    ]
    events += eng.on_trade(later) + eng.flush()
    minutes = closed(events)
    assert len(minutes) == 20  # 19 carried (10:01-10:19), then 10:20
    assert [c.open_time_ms for c in minutes[:19]] == [at(m) for m in range(1, 20)]
    assert all(c.trade_count == 0 and c.close == Decimal(100) for c in minutes[:19])
    for tf in ("1m", "5m"):
        expected = batch([first, later], tf)
        assert not differences(closed(events, tf), expected[1:])  # 10:00 itself: RevisionRequired


def test_a_no_data_span_is_kept_while_carried_candles_depend_on_it() -> None:
    trades = [trade(1, at(0, 1))]
    eng = engine(retention_ms=60_000)
    events = eng.on_trades(trades) + eng.mark_no_data(at(5), at(6))
    for minute in range(1, 61):
        events += eng.advance(at(minute))
    minutes = final_candles(events)["1m"]
    incomplete = [(c.open_time_ms - T) // MINUTE for c in minutes if not c.is_complete]
    assert incomplete == list(range(6, 60))  # 54 candles, as the batch path and one advance(11:00) say
    expected = batch(trades, "1m", no_data=[(at(5), at(6))], closed_until_ms=at(60))
    assert not differences(minutes, expected)
    once = engine(retention_ms=60_000)
    at_once = once.on_trades(trades) + once.mark_no_data(at(5), at(6)) + once.advance(at(60))
    assert not differences(final_candles(at_once)["1m"], expected)


def _backfilled(fills: list[tuple[int, int]]) -> list[Candle]:
    eng = engine(retention_ms=3_600_000)
    events = eng.on_trade(trade(1, at(0, 5))) + eng.mark_no_data(at(0, 10), at(20)) + eng.advance(at(30))
    for start, end in fills:
        events += eng.mark_filled(start, end)
    return final_candles(events + eng.flush())["1m"]


def test_mark_filled_in_pieces_newest_first_carries_every_bucket() -> None:
    newest_first = _backfilled([(at(10), at(20)), (at(0, 10), at(10))])
    assert len(newest_first) == 30
    expected = batch([trade(1, at(0, 5))], "1m", closed_until_ms=at(30))
    assert not differences(newest_first, expected)
    assert not differences(_backfilled([(at(0, 10), at(10)), (at(10), at(20))]), expected)
    assert not differences(_backfilled([(at(0, 10), at(20))]), expected)


def test_mark_filled_after_seed_close_restores_the_seeded_carries() -> None:
    eng = engine(retention_ms=600_000)
    eng.seed_close(Decimal(100), at(0))
    events = eng.mark_no_data(at(0, 30), at(3))
    events += eng.on_trade(trade(1, at(5, 10), 120))
    events += eng.mark_filled(at(0, 30), at(3))
    minutes = final_candles(events)["1m"]
    assert [(c.open_time_ms, c.close, c.trade_count, c.is_complete) for c in minutes] == [
        (at(m), Decimal(100), 0, True) for m in range(5)
    ]
    expected = reaggregate_trades(
        [trade(1, at(5, 10), 120)],
        exchange="okx",
        inst_id=BTC.inst_id,
        timeframes=("1m",),
        empty_policy=EmptyPolicy.CARRY,
        complete_range=(at(0), at(5)),
        previous_close=Decimal(100),
    )["1m"]
    assert not differences(minutes, expected)


def test_the_reference_agrees_with_the_batch_oracle_on_these_tapes() -> None:
    tape = [trade(1, at(0, 10), 100), trade(2, at(0, 50), 150), trade(3, at(20, 30), 120)]
    spans = [(at(5), at(6))]
    expected = reference_candles(tape, "1m", carry=True, no_data=spans, closed_until_ms=at(30))
    assert not differences(batch(tape, "1m", no_data=spans, closed_until_ms=at(30)), expected)


def test_a_restart_span_marked_before_the_first_candle_still_skips_the_late_carries() -> None:
    spans = [(at(5), at(8))]  # the downtime, marked as soon as the engine starts again
    eng = engine(("1m", "5m"))
    first, later = trade(1, at(0, 30), 100), trade(2, at(16, 30), 120)
    events = eng.mark_no_data(*spans[0]) + eng.advance(at(15))
    events += eng.on_trade(later) + eng.advance(at(30))  # the span is older than anything in memory now
    events += eng.on_trade(first) + eng.flush()  # the catch-up finds an older trade
    for tf in ("1m", "5m"):
        expected = batch([first, later], tf, no_data=spans, closed_until_ms=at(30))
        got = sorted(closed(events, tf), key=lambda c: c.open_time_ms)
        assert not differences(got, expected[1:])


def test_a_trade_that_would_carry_absurdly_far_back_is_refused_before_anything_changes() -> None:
    config = EngineConfig(
        timeframes=("1m",), empty_policy=EmptyPolicy.CARRY, allowed_lateness_ms=0, max_carried_per_call=100
    )
    eng = CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=config)
    eng.advance(at(200))
    with pytest.raises(ValueError, match="would carry 199 empty 1m candles"):
        eng.on_trade(trade(1, at(0, 30)))
    assert eng.stats.trades_processed == 0
    assert len(closed(eng.on_trade(trade(2, at(99, 30))))) == 100  # 10:100-10:199, at the limit


@pytest.mark.parametrize("policy", [EmptyPolicy.CARRY, EmptyPolicy.SKIP])
@pytest.mark.parametrize("retention_ms", [0, 600_000])
def test_a_seeded_engine_never_emits_candles_before_its_seed(policy: EmptyPolicy, retention_ms: int) -> None:
    # A restart: the old engine stored every candle before 10:10 (10:08 holds trade 2 at 110); the new one
    # is seeded with the close before 10:10. A catch-up trade for 10:08 is the stored candle's business.
    config = EngineConfig(
        timeframes=("1m", "5m"), empty_policy=policy, allowed_lateness_ms=0, retention_ms=retention_ms
    )
    eng = CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=config)
    eng.seed_close(Decimal(110), at(10))
    events = eng.on_trade(trade(5, at(10, 5), 130)) + eng.advance(at(12))
    late = trade(3, at(8, 30), 90)
    assert eng.on_trade(late) == [RevisionRequired(trade=late, timeframes=("1m", "5m"))]
    after = final_candles(eng.advance(at(13)) + eng.flush())
    assert min(c.open_time_ms for candles in after.values() for c in candles) >= at(10)
    if policy is EmptyPolicy.CARRY:  # the seeded close is still the one carried
        assert [(c.open_time_ms, c.close) for c in closed(events)] == [(at(10), 130), (at(11), 130)]


def test_revise_candle_makes_a_carried_candle_that_gets_a_trade_complete() -> None:
    # 10:06 was carried across the 10:05 no-data span (incomplete: its close is unconfirmed) and forgotten;
    # a trade for it arrives: it is a real candle now, outside any span, so complete (as the batch path says).
    spans = [(at(5), at(6))]
    eng = engine()
    events = eng.on_trade(trade(1, at(0, 10))) + eng.mark_no_data(*spans[0]) + eng.advance(at(8))
    stored = next(c for c in closed(events) if c.open_time_ms == at(6))
    assert (stored.trade_count, stored.is_complete) == (0, False)
    late = trade(2, at(6, 30), 120)
    assert eng.on_trade(late) == [RevisionRequired(trade=late, timeframes=("1m",))]
    revised = revise_candle(stored, [late], no_data=spans)
    expected = batch([trade(1, at(0, 10)), late], "1m", no_data=spans)
    assert not differences([revised], [c for c in expected if c.open_time_ms == at(6)])
    assert revised.is_complete and revised.revision == 1
    in_span = dataclasses.replace(stored, open_time_ms=at(5))  # a carry emitted before its span was marked
    assert not revise_candle(in_span, [trade(3, at(5, 1))], no_data=spans).is_complete
