"""The pure pair core on synthetic sequences of real frames: exact records out, exact REST requests."""

from __future__ import annotations

from collectors.candles import CandleEngine, EngineConfig, final_candles
from collectors.live.candle_out import LiveCandles
from collectors.live.core import FillRequest
from collectors.model import BookSnapshot, Candle, DataType, Trade
from collectors.storage.records import CoverageSpan, CoverageStatus, RawMessage, RejectedMessage
from tests.live.live_frames import T0, books5_texts, make_core, push, real_trade, trades_all_text


def trades_of(records: list[object]) -> list[int]:
    return [r.trade_id for r in records if isinstance(r, Trade)]


def of_type(records: list[object], kind: type) -> list[object]:
    return [r for r in records if isinstance(r, kind)]


def feed(core, ids_ts: list[tuple[int, int]]) -> None:  # type: ignore[no-untyped-def]
    for trade_id, ts in ids_ts:
        event, text = push(trades_all_text(trade_id, ts), ts + 5)
        core.on_event(event, ts + 5, text)


def test_contiguous_pushes_are_stored_in_order_with_their_raw_frames() -> None:
    core = make_core(T0)
    feed(core, [(100, T0 + 10), (101, T0 + 20), (102, T0 + 30)])
    records = core.drain()
    assert trades_of(records) == [100, 101, 102]
    assert of_type(records, Trade)[0] == real_trade(100, T0 + 10, T0 + 15)
    raws = of_type(records, RawMessage)
    assert [(r.seq, r.channel, r.inst_id, r.recv_ms) for r in raws] == [  # type: ignore[attr-defined]
        (1, "trades-all", "BTC-USDT", T0 + 15),
        (2, "trades-all", "BTC-USDT", T0 + 25),
        (3, "trades-all", "BTC-USDT", T0 + 35),
    ]
    assert raws[0] == RawMessage(  # built through its slots: equal to the constructor's record
        collector_id="c1",
        seq=1,
        exchange="okx",
        channel="trades-all",
        inst_id="BTC-USDT",
        recv_ms=T0 + 15,
        payload=trades_all_text(100, T0 + 10),
    )
    assert core.take_requests() == []


def test_duplicates_and_reordered_pushes_are_stored_once_in_id_order() -> None:
    core = make_core(T0, raw="none")
    feed(
        core, [(100, T0 + 10), (102, T0 + 30), (101, T0 + 20), (101, T0 + 20), (102, T0 + 30), (103, T0 + 40)]
    )
    assert trades_of(core.drain()) == [100, 101, 102, 103]
    core.tick(T0 + 2_000)
    health = core.health(T0 + 2_000)
    assert (health.duplicates, health.gaps_found, health.trades_stored) == (2, 0, 4)
    assert core.take_requests() == []
    core.tick(T0 + 3_100)  # silent for more than poll_after_ms: REST is asked what the stream may miss
    assert core.take_requests() == [FillRequest(kind="poll", after_id=103, before_id=None)]


def test_a_jump_becomes_a_hole_after_the_reorder_window_and_is_filled_from_rest() -> None:
    core = make_core(T0, raw="none", reorder_window_ms=1_500)
    feed(core, [(100, T0 + 10), (104, T0 + 50)])
    assert trades_of(core.drain()) == [100]
    core.tick(T0 + 1_000)
    assert core.take_requests() == []
    core.tick(T0 + 1_600)
    records = core.drain()
    assert trades_of(records) == [104]
    assert of_type(records, CoverageSpan) == [
        CoverageSpan(
            exchange="okx",
            inst_id="BTC-USDT",
            data_type=DataType.TRADES,
            start_ms=T0 + 10,
            end_ms=T0 + 51,
            status=CoverageStatus.GAP,
            reason="trade ids 101-103 missing (jump)",
        )
    ]
    request = FillRequest(kind="hole", after_id=100, before_id=104)
    assert core.take_requests() == [request]
    missing = [real_trade(i, T0 + 10 * (i - 100)) for i in (101, 102, 103)]
    core.on_fill(request, missing, None, T0 + 1_700)
    records = core.drain()
    assert [r for r in records if isinstance(r, Trade)] == missing
    assert of_type(records, CoverageSpan)[0].status is CoverageStatus.BACKFILLED  # type: ignore[attr-defined]
    health = core.health(T0 + 1_700)
    assert (health.gaps_found, health.gaps_filled, health.gaps_open, health.trades_stored) == (1, 1, 0, 5)


