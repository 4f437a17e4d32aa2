"""Engine boundary cases: bucket edges, lateness, revisions, duplicates, carry/skip, no-data, statistics."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from candles_reference import differences, reference_candles

from collectors.candles import (
    CandleClosed,
    CandleEngine,
    CandleEvent,
    CandleRevised,
    CandleUpdated,
    EmptyPolicy,
    EngineConfig,
    RevisionRequired,
    aggregate_frame,
    final_candles,
    frame_from_trades,
    revise_candle,
)
from collectors.errors import InvalidRecord
from collectors.model import DEFAULT_TIMEFRAMES, Candle, Trade
from tests.builders import BTC, DOGE, MINUTE, MONDAY_MS, grid_trade

T = MONDAY_MS  # Monday 2024-01-01 00:00 UTC: a minute, hour, day and week edge


def engine(**config: object) -> CandleEngine:
    return CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=EngineConfig(**config))  # type: ignore[arg-type]


def trade(trade_id: int, ts_ms: int, ticks: int = 100, lots: int = 1, buy: bool = True) -> Trade:
    return grid_trade(BTC, trade_id, ts_ms, ticks, lots, buy)


def closed(events: list[CandleEvent], timeframe: str = "1m") -> list[Candle]:
    return [e.candle for e in events if isinstance(e, CandleClosed) and e.candle.timeframe == timeframe]


def test_trade_on_a_bucket_edge_opens_the_next_bucket() -> None:
    eng = engine(timeframes=("1m", "1w"))
    events = eng.on_trades([trade(1, T - 1), trade(2, T), trade(3, T + MINUTE)]) + eng.flush()
    minutes = final_candles(events)["1m"]
    assert [c.open_time_ms for c in minutes] == [T - MINUTE, T, T + MINUTE]
    weeks = final_candles(events)["1w"]
    assert [(c.open_time_ms, c.trade_count) for c in weeks] == [(T - 7 * 86_400_000, 1), (T, 2)]


def test_first_trade_of_a_day_opens_the_utc_day() -> None:
    eng = engine()
    events = eng.on_trades([trade(1, T - 5_000), trade(2, T + 3)]) + eng.flush()
    days = final_candles(events)["1d"]
    assert [c.open_time_ms for c in days] == [T - 86_400_000, T]
    assert days[1].first_trade_ms == T + 3
    assert final_candles(events)["4h"][1].open_time_ms == T


def test_single_trade_makes_one_flat_candle_per_timeframe() -> None:
    eng = engine()
    events = eng.on_trade(trade(7, T + 1_234, ticks=643_212, lots=5)) + eng.flush()
    finals = final_candles(events)
    assert sorted(finals) == sorted(DEFAULT_TIMEFRAMES)
    for (candle,) in finals.values():
        assert candle.open == candle.high == candle.low == candle.close == Decimal("64321.2")
        assert candle.volume == candle.buy_volume == Decimal("0.00000005")
        assert candle.sell_volume == 0
        assert candle.vwap == Decimal("64321.2")
        assert (candle.first_trade_id, candle.last_trade_id, candle.trade_count) == (7, 7, 1)


def test_many_trades_in_one_millisecond_are_ordered_by_trade_id() -> None:
    same_ms = [trade(i, T + 500, ticks=1000 + i) for i in range(10, 60)]
    eng = engine(timeframes=("1m",))
    events = eng.on_trades(reversed(same_ms)) + eng.flush()
    (candle,) = final_candles(events)["1m"]
    assert (candle.open, candle.close) == (Decimal("101.0"), Decimal("105.9"))
    assert (candle.first_trade_id, candle.last_trade_id, candle.trade_count) == (10, 59, 50)
    assert eng.stats.late_trades == 0


def test_fine_grid_prices_and_sizes_are_exact() -> None:
    doge = [grid_trade(DOGE, i, T + i, 1234, 1, i % 2 == 0) for i in range(1, 1001)]  # DOGE: 0.000001 grids
    eng = CandleEngine(exchange="okx", inst_id=DOGE.inst_id, config=EngineConfig(timeframes=("1m",)))
    (candle,) = final_candles(eng.on_trades(doge) + eng.flush())["1m"]
    assert candle.open == Decimal("0.001234")
    assert candle.volume == Decimal("0.001000")
    assert candle.quote_volume == Decimal("1.234E-6")
    assert candle.buy_volume == candle.sell_volume == Decimal("0.0005")
    assert candle.vwap == Decimal("0.001234")


def test_sums_keep_every_digit_where_the_default_context_would_round() -> None:
    lots = [10**28 + 12_345_678 * i + 1 for i in range(2_000)]  # 29-digit sizes with 8 decimals
    trades = [trade(i + 1, T + i, ticks=1_234_567, lots=n) for i, n in enumerate(lots)]
    eng = engine(timeframes=("1m", "1h"))
    finals = final_candles(eng.on_trades(trades) + eng.flush())
    exact_volume = Decimal(f"{sum(lots)}E-8")  # the constructor never rounds
    exact_quote = Decimal(f"{sum(lots) * 1_234_567}E-9")
    with localcontext() as ctx:
        ctx.prec = 28
        assert sum((t.size for t in trades), Decimal(0)) != exact_volume  # the trap this test guards against
    for (candle,) in finals.values():
        assert candle.volume == exact_volume
        assert candle.quote_volume == exact_quote


def test_quiet_market_closes_by_explicit_watermark() -> None:
    eng = engine(timeframes=("1m",), allowed_lateness_ms=2_000)
    eng.on_trade(trade(1, T + 10_000))
    assert closed(eng.advance(T + MINUTE + 1_999)) == []
    (candle,) = closed(eng.advance(T + MINUTE + 2_000))
    assert candle.is_closed and candle.revision == 0
    assert eng.watermark_ms == T + MINUTE + 2_000
    assert eng.advance(T) == []  # the watermark never moves back


def test_late_trade_within_lateness_joins_silently() -> None:
    eng = engine(timeframes=("1m",), allowed_lateness_ms=2_000)
    events = eng.on_trades(
        [trade(1, T + 59_000), trade(3, T + MINUTE + 1_500), trade(2, T + 59_999, ticks=7)]
    )
    events += eng.advance(T + 2 * MINUTE)
    first = closed(events)[0]
    assert (first.trade_count, first.close, first.revision) == (2, Decimal("0.7"), 0)
    assert not any(isinstance(e, CandleRevised) for e in events)
    assert eng.stats.late_trades == 0


def test_late_trade_after_close_revises_the_candle() -> None:
    eng = engine(timeframes=("1m", "5m"))
    events = eng.on_trades([trade(1, T + 1_000), trade(3, T + MINUTE + 5_000)])
    assert [c.open_time_ms for c in closed(events)] == [T]
    events = eng.on_trade(trade(2, T + 59_000, ticks=999))
    revised = [e.candle for e in events if isinstance(e, CandleRevised)]
    assert [(c.timeframe, c.revision, c.trade_count, c.close) for c in revised] == [
        ("1m", 1, 2, Decimal("99.9"))
    ]
    assert not closed(events, "5m")  # still open there: the trade simply joined it
    stats = eng.stats
    assert (stats.late_trades, stats.revisions, stats.trades_processed) == (1, 1, 3)


def test_trade_older_than_retention_requests_a_revision_and_revise_candle_applies_it() -> None:
    eng = engine(timeframes=("1m", "1h"), retention_ms=60_000)
    tape = [trade(1, T + 1_000), trade(2, T + 20_000), trade(4, T + 10 * MINUTE)]
    events = eng.on_trades(tape)
    stored = closed(events)[0]
    late = trade(3, T + 30_000, ticks=555, buy=False)
    events = eng.on_trade(late)
    assert [e for e in events if isinstance(e, RevisionRequired)] == [
        RevisionRequired(trade=late, timeframes=("1m",))
    ]
    assert eng.stats.revision_requests == 1
    revised = revise_candle(stored, [late])
    assert revised.revision == 1
    assert not differences([revised], reference_candles([*tape[:2], late], "1m"))
    with pytest.raises(ValueError, match="does not belong"):
        revise_candle(stored, [trade(9, T + MINUTE)])


def test_duplicate_trade_ids_count_once() -> None:
    eng = engine(timeframes=("1m",))
    first = trade(1, T + 1_000, lots=3)
    events = eng.on_trades([first, trade(2, T + 2_000), first, first]) + eng.flush()
    (candle,) = final_candles(events)["1m"]
    assert (candle.trade_count, candle.volume) == (2, Decimal("0.00000004"))
    assert eng.stats.duplicates == 2


@pytest.mark.parametrize("policy", list(EmptyPolicy))
def test_gap_of_hours_carries_or_skips(policy: EmptyPolicy) -> None:
    eng = engine(timeframes=("1m", "1h"), empty_policy=policy)
    events = eng.on_trades([trade(1, T + 1_000, ticks=50), trade(2, T + 3 * 3_600_000 + 1_000, ticks=60)])
    events += eng.flush()
    minutes, hours = final_candles(events)["1m"], final_candles(events)["1h"]
    if policy is EmptyPolicy.SKIP:
        assert len(minutes) == len(hours) == 2
        return
    assert len(minutes) == 3 * 60 + 1 and len(hours) == 4
    carried = minutes[1:-1]
    assert all(c.trade_count == 0 and c.open == c.close == Decimal("5.0") and c.volume == 0 for c in carried)
    assert all(c.first_trade_id is None and c.vwap is None for c in carried)


def test_no_data_span_gets_no_carries_and_marks_candles_incomplete() -> None:
    eng = engine(timeframes=("1m", "1h"), empty_policy=EmptyPolicy.CARRY)
    events = eng.on_trade(trade(1, T + 1_000))
    events += eng.mark_no_data(T + 5 * MINUTE + 30_000, T + 20 * MINUTE)
    events += eng.on_trade(trade(2, T + 25 * MINUTE)) + eng.flush()
    minutes = {c.open_time_ms: c for c in final_candles(events)["1m"]}
    assert not any(T + 5 * MINUTE <= start < T + 20 * MINUTE for start in minutes)
    assert minutes[T + 4 * MINUTE].trade_count == 0 and minutes[T + 20 * MINUTE].trade_count == 0
    (hour,) = final_candles(events)["1h"]
    assert not hour.is_complete
    # carried minutes after the span carry the close from before the disconnect: unconfirmed, incomplete
    incomplete = sorted((start - T) // MINUTE for start, c in minutes.items() if not c.is_complete)
    assert incomplete == [20, 21, 22, 23, 24]


def test_no_data_marked_after_close_revises_retained_candles_and_filled_clears_it() -> None:
    eng = engine(timeframes=("1m",))
    events = eng.on_trades([trade(1, T + 1_000), trade(2, T + 3 * MINUTE)])
    events = eng.mark_no_data(T + 30_000, T + 90_000)
    assert [(e.candle.open_time_ms, e.candle.is_complete, e.candle.revision) for e in events] == [
        (T, False, 1)
    ]
    eng.mark_filled(T, T + 10 * MINUTE)
    (candle,) = [e.candle for e in eng.on_trade(trade(3, T + 3 * MINUTE + 1)) if isinstance(e, CandleUpdated)]
    assert candle.is_complete


def test_updates_are_coalesced_per_call_and_can_be_switched_off() -> None:
    eng = engine(timeframes=("1m", "5m"))
    events = eng.on_trades([trade(1, T + 1), trade(2, T + 2), trade(3, T + 3)])
    assert [(type(e), e.candle.timeframe, e.candle.trade_count) for e in events] == [
        (CandleUpdated, "1m", 3),
        (CandleUpdated, "5m", 3),
    ]
    assert all(not e.candle.is_closed for e in events)
    quiet = engine(timeframes=("1m",), emit_updates=False)
    assert quiet.on_trade(trade(1, T + 1)) == []
    assert [c.trade_count for c in quiet.open_candles()] == [1]


def test_carried_candles_follow_a_revised_close() -> None:
    eng = engine(timeframes=("1m",), empty_policy=EmptyPolicy.CARRY, emit_updates=False)
    events = eng.on_trades([trade(1, T, ticks=10), trade(3, T + 5 * MINUTE, ticks=30)])
    events += eng.on_trade(trade(2, T + 30_000, ticks=20)) + eng.flush()
    revised = [e.candle for e in events if isinstance(e, CandleRevised)]
    assert [(c.open_time_ms - T, c.close, c.revision) for c in revised] == [
        (start * MINUTE, Decimal("2.0"), 1) for start in range(4)
    ]
    assert [c.close for c in final_candles(events)["1m"]] == [Decimal("2.0")] * 5 + [Decimal("3.0")]


def test_statistics_count_emitted_candles() -> None:
    eng = engine()
    eng.on_trades([trade(1, T + 1), trade(2, T + 2 * 86_400_000)])
    eng.flush()
    assert eng.stats.candles_emitted == 2 * len(DEFAULT_TIMEFRAMES)
    assert eng.stats.trades_processed == 2


def test_rejects_foreign_trades_and_bad_configs() -> None:
    with pytest.raises(ValueError, match="engine"):
        engine().on_trade(grid_trade(DOGE, 1, T, 1, 1, True))
    with pytest.raises(ValueError, match="unknown timeframe"):
        engine(timeframes=("2m",))
    with pytest.raises(ValueError, match="duplicate"):
        engine(timeframes=("1m", "1m"))
    with pytest.raises(ValueError, match="lateness"):
        engine(allowed_lateness_ms=-1)
    with pytest.raises(ValueError, match="span"):
        engine().mark_no_data(T, T)


def test_trades_after_a_flush_revise_the_flushed_coarser_candle() -> None:
    eng = engine(timeframes=("1m", "5m", "1h"), emit_updates=False)
    events = eng.on_trade(trade(1, T + 10_000)) + eng.flush()
    events += eng.on_trade(trade(2, T + 70_000, ticks=300))  # 1m bucket still unseen; 5m and 1h flushed
    events += eng.flush()
    finals = final_candles(events)
    assert [c.trade_count for c in finals["1m"]] == [1, 1]
    for tf in ("5m", "1h"):
        (candle,) = finals[tf]
        assert (candle.trade_count, candle.close, candle.revision) == (2, Decimal("30.0"), 1)
    assert eng.stats.late_trades == 1


def test_open_candles_include_trades_not_yet_folded_into_coarser_series() -> None:
    eng = engine(emit_updates=False)
    eng.on_trades([trade(1, T + 1_000), trade(2, T + MINUTE + 1_000), trade(3, T + 2 * MINUTE + 5_000)])
    counts = {(c.timeframe, c.open_time_ms): c.trade_count for c in eng.open_candles()}
    assert counts[("1m", T + 2 * MINUTE)] == 1
    assert all(counts[(tf, T)] == 3 for tf in ("5m", "15m", "1h", "4h", "1d"))


def test_updates_cover_only_candles_the_call_changed_and_keep_their_values() -> None:
    # A late trade into the previous minute (still open: lateness 5 s) must update that minute and the
    # coarser candles only; the current minute, untouched by the call, gets no update.
    eng = engine(timeframes=("1m", "5m"), allowed_lateness_ms=5_000)
    eng.on_trades([trade(1, T + 1_000, ticks=100), trade(2, T + MINUTE + 1_000, ticks=200)])
    events = eng.on_trade(trade(3, T + 2_000, ticks=50, lots=3))
    summary = [(e.candle.timeframe, e.candle.open_time_ms, e.candle.trade_count) for e in events]
    assert summary == [("1m", T, 2), ("5m", T, 3)]
    assert all(isinstance(e, CandleUpdated) for e in events)
    (five,) = [e for e in events if e.candle.timeframe == "5m"]
    # The deferred candle is a snapshot: later trades do not change an update already returned.
    eng.on_trade(trade(4, T + MINUTE + 2_000, ticks=300))
    assert (five.candle.low, five.candle.high, five.candle.volume) == (
        Decimal("5.0"),
        Decimal("20.0"),
        Decimal("5E-8"),
    )
    # open_candles() does not swallow pending updates, and a call without trades emits none.
    eng.open_candles()
    assert [(e.candle.timeframe, e.candle.trade_count) for e in eng.on_trades([])] == []
    later = eng.on_trade(trade(5, T + MINUTE + 3_000))
    assert [(e.candle.timeframe, e.candle.open_time_ms, e.candle.trade_count) for e in later] == [
        ("1m", T + MINUTE, 3),
        ("5m", T, 5),
    ]


def test_one_trade_per_call_updates_match_open_candles() -> None:
    eng = engine()
    last: dict[tuple[str, int], Candle] = {}
    for i in range(200):
        events = eng.on_trade(trade(i + 1, T + i * 7_919, ticks=100 + i % 13, lots=1 + i % 5))
        updates = [e.candle for e in events if isinstance(e, CandleUpdated)]
        # one update per timeframe: the trade's candle in each, nothing else
        assert sorted(c.timeframe for c in updates) == sorted(DEFAULT_TIMEFRAMES)
        assert all(c.first_trade_ms is not None and c.last_trade_ms == T + i * 7_919 for c in updates)
        last.update({(c.timeframe, c.open_time_ms): c for c in updates})
    for candle in eng.open_candles():
        assert last[(candle.timeframe, candle.open_time_ms)] == candle


def _summary(events: list[CandleEvent]) -> list[tuple[str, str, int, str, int, bool, int]]:
    rows = []
    for e in events:
        if isinstance(e, CandleClosed | CandleRevised):
            c = e.candle
            minute = (c.open_time_ms - T) // MINUTE
            rows.append(
                (
                    type(e).__name__,
                    c.timeframe,
                    minute,
                    str(c.close),
                    c.trade_count,
                    c.is_complete,
                    c.revision,
                )
            )
    return rows


def test_carry_after_a_disconnect_is_incomplete_until_a_backfill_confirms_it() -> None:
    eng = engine(timeframes=("1m",), empty_policy=EmptyPolicy.CARRY, emit_updates=False)
    events = eng.on_trade(trade(1, T + 1_000, ticks=10))
    events += eng.mark_no_data(T + 2 * MINUTE, T + 4 * MINUTE)
    events += eng.on_trade(trade(5, T + 6 * MINUTE + 1, ticks=60))
    assert _summary(events) == [
        ("CandleClosed", "1m", 0, "1.0", 1, True, 0),
        ("CandleClosed", "1m", 1, "1.0", 0, True, 0),
        ("CandleClosed", "1m", 4, "1.0", 0, False, 0),  # carries the close from before the disconnect
    ]
    # the backfill finds the gap was quiet: mark_filled carries into it and confirms the carry after it
    assert _summary(eng.mark_filled(T + 2 * MINUTE, T + 4 * MINUTE)) == [
        ("CandleClosed", "1m", 2, "1.0", 0, True, 0),
        ("CandleClosed", "1m", 3, "1.0", 0, True, 0),
        ("CandleRevised", "1m", 4, "1.0", 0, True, 1),
    ]


def test_backfilled_trades_then_mark_filled_revise_every_retained_candle_to_complete() -> None:
    eng = engine(timeframes=("1m", "5m"), empty_policy=EmptyPolicy.CARRY, emit_updates=False)
    eng.on_trade(trade(1, T + 1_000, ticks=10))
    eng.mark_no_data(T + 2 * MINUTE, T + 4 * MINUTE)
    eng.on_trade(trade(5, T + 6 * MINUTE + 1, ticks=60))
    late = eng.on_trades([trade(2, T + 2 * MINUTE + 5, ticks=20), trade(3, T + 3 * MINUTE + 5, ticks=30)])
    # the backfilled minutes are still inside the span: incomplete until mark_filled
    assert ("CandleRevised", "1m", 4, "3.0", 0, False, 2) in _summary(late)
    assert _summary(eng.mark_filled(T + 2 * MINUTE, T + 4 * MINUTE)) == [
        ("CandleRevised", "1m", 2, "2.0", 1, True, 1),
        ("CandleRevised", "1m", 3, "3.0", 1, True, 1),
        ("CandleRevised", "1m", 4, "3.0", 0, True, 3),
        ("CandleRevised", "5m", 0, "3.0", 3, True, 3),
    ]
    # a trade in a carried bucket confirms it too: nothing is left incomplete
    assert all(c.is_complete for c in final_candles(eng.flush()).get("1m", []))


def test_batch_paths_mark_carries_after_a_no_data_span_incomplete_like_the_engine() -> None:
    trades = [trade(1, T + 1_000, ticks=10), trade(2, T + 6 * MINUTE + 1, ticks=60)]
    spans = [(T + 2 * MINUTE, T + 4 * MINUTE)]
    batch = aggregate_frame(
        frame_from_trades(trades, BTC),
        instrument=BTC,
        timeframes=("1m",),
        empty_policy=EmptyPolicy.CARRY,
        no_data=spans,
    )["1m"]
    assert [((c.open_time_ms - T) // MINUTE, c.is_complete) for c in batch] == [
        (0, True),
        (1, True),
        (4, False),
        (5, False),
        (6, True),
    ]
    assert not differences(batch, reference_candles(trades, "1m", carry=True, no_data=spans))


def test_advance_refuses_watermarks_not_in_milliseconds_or_carrying_absurdly_far() -> None:
    eng = engine(timeframes=("1m",), empty_policy=EmptyPolicy.CARRY, max_carried_per_call=1_000)
    eng.on_trade(trade(1, T + 1_000))
    for bad in (T * 1_000, T // 1_000):  # microseconds, seconds
        with pytest.raises(ValueError, match="not in milliseconds"):
            eng.advance(bad)
        with pytest.raises(InvalidRecord, match=r"outside 2000-01-01\.\.2100-01-01 UTC"):
            eng.on_trade(trade(2, bad))
    with pytest.raises(ValueError, match="would carry 1001 empty 1m candles"):
        eng.advance(T + 1_002 * MINUTE + 2_000)
    with pytest.raises(ValueError, match="max_carried_per_call"):
        eng.on_trade(trade(3, T + 5_000 * MINUTE))
    assert eng.watermark_ms == T + 1_000 and eng.stats.trades_processed == 1  # nothing changed
    carried = closed(eng.advance(T + 1_001 * MINUTE + 2_000))
    assert len(carried) == 1_001 and carried[-1].open_time_ms == T + 1_000 * MINUTE


def test_duplicates_are_by_trade_id_in_engine_batch_and_reference() -> None:
    trades = [trade(1, T + 10, ticks=100), trade(1, T + 70_000, ticks=300), trade(2, T + 80_000, ticks=200)]
    eng = engine(timeframes=("1m", "5m"), emit_updates=False)
    streamed = final_candles(eng.on_trades(trades) + eng.flush())
    batch = aggregate_frame(frame_from_trades(trades, BTC), instrument=BTC, timeframes=("1m", "5m"))
    for result in (streamed, batch):
        assert [(c.open_time_ms, c.trade_count, c.high) for c in result["1m"]] == [
            (T, 1, Decimal("10.0")),
            (T + MINUTE, 1, Decimal("20.0")),
        ]
        assert [c.trade_count for c in result["5m"]] == [2]
        for tf in ("1m", "5m"):
            assert not differences(result[tf], reference_candles(trades, tf))
    assert eng.stats.duplicates == 1


def test_close_ended_closes_what_ended_by_the_stop_without_waiting_for_the_lateness() -> None:
    """A live collector stopping 0.5 s after a minute's end: within the 2 s lateness, advance() leaves that
    minute open; close_ended() closes it (no later trade will reach this engine) and leaves the running minute
    and the hour open."""
    eng = engine(timeframes=("1m", "1h"), allowed_lateness_ms=2_000)
    stop = T + MINUTE + 500
    events = eng.on_trades([trade(1, T + 10), trade(2, T + 30_000), trade(3, T + MINUTE + 100)])
    events += eng.advance(stop)
    assert closed(events) == []
    ended = eng.close_ended(stop)
    assert [(c.open_time_ms, c.trade_count, c.is_closed) for c in closed(ended)] == [(T, 2, True)]
    assert closed(ended, "1h") == []
    assert sorted((c.timeframe, c.open_time_ms) for c in eng.open_candles()) == [
        ("1h", T),
        ("1m", T + MINUTE),
    ]
