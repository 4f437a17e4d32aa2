"""``trades_mode: aggregated``: the stored tape has OKX's ``trades`` shape however its rows arrived.

A ``trades`` push row stands for the fills ``tradeId - count + 1 .. tradeId`` of one taker order at one price
(API.md: "one message per taker order, filled price, source"); REST answers with single fills. A hole or a
catch-up filled from REST is stored in the push's shape: consecutive fills with the same time, side, price and
source become one row (the last fill's id, the sizes' exact sum), never a per-fill row beside aggregated ones.
"""

from __future__ import annotations

import json
from decimal import Decimal

from collectors.exchanges.okx.parse import parse_frame
from collectors.live.tape import aggregate_fills
from collectors.model import Side, Trade
from tests.live.live_frames import T0, make_core, real_trade

# the real 2026 trades push (API.md), on the core's instrument
_ROW = {"instId": "BTC-USDT", "px": "63913.4", "side": "sell", "source": "0", "seqId": 333793118093}


def trades_text(last_id: int, count: int, ts_ms: int, size: str) -> str:
    row = {**_ROW, "tradeId": str(last_id), "sz": size, "ts": str(ts_ms), "count": str(count)}
    frame = {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [row]}
    return json.dumps(frame, separators=(",", ":"))


def fill(trade_id: int, ts_ms: int, size: str, price: str = "63913.4", side: Side = Side.SELL) -> Trade:
    base = real_trade(trade_id, ts_ms)
    return Trade(
        exchange="okx",
        inst_id="BTC-USDT",
        trade_id=trade_id,
        ts_ms=ts_ms,
        price=Decimal(price),
        size=Decimal(size),
        side=side,
        recv_ms=base.recv_ms,
        source=base.source,
    )


def rows(records: list[object]) -> list[tuple[int, int, Decimal, Decimal]]:
    return [(r.trade_id, r.ts_ms, r.price, r.size) for r in records if isinstance(r, Trade)]


def test_a_hole_filled_from_rest_is_stored_as_aggregated_rows() -> None:
    core = make_core(T0, raw="none", trades_channel="trades")
    for last_id, count, ts, size in ((110, 10, T0 + 10, "34.95"), (125, 5, T0 + 50, "1.5")):
        text = trades_text(last_id, count, ts, size)
        core.on_event(parse_frame(text, recv_ms=ts + 5), ts + 5, text)
    core.tick(T0 + 2_000)  # ids 111..120 skipped: a hole once the reorder window passed
    (request,) = core.take_requests()
    assert (request.after_id, request.before_id) == (110, 121)
    fills = [fill(i, T0 + 20, "0.1") for i in range(111, 114)]  # one taker order: 3 fills
    fills += [fill(i, T0 + 20, "0.2", price="63913.5") for i in range(114, 116)]  # same order, next price
    fills += [fill(i, T0 + 30, "0.01", side=Side.BUY) for i in range(116, 121)]  # another order
    core.on_fill(request, fills, None, T0 + 2_100)
    assert rows(core.drain()) == [
        (110, T0 + 10, Decimal("63913.4"), Decimal("34.95")),
        (125, T0 + 50, Decimal("63913.4"), Decimal("1.5")),
        (113, T0 + 20, Decimal("63913.4"), Decimal("0.3")),
        (115, T0 + 20, Decimal("63913.5"), Decimal("0.4")),
        (120, T0 + 30, Decimal("63913.4"), Decimal("0.05")),
    ]
    health = core.health(T0 + 2_200)
    assert (health.gaps_found, health.gaps_filled, health.gaps_open, health.duplicates) == (1, 1, 0, 0)


def test_a_catch_up_poll_in_aggregated_mode_stores_aggregated_rows_after_the_frontier() -> None:
    core = make_core(T0 + 5_000, raw="none", trades_channel="trades", resume=fill(100, T0 + 10, "1"))
    core.tick(T0 + 5_000)
    (poll,) = core.take_requests()
    core.on_fill(
        poll,
        [fill(101, T0 + 20, "0.5"), fill(102, T0 + 20, "0.25"), fill(103, T0 + 40, "2")],
        None,
        T0 + 5_100,
    )
    assert rows(core.drain()) == [
        (102, T0 + 20, Decimal("63913.4"), Decimal("0.75")),
        (103, T0 + 40, Decimal("63913.4"), Decimal("2")),
    ]
    text = trades_text(105, 2, T0 + 5_200, "3")  # the stream goes on right after the catch-up's frontier
    core.on_event(parse_frame(text, recv_ms=T0 + 5_205), T0 + 5_205, text)
    assert rows(core.drain()) == [(105, T0 + 5_200, Decimal("63913.4"), Decimal("3"))]
    assert core.health(T0 + 5_300).gaps_found == 0


def test_aggregate_fills_groups_only_consecutive_ids_of_one_time_side_price_and_source() -> None:
    fills = [fill(1, T0, "1"), fill(2, T0, "2"), fill(4, T0, "4"), fill(5, T0 + 1, "5")]
    trades, counts = aggregate_fills(fills)
    assert [(t.trade_id, t.size) for t in trades] == [(2, Decimal("3")), (4, Decimal("4")), (5, Decimal("5"))]
    assert counts == [2, 1, 1]
