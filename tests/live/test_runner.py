"""The manager's wiring without sockets: events dispatched by instId, gaps asked of REST, records written once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from sqlalchemy import Engine

from collectors.errors import ApiError
from collectors.exchanges.okx.protocol import ChannelArg
from collectors.exchanges.okx.rest import RejectedRow, TradeRange
from collectors.exchanges.okx.session import Disconnected, RawFrame, SubscriptionFailed
from collectors.live.runner import CollectorManager, PairCollector, Subscription
from collectors.model import Trade
from collectors.storage import reads
from collectors.storage.records import CoverageSpan, CoverageStatus, RawMessage, RejectedMessage
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter
from tests.live.live_frames import make_core, push, real_trade, trades_all_text


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ScriptedSource:
    """Yields the given items once, then waits (as a quiet connection does)."""

    name = "business"

    def __init__(self, items: list[Any]) -> None:
        self.items, self.subscribed, self.closed = items, list[ChannelArg](), False

    def subscribe(self, args: Iterable[ChannelArg]) -> None:
        self.subscribed.extend(args)

    def unsubscribe(self, args: Iterable[ChannelArg]) -> None:
        pass

    def resubscribe(self, args: Iterable[ChannelArg]) -> None:
        pass

    async def deliver_to(self, deliver: Callable[[Any, str | bytes | None], None]) -> None:
        """As ``OkxWebSocket.deliver_to``: a ``RawFrame`` item is the text of the item after it."""
        text: str | bytes | None = None
        for item in self.items:
            if isinstance(item, RawFrame):
                text = item.text
                continue
            deliver(item, text)
            text = None
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


class TapeHistory:
    def __init__(self, tape: list[Trade]) -> None:
        self.tape, self.calls = tape, list[tuple[int, int | None]]()

    async def recent_trades(self, inst_id: str, *, limit: int = 500) -> list[Trade]:
        return self.tape[-limit:]

    async def trades_between(self, inst_id: str, *, after_id: int, before_id: int | None = None) -> Any:
        self.calls.append((after_id, before_id))
        trades = tuple(
            t for t in self.tape if t.trade_id > after_id and (before_id is None or t.trade_id < before_id)
        )
        return type("Range", (), {"trades": trades, "unrecoverable": None, "rejected": ()})()


class ListSink:
    def __init__(self) -> None:
        self.records: list[object] = []

    async def put_many(self, records: Iterable[object]) -> None:
        self.records.extend(records)


async def test_manager_dispatches_fills_gaps_and_writes_every_trade_once() -> None:
    t0 = now_ms() - 5_000
    tape = [real_trade(100 + i, t0 + 100 * i) for i in range(8)]
    items: list[Any] = []
    for trade_id in (100, 101, 102, 106, 107, 106):  # 103-105 never pushed; 106 twice
        text = trades_all_text(trade_id, t0 + 100 * (trade_id - 100))
        items += [RawFrame(name="business", conn_number=1, text=text, recv_ms=t0), push(text, t0)[0]]
    items.append(Disconnected(name="business", conn_number=1, at_ms=t0, reason="1006", will_reconnect=True))
    core = make_core(now_ms(), reorder_window_ms=200, poll_after_ms=100_000)
    history = TapeHistory(tape)
    source, sink = ScriptedSource(items), ListSink()
    manager = CollectorManager(
        pairs=[PairCollector(core=core, history=history, clock=now_ms)],
        sources=[source],
        subscriptions=[
            Subscription(source="business", arg=ChannelArg(channel="trades-all", inst_id="BTC-USDT"))
        ],
        archive=core.archive,
        sink=sink,
        clock=now_ms,
        tick_s=0.05,
    )
    await manager.run(duration_s=1.0)
    stored = [r for r in sink.records if isinstance(r, Trade)]
    assert sorted(t.trade_id for t in stored) == list(range(100, 108))

    def values(t: Trade) -> tuple[object, ...]:
        return (t.trade_id, t.ts_ms, t.price, t.size, t.side, t.source)

    assert sorted(values(t) for t in stored) == [values(t) for t in tape]
    assert (103 - 1, 106) in history.calls
    assert len([r for r in sink.records if isinstance(r, RawMessage)]) == 6
    assert source.subscribed == [ChannelArg(channel="trades-all", inst_id="BTC-USDT")] and source.closed
    assert manager.health()[0].gaps_filled == 1


async def test_pushed_trades_reach_the_writer_within_the_drain_interval_not_a_whole_tick() -> None:
    """The cores tick every ``tick_s``; their records go to the writer every ``drain_s``: a trade's lag does not
    carry the tick's interval."""
    t0 = now_ms() - 5_000
    items: list[Any] = []
    for trade_id in (100, 101, 102):
        text = trades_all_text(trade_id, t0 + 100 * (trade_id - 100))
        items += [RawFrame(name="business", conn_number=1, text=text, recv_ms=t0), push(text, t0)[0]]
    core = make_core(now_ms(), reorder_window_ms=200, poll_after_ms=100_000)
    sink = ListSink()
    manager = CollectorManager(
        pairs=[PairCollector(core=core, history=TapeHistory([]), clock=now_ms)],
        sources=[ScriptedSource(items)],
        subscriptions=[
            Subscription(source="business", arg=ChannelArg(channel="trades-all", inst_id="BTC-USDT"))
        ],
        archive=core.archive,
        sink=sink,
        clock=now_ms,
        tick_s=30.0,
        drain_s=0.05,
    )
    task = asyncio.create_task(manager.run(duration_s=10.0))
    # one drain interval and plenty of slack, up to 10 s on a loaded machine (a fixed 0.5 s could be too short);
    # still a third of the 30 s tick
    for _ in range(100):
        await asyncio.sleep(0.1)
        stored = [r.trade_id for r in sink.records if isinstance(r, Trade)]
        raws = [r.seq for r in sink.records if isinstance(r, RawMessage)]
        if (stored, raws) == ([100, 101, 102], [1, 2, 3]):
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert (stored, raws) == ([100, 101, 102], [1, 2, 3])


