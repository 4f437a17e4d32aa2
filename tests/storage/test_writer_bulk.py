"""``put_many`` of a list mixing record types (what the live manager hands over every tick: trades, raw frames,
candles and coverage interleaved) builds each type's rows in one pass and stores every row exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.model import Side
from collectors.storage.records import RawMessage
from collectors.storage.schema import CandleRow, RawMessageRow
from collectors.storage.sinks import Sink, WriteResult, open_sink
from collectors.storage.tables import Row, TableSpec
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import candle, trade
from tests.storage.helpers import stored_trades


def raw(seq: int) -> RawMessage:
    return RawMessage(
        collector_id="c1",
        seq=seq,
        exchange="okx",
        channel="trades-all",
        inst_id="BTC-USDT",
        recv_ms=1_700_000_000_000 + seq,
        payload=f'{{"arg":{{"channel":"trades-all"}},"data":[{{"tradeId":"{seq}"}}]}}',
    )


async def test_a_mixed_list_stores_every_record_of_every_type_exactly(engine: Engine) -> None:
    records: list[object] = []
    for i in range(1, 301):
        records += [raw(i), trade(i, price=f"63707.{i}", size="0.00000001" if i % 2 else "12.5")]
    records.append(candle(close=records[-1].price, trade_count=300))  # type: ignore[attr-defined]
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many(records)
        assert writer.stats().pending_rows == 601
        await writer.flush()
        stats = writer.stats()
    assert (stats.written_rows, stats.pending_rows, stats.dead_rows) == (601, 0, 0)
    stored = stored_trades(engine)
    assert [(t.trade_id, t.price, t.size) for t in stored] == [
        (i, Decimal(f"63707.{i}"), Decimal("0.00000001" if i % 2 else "12.5")) for i in range(1, 301)
    ]
    with Session(engine) as session:
        raws = session.scalars(select(RawMessageRow).order_by(RawMessageRow.seq)).all()
        candles = session.scalars(select(CandleRow)).all()
    assert [(r.seq, r.payload) for r in raws] == [(i, raw(i).payload) for i in range(1, 301)]
    assert [(c.close, c.trade_count) for c in candles] == [(stored[-1].price, 300)]


async def test_a_mixed_list_with_a_record_that_cannot_become_a_row_queues_the_records_before_it(
    engine: Engine,
) -> None:
    bad = dataclasses.replace(trade(3), side="sell")  # type: ignore[arg-type]
    async with BatchWriter(open_sink(engine)) as writer:
        with pytest.raises(TypeError, match=r"Trade\.side: expected Side, got str 'sell'"):
            await writer.put_many([raw(1), trade(1), raw(2), trade(2), raw(3), bad, raw(4), trade(4)])
        assert writer.stats().pending_rows == 5
        await writer.put_many([raw(5), dataclasses.replace(trade(5), side=Side.BUY)])
        await writer.flush()
    assert [t.trade_id for t in stored_trades(engine)] == [1, 2, 5]
    with Session(engine) as session:
        assert list(session.scalars(select(RawMessageRow.seq).order_by(RawMessageRow.seq))) == [1, 2, 3, 5]


async def test_a_mixed_list_with_a_type_no_table_stores_raises_and_keeps_the_records_before_it(
    engine: Engine,
) -> None:
    async with BatchWriter(open_sink(engine)) as writer:
        with pytest.raises(TypeError, match="no table stores str records"):
            await writer.put_many([trade(1), raw(1), "not a record", trade(2)])
        await writer.flush()
    assert [t.trade_id for t in stored_trades(engine)] == [1]


class RecordingSink:
    """The real sink, noting which table each write went to."""

    def __init__(self, sink: Sink) -> None:
        self.sink, self.dialect, self.tables = sink, sink.dialect, list[str]()

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        self.tables.append(spec.table)
        return self.sink.write(spec, rows)

    def close(self) -> None:
        self.sink.close()


async def test_a_flush_writes_trades_first_whatever_came_first(engine: Engine) -> None:
    """A trade's commit never waits for the raw archive's (or the candles') write of the same flush."""
    sink = RecordingSink(open_sink(engine))
    async with BatchWriter(sink, options=WriterOptions(flush_interval_s=60)) as writer:
        await writer.put_many([raw(1), candle(), trade(1)])
        await writer.flush()
        await writer.put_many([raw(2), trade(2)])
        await writer.flush()
    assert sink.tables == ["trades", "candles", "raw_messages", "trades", "raw_messages"]
    assert [t.trade_id for t in stored_trades(engine)] == [1, 2]