def test_candles_after_a_filled_hole_equal_the_engine_on_the_true_tape() -> None:
    core = make_core(T0, raw="none")
    feed(core, [(100, T0), (103, T0 + 61_000)])  # watched from the minute's start: complete when filled
    core.tick(T0 + 63_000)
    (request,) = core.take_requests()
    core.on_fill(request, [real_trade(101, T0 + 30_000), real_trade(102, T0 + 60_500)], None, T0 + 63_100)
    core.tick(T0 + 200_000)
    core.stop(T0 + 200_000)
    rows = [r for r in core.drain() if isinstance(r, Candle)]
    last: dict[int, Candle] = {}
    for row in rows:
        last[row.open_time_ms] = row
    truth = [
        real_trade(i, ts) for i, ts in ((100, T0), (101, T0 + 30_000), (102, T0 + 60_500), (103, T0 + 61_000))
    ]
    engine = CandleEngine(exchange="okx", inst_id="BTC-USDT", config=EngineConfig(timeframes=("1m",)))
    expected = final_candles([*engine.on_trades(truth), *engine.advance(T0 + 200_000)])["1m"]

    def values(c: Candle) -> tuple[object, ...]:
        return (
            c.open_time_ms,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.trade_count,
            c.is_closed,
            c.is_complete,
        )

    assert [values(c) for c in last.values()] == [values(c) for c in expected]
    assert [c.trade_count for c in expected] == [2, 2]


def test_what_rest_cannot_return_is_recorded_unrecoverable() -> None:
    core = make_core(T0, raw="none", reorder_window_ms=0)
    feed(core, [(100, T0 + 10), (103, T0 + 40)])
    core.tick(T0 + 100)
    (request,) = core.take_requests()
    core.drain()
    core.on_fill(request, [real_trade(102, T0 + 30)], None, T0 + 200)
    records = core.drain()
    assert trades_of(records) == [102]
    (span,) = of_type(records, CoverageSpan)
    assert (span.status, span.reason) == (  # type: ignore[attr-defined]
        CoverageStatus.UNRECOVERABLE,
        "trade ids 101-101: REST did not return them",
    )
    assert core.health(T0 + 200).gaps_unrecoverable == 1


def test_a_stream_down_polls_rest_and_the_replayed_pushes_are_not_stored_twice() -> None:
    core = make_core(T0, raw="none")
    feed(core, [(100, T0 + 10)])
    core.stream_down(T0 + 1_000)
    core.tick(T0 + 1_100)
    (poll,) = core.take_requests()
    assert poll == FillRequest(kind="poll", after_id=100, before_id=None)
    core.on_fill(poll, [real_trade(101, T0 + 500), real_trade(102, T0 + 900)], None, T0 + 1_200)
    core.tick(T0 + 1_300)
    assert core.take_requests() == []  # one poll per interval
    core.tick(T0 + 2_200)
    assert core.take_requests() == [FillRequest(kind="poll", after_id=102, before_id=None)]
    core.stream_up_again(T0 + 2_300)
    feed(core, [(101, T0 + 500), (102, T0 + 900), (103, T0 + 2_400)])
    assert trades_of(core.drain()) == [100, 101, 102, 103]  # 101 and 102 from REST, once
    health = core.health(T0 + 2_500)
    assert (health.reconnects, health.duplicates, health.gaps_found, health.state) == (1, 2, 0, "live")


def test_a_restart_resumes_from_the_last_stored_trade_and_catches_up_first() -> None:
    core = make_core(T0 + 5_000, resume=real_trade(100, T0 + 10), raw="none")
    core.tick(T0 + 5_000)
    (poll,) = core.take_requests()
    assert poll == FillRequest(kind="poll", after_id=100, before_id=None)
    feed(core, [(104, T0 + 5_010)])  # live before the catch-up answered: held
    core.on_fill(poll, [real_trade(i, T0 + 1_000 * (i - 100)) for i in (101, 102, 103)], None, T0 + 5_100)
    assert trades_of(core.drain()) == [101, 102, 103, 104]
    feed(core, [(105, T0 + 5_200)])
    health = core.health(T0 + 5_300)
    assert (health.state, health.gaps_found, health.trades_stored, health.frontier_id) == ("live", 0, 5, 105)