async def test_reads_give_the_last_stored_trade_and_the_trades_since(engine: Engine) -> None:
    t0 = 1_786_613_160_000
    trades = [real_trade(100 + i, t0 + 1_000 * i) for i in range(5)]
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many(trades)
    assert reads.last_trade(engine, exchange="okx", inst_id="BTC-USDT") == trades[-1]
    assert reads.last_trade(engine, exchange="okx", inst_id="ETH-USDT") is None
    assert (
        reads.trades_from(engine, exchange="okx", inst_id="BTC-USDT", from_ms=t0 + 2_000, limit=2)
        == trades[2:4]
    )
    assert (
        reads.close_before(engine, exchange="okx", inst_id="BTC-USDT", before_ms=t0 + 2_000)
        == trades[1].price
    )
    assert reads.close_before(engine, exchange="okx", inst_id="BTC-USDT", before_ms=t0) is None


class RefusingHistory:
    """REST that refuses one row of the hole by a domain rule (``TradeRange.rejected``)."""

    def __init__(self, tape: list[Trade], refused: int, text: str) -> None:
        self.tape, self.refused, self.text = tape, refused, text

    async def recent_trades(self, inst_id: str, *, limit: int = 500) -> list[Trade]:
        return []

    async def trades_between(self, inst_id: str, *, after_id: int, before_id: int | None = None) -> Any:
        trades = tuple(
            t
            for t in self.tape
            if after_id < t.trade_id < (before_id or 2**62) and t.trade_id != self.refused
        )
        row = RejectedRow(trade_id=self.refused, reason="px=-1: must be > 0", text=self.text)
        return TradeRange(trades=trades, unrecoverable=None, requests=1, rejected=(row,))


