"""Property tests: the engine, its chunkings, and the vectorised batch path all equal the reference."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter

from candles_reference import differences, reference_candles
from candles_strategies import TIMEFRAMES, Tape, arrivals_within, chunkings, tapes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.candles import (
    CandleClosed,
    CandleEngine,
    CandleEvent,
    CandleUpdated,
    EmptyPolicy,
    EngineConfig,
    aggregate_frame,
    final_candles,
    frame_from_trades,
    rollup,
)
from collectors.model import Candle, CandleSource

# CANDLES_MAX_EXAMPLES=1000 for a deeper search; 60 keeps the suite at a few seconds.
SETTINGS = settings(
    max_examples=int(os.environ.get("CANDLES_MAX_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _timeframes(policy: EmptyPolicy) -> st.SearchStrategy[tuple[str, ...]]:
    # 1s with hours-long gaps and carry would mean tens of thousands of candles per example.
    names = [tf for tf in TIMEFRAMES if not (policy is EmptyPolicy.CARRY and tf == "1s")]
    return st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True).map(tuple)


def _expected(tape: Tape, timeframes: tuple[str, ...], policy: EmptyPolicy) -> dict[str, list[Candle]]:
    carry = policy is EmptyPolicy.CARRY
    return {tf: reference_candles(tape.trades, tf, carry=carry) for tf in timeframes}


def _assert_equal(got: dict[str, list[Candle]], expected: dict[str, list[Candle]]) -> None:
    for tf, candles in expected.items():
        problems = differences(got.get(tf, []), candles)
        assert not problems, "\n".join(problems[:20])


@SETTINGS
@given(
    data=st.data(), policy=st.sampled_from(EmptyPolicy), lateness_ms=st.sampled_from((0, 1, 2_000, 30_000))
)
def test_live_arrival_within_lateness_equals_reference(
    data: st.DataObject, policy: EmptyPolicy, lateness_ms: int
) -> None:
    tape = data.draw(tapes())
    timeframes = data.draw(_timeframes(policy))
    arrived = data.draw(arrivals_within(tape.trades, lateness_ms))
    config = EngineConfig(timeframes=timeframes, allowed_lateness_ms=lateness_ms, empty_policy=policy)
    engine = CandleEngine(exchange="okx", inst_id=tape.instrument.inst_id, config=config)
    events: list[CandleEvent] = []
    for chunk in data.draw(chunkings(arrived)):
        events += engine.on_trades(chunk)
    events += engine.flush()

    _assert_equal(final_candles(events), _expected(tape, timeframes, policy))
    closed_per_key = Counter(
        (e.candle.timeframe, e.candle.open_time_ms) for e in events if isinstance(e, CandleClosed)
    )
    assert set(closed_per_key.values()) <= {1}  # each candle closes exactly once
    stats = engine.stats
    assert (stats.late_trades, stats.revisions, stats.revision_requests) == (0, 0, 0)
    assert stats.trades_processed == len(tape.trades)
    assert stats.duplicates == len(arrived) - len(tape.trades)


@SETTINGS
@given(data=st.data(), policy=st.sampled_from(EmptyPolicy))
def test_any_arrival_order_converges_through_revisions(data: st.DataObject, policy: EmptyPolicy) -> None:
    tape = data.draw(tapes(max_trades=25))
    timeframes = data.draw(_timeframes(policy))
    arrived = data.draw(st.permutations(tape.trades))
    config = EngineConfig(timeframes=timeframes, empty_policy=policy, retention_ms=10**12)
    engine = CandleEngine(exchange="okx", inst_id=tape.instrument.inst_id, config=config)
    events = engine.on_trades(arrived) + engine.flush()

    _assert_equal(final_candles(events), _expected(tape, timeframes, policy))
    assert engine.stats.revision_requests == 0


@SETTINGS
@given(data=st.data(), policy=st.sampled_from(EmptyPolicy))
def test_streaming_equals_batch_whatever_the_chunking(data: st.DataObject, policy: EmptyPolicy) -> None:
    tape = data.draw(tapes())
    timeframes = data.draw(_timeframes(policy))
    config = EngineConfig(timeframes=timeframes, empty_policy=policy, emit_updates=False)

    def stream(chunks: list[list]) -> dict[str, list[Candle]]:  # type: ignore[type-arg]
        engine = CandleEngine(exchange="okx", inst_id=tape.instrument.inst_id, config=config)
        events = [e for chunk in chunks for e in engine.on_trades(chunk)] + engine.flush()
        return final_candles(events)

    one_call = stream([tape.trades])
    assert one_call == stream([[t] for t in tape.trades])
    assert one_call == stream(data.draw(chunkings(tape.trades)))
    frame = frame_from_trades(data.draw(st.permutations(tape.trades)), tape.instrument)
    batch = aggregate_frame(frame, instrument=tape.instrument, timeframes=timeframes, empty_policy=policy)
    _assert_equal(batch, one_call)
    assert all(c.source is CandleSource.REAGGREGATE for cs in batch.values() for c in cs)


@SETTINGS
@given(data=st.data(), policy=st.sampled_from(EmptyPolicy))
def test_rollup_from_1m_equals_direct(data: st.DataObject, policy: EmptyPolicy) -> None:
    tape = data.draw(tapes())
    target = data.draw(st.sampled_from(("3m", "5m", "15m", "1h", "4h", "6h", "1d", "1w")))
    carry = policy is EmptyPolicy.CARRY
    first = tape.trades[0].ts_ms
    no_data = data.draw(
        st.lists(st.tuples(st.integers(0, 4 * 3_600_000), st.integers(1, 3_600_000)), max_size=2)
    )
    spans = [(first + a, first + a + b) for a, b in no_data]
    minutes = reference_candles(tape.trades, "1m", carry=carry, no_data=spans)
    direct = reference_candles(tape.trades, target, carry=carry, no_data=spans)
    rolled = rollup(minutes, target, empty_policy=policy, no_data=spans)
    problems = differences(rolled, direct)
    assert not problems, "\n".join(problems[:20])


@SETTINGS
@given(data=st.data())
def test_open_candles_and_updates_show_every_trade_so_far(data: st.DataObject) -> None:
    tape = data.draw(tapes())
    seen = tape.trades[: data.draw(st.integers(1, len(tape.trades)))]
    engine = CandleEngine(exchange="okx", inst_id=tape.instrument.inst_id)
    latest: dict[tuple[str, int], Candle] = {}
    for chunk in data.draw(chunkings(seen)):
        for event in engine.on_trades(chunk):
            if isinstance(event, CandleUpdated):
                latest[(event.candle.timeframe, event.candle.open_time_ms)] = event.candle
    for candle in engine.open_candles():
        assert latest[(candle.timeframe, candle.open_time_ms)] == candle
        (expected,) = [
            c for c in reference_candles(seen, candle.timeframe) if c.open_time_ms == candle.open_time_ms
        ]
        problems = differences([dataclasses.replace(candle, is_closed=True)], [expected])
        assert not problems, "\n".join(problems)


@SETTINGS
@given(data=st.data(), policy=st.sampled_from(EmptyPolicy), lateness_ms=st.sampled_from((0, 2_000)))
def test_no_data_spans_and_advance_equal_reference(
    data: st.DataObject, policy: EmptyPolicy, lateness_ms: int
) -> None:
    tape = data.draw(tapes())
    timeframes = data.draw(_timeframes(policy))
    first = tape.trades[0].ts_ms
    offsets = st.tuples(st.integers(-3_600_000, 4 * 3_600_000), st.integers(1, 3_600_000))
    spans = [(first + a, first + a + b) for a, b in data.draw(st.lists(offsets, max_size=2))]
    config = EngineConfig(
        timeframes=timeframes,
        empty_policy=policy,
        allowed_lateness_ms=lateness_ms,
        retention_ms=10**12,
        emit_updates=data.draw(st.booleans()),
    )
    engine = CandleEngine(exchange="okx", inst_id=tape.instrument.inst_id, config=config)
    events: list[CandleEvent] = []
    for start, end in spans:
        events += engine.mark_no_data(start, end)
    fed = 0
    for chunk in data.draw(chunkings(tape.trades)):
        events += engine.on_trades(chunk)
        fed += len(chunk)
        if fed < len(tape.trades) and data.draw(st.booleans()):
            # a quiet-market watermark, never past the next trade (so no trade arrives late)
            now, upcoming = tape.trades[fed - 1].ts_ms, tape.trades[fed].ts_ms
            events += engine.advance(data.draw(st.integers(now, upcoming)))
    watermark = tape.trades[-1].ts_ms + data.draw(st.integers(0, 3 * 3_600_000))
    events += engine.advance(watermark) + engine.flush()

    carry = policy is EmptyPolicy.CARRY
    for tf in timeframes:
        expected = reference_candles(
            tape.trades, tf, carry=carry, no_data=spans, closed_until_ms=watermark - lateness_ms
        )
        problems = differences(final_candles(events).get(tf, []), expected)
        assert not problems, "\n".join(problems[:20])
    assert engine.stats.revision_requests == 0