def test_an_invalid_frame_is_kept_with_its_reason_and_text_and_the_pair_goes_on() -> None:
    core = make_core(T0)
    bad = trades_all_text(101, T0 + 20, px="-42219.9")
    feed(core, [(100, T0 + 10)])
    event, text = push(bad, T0 + 25)
    core.on_event(event, T0 + 25, text)
    feed(core, [(102, T0 + 30)])
    records = core.drain()
    (rejected,) = of_type(records, RejectedMessage)
    assert (rejected.channel, rejected.inst_id, rejected.payload) == ("trades-all", "BTC-USDT", bad)  # type: ignore[attr-defined]
    assert rejected.reason == "data[0]: price=Decimal('-42219.9'): must be a finite number > 0"  # type: ignore[attr-defined]
    assert trades_of(records) == [100]
    core.tick(T0 + 2_000)
    assert core.take_requests() == [FillRequest(kind="hole", after_id=100, before_id=102)]
    assert core.health(T0 + 2_000).rejected == 1


def test_raw_archive_keeps_only_trade_frames_in_trades_mode() -> None:
    core = make_core(T0, raw="trades", book_interval_ms=0)
    feed(core, [(100, T0 + 10)])
    text = books5_texts("BTC-USDT")[0]
    event, _ = push(text, T0 + 20)
    core.on_event(event, T0 + 20, text)
    assert [r.channel for r in of_type(core.drain(), RawMessage)] == ["trades-all"]  # type: ignore[attr-defined]


def test_books5_snapshots_are_throttled_and_deduplicated() -> None:
    core = make_core(T0, raw="none", book_interval_ms=1_000)
    first = books5_texts("BTC-USDT")[0]
    for at, text in ((0, first), (500, first), (1_500, first)):
        event, _ = push(text, T0 + at)
        core.on_event(event, T0 + at, text)
    snapshots = of_type(core.drain(), BookSnapshot)
    assert len(snapshots) == 1 and snapshots[0] == push(first, T0)[0].snapshot  # type: ignore[union-attr]


def test_open_candle_updates_are_read_on_the_tick_once_per_candle() -> None:
    engine = CandleEngine(
        exchange="okx", inst_id="BTC-USDT", config=EngineConfig(timeframes=("1m", "5m"), emit_updates=False)
    )
    core = make_core(T0, raw="none")
    core.candles = LiveCandles(engine=engine, update_interval_ms=1_000)  # as the factory builds it
    feed(core, [(100 + i, T0 + 10 + i) for i in range(50)])
    assert of_type(core.drain(), Candle) == []  # no candle row per trade
    core.tick(T0 + 100)
    rows = of_type(core.drain(), Candle)
    assert [(c.timeframe, c.open_time_ms, c.trade_count, c.is_closed) for c in rows] == [  # type: ignore[attr-defined]
        ("1m", T0, 50, False),
        ("5m", T0 - T0 % 300_000, 50, False),
    ]
    feed(core, [(150, T0 + 200)])
    core.tick(T0 + 300)  # changed again within the update interval: held until a second has passed
    assert of_type(core.drain(), Candle) == []
    core.tick(T0 + 1_100)
    assert [c.trade_count for c in of_type(core.drain(), Candle)] == [51, 51]  # type: ignore[attr-defined]
    core.tick(T0 + 62_001)  # the minute closed (lateness 2 s): its final row at once
    closed = of_type(core.drain(), Candle)
    assert [(c.timeframe, c.trade_count, c.is_closed) for c in closed] == [("1m", 51, True)]  # type: ignore[attr-defined]


