"""Completeness of the live pair's candles agrees with the coverage ledger it writes (issue 9/10).

The rule a recomputation uses is :func:`collectors.storage.records.no_data_spans`: a candle is complete only
when its whole bucket is watched and no loss touches it. These tests drive the pure core and check the
candle rows it stores against that rule applied to the coverage spans it stores.
"""

from __future__ import annotations

from collectors.candles import CandleEngine, EngineConfig
from collectors.live.candle_out import LiveCandles
from collectors.live.core import FillRequest, PairCore
from collectors.model import Candle, Timeframe
from collectors.storage.records import CoverageSpan, no_data_spans
from tests.live.live_frames import T0, make_core, push, real_trade, trades_all_text


def feed(core: PairCore, ids_ts: list[tuple[int, int]], recv_ms: int | None = None) -> None:
    for trade_id, ts in ids_ts:
        at = ts + 5 if recv_ms is None else recv_ms
        event, text = push(trades_all_text(trade_id, ts), at)
        core.on_event(event, at, text)


def core_with(timeframes: tuple[str, ...], now_ms: int) -> PairCore:
    core = make_core(now_ms, raw="none")
    engine = CandleEngine(exchange="okx", inst_id="BTC-USDT", config=EngineConfig(timeframes=timeframes))
    core.candles = LiveCandles(engine=engine, update_interval_ms=1_000)
    return core


def final_rows(records: list[object]) -> dict[tuple[str, int], Candle]:
    last: dict[tuple[str, int], Candle] = {}
    for row in records:
        if isinstance(row, Candle):
            last[(row.timeframe, row.open_time_ms)] = row
    return last


def recomputed_complete(records: list[object], candle: Candle) -> bool:
    spans = [r for r in records if isinstance(r, CoverageSpan)]
    start = candle.open_time_ms
    end = Timeframe.parse(candle.timeframe).bucket_end_ms(start)
    return not no_data_spans(spans, start, end)


def test_the_bucket_a_fresh_collector_starts_in_is_stored_incomplete() -> None:
    core = core_with(("1m", "5m"), T0 + 3)
    feed(core, [(100, T0 + 10), (101, T0 + 20), (102, T0 + 60_500)])
    core.tick(T0 + 62_001)
    core.stop(T0 + 62_001)
    records = core.drain()
    rows = final_rows(records)
    five = T0 - T0 % 300_000
    assert [(k, c.trade_count, c.is_closed, c.is_complete) for k, c in rows.items()] == [
        (("1m", T0), 2, True, False),  # [T0, T0 + 10) was not watched: its trades are not known
        (("5m", five), 3, False, False),
        (("1m", T0 + 60_000), 1, False, True),  # open: complete so far
    ]
    closed = [c for c in rows.values() if c.is_closed]
    assert [c.is_complete for c in closed] == [recomputed_complete(records, c) for c in closed]


def test_a_fresh_collector_whose_first_trade_opens_the_bucket_stores_it_complete() -> None:
    core = core_with(("1m", "5m"), T0)
    feed(core, [(100, T0), (101, T0 + 20)])
    core.tick(T0 + 62_001)
    core.stop(T0 + 62_001)
    records = core.drain()
    rows = final_rows(records)
    assert [(k, c.is_complete) for k, c in rows.items()] == [
        (("1m", T0), True),  # watched from its first instant
        (("5m", T0 - T0 % 300_000), False),  # the 5m bucket began 2 minutes before the first trade
    ]
    assert [c.is_complete for c in rows.values()] == [recomputed_complete(records, c) for c in rows.values()]


def test_a_reconnect_whose_first_pushed_trade_is_older_than_the_last_tick_leaves_no_no_data() -> None:
    core = core_with(("1m",), T0)
    feed(core, [(100, T0), (101, T0 + 1_000)])
    core.stream_down(T0 + 5_000)
    core.tick(T0 + 14_000)  # the outage is marked up to 14.001 s
    core.stream_up_again(T0 + 14_050)
    feed(core, [(102, T0 + 13_900)], recv_ms=T0 + 14_100)  # the next id: nothing was missed
    core.tick(T0 + 62_001)
    core.stop(T0 + 62_001)
    records = core.drain()
    rows = final_rows(records)
    assert [(k, c.trade_count, c.is_closed, c.is_complete) for k, c in rows.items()] == [
        (("1m", T0), 3, True, True)
    ]
    assert recomputed_complete(records, rows[("1m", T0)])
    assert core.take_requests() != []  # the outage asked REST (never answered here)
    assert core.health(T0 + 62_001).gaps_open == 0


def test_a_catch_up_does_not_clear_the_no_data_of_ids_rest_could_not_return() -> None:
    resume = real_trade(100, T0 + 10)
    core = PairCore(
        exchange="okx",
        inst_id="BTC-USDT",
        engine=CandleEngine(exchange="okx", inst_id="BTC-USDT", config=EngineConfig(timeframes=("1m",))),
        archive=make_core(T0, raw="none").archive,
        settings=make_core(T0).settings,
        now_ms=T0 + 5_000,
        resume=resume,
    )
    core.tick(T0 + 5_000)
    assert core.take_requests() == [FillRequest(kind="poll", after_id=100, before_id=None)]
    feed(core, [(104, T0 + 5_010)])  # held: 101-103 not seen yet
    core.tick(T0 + 6_600)  # the reorder window passed: 101-103 are a hole, 104 is stored
    (hole,) = core.take_requests()
    assert hole == FillRequest(kind="hole", after_id=100, before_id=104)
    core.on_fill(hole, [], (101, 103), T0 + 6_700)  # REST has none of them
    feed(core, [(105, T0 + 6_800)])  # the stream goes on
    core.tick(T0 + 62_001)
    core.stop(T0 + 62_001)
    records = core.drain()
    rows = final_rows(records)
    assert [(k, c.trade_count, c.is_closed, c.is_complete) for k, c in rows.items()] == [
        (("1m", T0), 2, True, False)  # 101-103 are lost
    ]
    assert not recomputed_complete(records, rows[("1m", T0)])