async def test_rest_rows_refused_by_validation_are_archived_and_their_ids_unrecoverable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="collectors.live")
    t0 = now_ms() - 5_000
    tape = [real_trade(100 + i, t0 + 100 * i) for i in range(7)]
    core = make_core(t0, reorder_window_ms=0, poll_after_ms=100_000)
    for trade_id in (100, 101, 106):
        event, text = push(trades_all_text(trade_id, t0 + 100 * (trade_id - 100)), t0)
        core.on_event(event, t0, text)
    core.tick(t0 + 1)
    (request,) = core.take_requests()
    text = '{"instId":"BTC-USDT","tradeId":"104","px":"-1"}'
    collector = PairCollector(core=core, history=RefusingHistory(tape, 104, text), clock=lambda: t0 + 2)
    await collector._serve(request)
    records = core.drain()
    rejected = [r for r in records if isinstance(r, RejectedMessage)]
    assert [(r.channel, r.inst_id, r.reason, r.payload) for r in rejected] == [
        ("history-trades", "BTC-USDT", "px=-1: must be > 0", text)
    ]
    unrecoverable = [
        r for r in records if isinstance(r, CoverageSpan) and r.status == CoverageStatus.UNRECOVERABLE
    ]
    assert [r.reason for r in unrecoverable] == ["trade ids 104-104: REST did not return them"]
    # a trade lost for good is worth a human's attention: one warning naming the ids
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "BTC-USDT: trade ids 104-104 unrecoverable: REST did not return them"
    ]
    assert sorted(t.trade_id for t in records if isinstance(t, Trade)) == [100, 101, 102, 103, 105, 106]


def test_stored_holes_are_the_id_spans_missing_between_stored_trades(engine: Engine) -> None:
    t0 = 1_786_613_160_000
    ids = [100, 101, 105, 106, 110]
    trades = [real_trade(i, t0 + 1_000 * n) for n, i in enumerate(ids)]
    with asyncio.Runner() as runner:
        runner.run(_store(engine, trades))
    assert reads.stored_holes(engine, exchange="okx", inst_id="BTC-USDT", from_ms=t0) == [
        (102, 104, t0 + 1_000, t0 + 2_000),
        (107, 109, t0 + 3_000, t0 + 4_000),
    ]
    assert reads.stored_holes(engine, exchange="okx", inst_id="BTC-USDT", from_ms=t0 + 2_000) == [
        (107, 109, t0 + 3_000, t0 + 4_000)
    ]


async def _store(engine: Engine, trades: list[Trade]) -> None:
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many(trades)


class FailingHistory:
    """REST that fails every request until ``fixed`` is set (an outage, or an instrument OKX does not know)."""

    def __init__(self) -> None:
        self.fixed, self.calls = False, 0

    async def recent_trades(self, inst_id: str, *, limit: int = 500) -> list[Trade]:
        self.calls += 1
        if not self.fixed:
            raise ApiError("OKX 51001: Instrument ID doesn't exist.", code="51001")
        return []

    async def trades_between(self, inst_id: str, *, after_id: int, before_id: int | None = None) -> Any:
        await self.recent_trades(inst_id)
        return TradeRange(trades=(), unrecoverable=None, requests=1)


async def test_a_refused_subscription_and_a_failing_rest_poll_are_logged_once_not_per_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="collectors.live")
    arg = ChannelArg(channel="trades-all", inst_id="BTC-USDT")
    refused = SubscriptionFailed(name="business", arg=arg, code="60018", message="doesn't exist")
    core = make_core(now_ms(), reorder_window_ms=0, poll_after_ms=0, poll_interval_ms=20)
    history = FailingHistory()
    manager = CollectorManager(
        pairs=[PairCollector(core=core, history=history, clock=now_ms)],
        sources=[ScriptedSource([refused])],
        subscriptions=[Subscription(source="business", arg=arg)],
        archive=core.archive,
        sink=ListSink(),
        clock=now_ms,
        tick_s=0.02,
    )
    # REST is fixed once it has failed 10 times (at most 2 s), leaving the run 1 s or more to see it answer again
    # (a fixed 0.8 s of a 1.5 s run: a loaded machine could poll fewer times, or not again after the fix)
    task = asyncio.create_task(manager.run(duration_s=3.0))
    for _ in range(20):
        await asyncio.sleep(0.1)
        if history.calls >= 10:
            break
    history.fixed = True
    await task
    assert history.calls >= 10  # it kept polling (a transient outage must heal) ...
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [m for level, m in lines if level == "WARNING"]
    # ... but a human reads one line for the refused subscription and one for the failing REST
    assert len([m for m in warnings if "60018" in m and "trades-all" in m]) == 1, lines
    assert len([m for m in warnings if "51001" in m]) == 1, lines
    assert len([m for level, m in lines if level == "INFO" and "REST" in m and "again" in m]) == 1, lines