def test_a_restart_records_the_span_a_killed_session_stored_after_its_last_coverage_row() -> None:
    from collectors.live.core import PairCore

    base = make_core(T0 + 5_000, raw="none")
    core = PairCore(
        exchange="okx",
        inst_id="BTC-USDT",
        engine=base.candles.engine,
        archive=base.archive,
        settings=base.settings,
        now_ms=T0 + 5_000,
        resume=real_trade(100, T0 + 10),
        resume_uncovered_ms=T0 - 30_000,  # the killed session's ledger ended there
    )
    core.tick(T0 + 5_000)
    (poll,) = core.take_requests()
    core.on_fill(poll, [real_trade(101, T0 + 1_000), real_trade(102, T0 + 2_000)], None, T0 + 5_100)
    feed(core, [(103, T0 + 5_200), (104, T0 + 5_300)])  # live again: the stream took over at 102
    core.stop(T0 + 6_000)
    spans = [(s.start_ms, s.end_ms, s.status) for s in of_type(core.drain(), CoverageSpan)]  # type: ignore[attr-defined]
    assert spans == [
        (T0 - 30_000, T0 + 10, CoverageStatus.COLLECTED),  # stored before the kill, not in the ledger
        (T0 + 10, T0 + 2_000, CoverageStatus.BACKFILLED),  # caught up from REST
        (T0 + 2_000, T0 + 6_000, CoverageStatus.COLLECTED),  # from the catch-up's end, not from trade 103
    ]


def test_a_stream_back_behind_the_rest_catch_up_ends_the_outage_with_duplicates_only() -> None:
    # REST caught up past where the reconnected stream is (a slow stream, a fast poll): the stream's pushes are
    # all duplicates, yet it is up and the tape's ids are checked from here on, so the outage ends and the
    # collector vouches for what follows (it was left in the outage for ever: no ``collected`` span at the stop)
    core = make_core(T0, raw="none")
    feed(core, [(100, T0 + 10)])
    core.stream_down(T0 + 1_000)
    core.tick(T0 + 1_100)
    (poll,) = core.take_requests()
    core.on_fill(poll, [real_trade(i, T0 + 100 * (i - 100)) for i in range(101, 106)], None, T0 + 1_200)
    core.stream_up_again(T0 + 1_300)
    feed(core, [(101, T0 + 100), (102, T0 + 200)])
    assert trades_of(core.drain()) == [100, 101, 102, 103, 104, 105]
    assert core.health(T0 + 1_400).state == "live"
    core.stop(T0 + 2_000)
    spans = [s for s in core.drain() if isinstance(s, CoverageSpan)]
    collected = [(s.start_ms, s.end_ms) for s in spans if s.status is CoverageStatus.COLLECTED]
    assert collected[-1][1] == T0 + 2_000


def test_a_stream_back_ahead_of_the_frontier_keeps_the_outage_until_the_skipped_ids_are_known() -> None:
    # the reconnected stream's push is held (ids between the frontier and it are missing): the outage goes on,
    # REST keeps catching up, and a stop inside the reorder window claims no collected span over the missing ids
    core = make_core(T0, raw="none")
    feed(core, [(100, T0 + 10)])
    core.stream_down(T0 + 1_000)
    core.stream_up_again(T0 + 1_200)
    feed(core, [(150, T0 + 1_250)])
    health = core.health(T0 + 1_300)
    assert (health.state, health.frontier_id) == ("catching_up", 100)
    core.tick(T0 + 1_300)
    assert core.take_requests() == [FillRequest(kind="poll", after_id=100, before_id=None)]
    core.stop(T0 + 1_500)
    spans = [s for s in core.drain() if isinstance(s, CoverageSpan)]
    assert [(s.start_ms, s.end_ms) for s in spans if s.status is CoverageStatus.COLLECTED] == []


def test_a_restart_with_a_live_push_far_ahead_still_polls_rest_for_the_catch_up() -> None:
    core = make_core(T0 + 600_000, resume=real_trade(100, T0 + 10), raw="none")
    feed(core, [(5_000, T0 + 600_000)])  # live before the first tick: held, ids 101-4999 unknown
    core.tick(T0 + 600_010)
    assert core.take_requests() == [FillRequest(kind="poll", after_id=100, before_id=None)]
    assert core.health(T0 + 600_020).state == "catching_up"
    core.stop(T0 + 600_100)
    spans = [s for s in core.drain() if isinstance(s, CoverageSpan)]
    assert [s for s in spans if s.status is CoverageStatus.COLLECTED] == []
