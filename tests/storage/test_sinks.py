"""Idempotent bulk writes: replays add nothing and lose nothing; candles are revised, never regressed."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.storage.schema import CandleRow, InstrumentRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from tests.builders import DOGE, candle, trade
from tests.storage.helpers import count_trades, stored_trades


def _rows(records: list, now_ms: int = 0) -> list:
    spec = spec_for(records[0])
    return [spec.to_row(r, now_ms) for r in records]


def test_replayed_and_overlapping_batches_add_nothing(engine: Engine) -> None:
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    first = [trade(i) for i in range(1, 101)]
    assert sink.write(spec, _rows(first)).written == 100
    replay = sink.write(spec, _rows(first))
    assert (replay.written, replay.unchanged) == (0, 100)
    if engine.dialect.name == "postgresql":
        assert (
            replay.path == "skip"
        )  # every id of 1..100 is stored: proven by one index count, nothing copied
    overlap = sink.write(spec, _rows([trade(i) for i in range(51, 151)]))
    assert (overlap.written, overlap.unchanged) == (50, 50)
    sink.close()
    assert [r.trade_id for r in stored_trades(engine)] == list(range(1, 151))


def test_duplicates_inside_one_batch_are_stored_once(engine: Engine) -> None:
    sink = open_sink(engine)
    batch = [trade(i) for i in (1, 2, 3, 2, 4, 1)]
    result = sink.write(spec_for(batch[0]), _rows(batch))
    sink.close()
    assert result.written == 4 and result.unchanged == 2
    assert [r.trade_id for r in stored_trades(engine)] == [1, 2, 3, 4]


def test_two_writers_racing_on_the_same_rows_merge_cleanly(engine: Engine) -> None:
    """Redundant collectors write the same trades; each row lands once whichever writer is first."""
    a, b = open_sink(engine), open_sink(engine)
    spec = spec_for(trade(1))
    assert a.write(spec, _rows([trade(i) for i in range(1, 11)])).written == 10
    # b has never seen the table; its rows overlap a's and extend them
    result = b.write(spec, _rows([trade(i) for i in range(5, 21)]))
    assert (result.written, result.unchanged) == (10, 6)
    # a's high-water mark is stale (10); its next batch conflicts with b's rows and must fall back, not fail
    result = a.write(spec, _rows([trade(i) for i in range(11, 31)]))
    assert (result.written, result.unchanged) == (10, 10)
    if engine.dialect.name == "postgresql":
        assert result.path == "merge"
    a.close()
    b.close()
    assert count_trades(engine) == 30
    assert [r.trade_id for r in stored_trades(engine)] == list(range(1, 31))


def test_postgres_fast_path_is_used_for_new_rows(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    assert sink.write(spec, _rows([trade(i) for i in range(1, 6)])).path == "copy"
    assert sink.write(spec, _rows([trade(i) for i in range(6, 11)])).path == "copy"
    assert sink.write(spec, _rows([trade(i) for i in range(9, 13)])).path == "merge"
    # another instrument is its own partition: no conflict possible, fast path again
    assert sink.write(spec, _rows([trade(i, inst_id="ETH-USDT") for i in range(1, 4)])).path == "copy"
    sink.close()
    assert count_trades(engine) == 15


def _stored_candle(engine: Engine) -> CandleRow:
    with Session(engine) as session:
        return session.scalars(select(CandleRow)).one()


def test_candle_revisions(engine: Engine) -> None:
    sink = open_sink(engine)
    spec = spec_for(candle())
    write = lambda c, now: sink.write(spec, [spec.to_row(c, now)])  # noqa: E731

    assert write(candle(), 1).written == 1  # forming
    assert write(candle(close=Decimal("63711"), high=Decimal("63711"), trade_count=5), 2).written == 1
    row = _stored_candle(engine)
    assert (row.close, row.revision, row.is_closed, row.updated_at) == (Decimal("63711"), 0, False, 2)

    closed = candle(close=Decimal("63711"), high=Decimal("63711"), trade_count=5, is_closed=True)
    assert write(closed, 3).written == 1
    assert write(closed, 4).written == 0  # replay: nothing changes, not even updated_at
    assert _stored_candle(engine).updated_at == 3
    # a stale forming state (e.g. replayed from a spill file) never overwrites the closed candle
    assert write(candle(), 5).written == 0
    assert _stored_candle(engine).close == Decimal("63711")

    late = dataclasses.replace(closed, volume=Decimal("0.6"), trade_count=6, revision=1)
    assert write(late, 6).written == 1
    row = _stored_candle(engine)
    assert (row.volume, row.trade_count, row.revision, row.updated_at) == (Decimal("0.6"), 6, 1, 6)
    # the same values again (re-aggregation) leave the row as it is
    assert write(dataclasses.replace(late, source=late.source), 7).written == 0
    assert _stored_candle(engine).revision == 1
    sink.close()


def test_last_state_in_a_batch_wins(engine: Engine) -> None:
    sink = open_sink(engine)
    states = [candle(trade_count=n, close=Decimal(63700 + n)) for n in range(1, 6)]
    spec = spec_for(states[0])
    sink.write(spec, [spec.to_row(c, 1) for c in states])
    sink.close()
    assert (_stored_candle(engine).trade_count, _stored_candle(engine).close) == (5, Decimal("63705"))


def test_instruments_are_replaced_when_they_change(engine: Engine) -> None:
    sink = open_sink(engine)
    inst = DOGE
    spec = spec_for(inst)
    assert sink.write(spec, [spec.to_row(inst, 1)]).written == 1
    assert sink.write(spec, [spec.to_row(inst, 2)]).written == 0
    changed = dataclasses.replace(inst, state="suspend", tick_size=Decimal("0.000000001"))
    assert sink.write(spec, [spec.to_row(changed, 3)]).written == 1
    sink.close()
    with Session(engine) as session:
        row = session.scalars(select(InstrumentRow)).one()
    assert (row.state, row.tick_size, row.updated_at) == ("suspend", Decimal("0.000000001"), 3)
