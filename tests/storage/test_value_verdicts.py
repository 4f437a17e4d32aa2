"""Values of the wrong Python type or beyond what a column holds: one verdict on both databases.

Each bad row is dead-lettered with a reason naming its column, every other row is written, and the writer stays
healthy. A record whose row cannot even be built (an enum field holding a plain string) is refused at ``put``.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from collectors.model import Side
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from collectors.storage.writer import BatchWriter
from tests.builders import trade
from tests.storage.helpers import stored_trades

# (field changes, column named in the reason)
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "float-price": ({"price": 63707.3}, "trades.price"),
    "int-price": ({"price": 63707}, "trades.price"),
    "str-price": ({"price": "63707.3"}, "trades.price"),
    "none-price": ({"price": None}, "trades.price"),
    "dict-in-text": ({"source": {"a": 1}}, "trades.source"),
    "decimal-in-int": ({"trade_id": Decimal(900)}, "trades.trade_id"),
    "str-in-int": ({"trade_id": "2"}, "trades.trade_id"),
    "bool-in-int": ({"trade_id": True}, "trades.trade_id"),
    "bigint-overflow": ({"trade_id": 2**63}, "trades.trade_id"),
    "nul-in-text": ({"inst_id": "BTC\x00USDT"}, "trades.inst_id"),
    "surrogate": ({"inst_id": "BTC-USDT\udcff"}, "trades.inst_id"),
    "inst-id-100-chars": ({"inst_id": "X" * 100}, "trades.inst_id"),
    "float-ts": ({"ts_ms": 1.786613174873e12}, "trades.ts"),
    "ts-1e16": ({"ts_ms": 10**16}, "trades.ts"),
    "ts-before-year-1": ({"ts_ms": -(10**15)}, "trades.ts"),
    "nan": ({"price": Decimal("NaN")}, "trades.price"),
    "infinity": ({"size": Decimal("Infinity")}, "trades.size"),
    "too-precise": ({"price": Decimal("1E-20000")}, "trades.price"),
    "too-large": ({"price": Decimal("1E+200000")}, "trades.price"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
async def test_a_bad_value_is_dead_lettered_with_its_column_on_both_databases(
    engine: Engine, case: str
) -> None:
    changes, column = HOSTILE[case]
    bad = dataclasses.replace(trade(900), **changes)
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many([*(trade(i) for i in range(1, 50)), bad, *(trade(i) for i in range(50, 100))])
        await writer.flush()
        stats = writer.stats()
        assert (stats.written_rows, stats.dead_rows, stats.pending_rows, stats.healthy) == (99, 1, 0, True)
        ((table, row, error),) = writer.dead_letters
        assert table == "trades" and row == spec_for(bad).to_row(bad, 0)
        assert column in error
        await writer.put(trade(100))  # and the writer keeps writing
        await writer.flush()
    assert [t.trade_id for t in stored_trades(engine)] == list(range(1, 101))


def test_the_sinks_give_the_same_verdict_without_the_writer(engine: Engine) -> None:
    """The check sits under both sinks, so a direct sink user gets it too."""
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    for case, (changes, column) in HOSTILE.items():
        bad = dataclasses.replace(trade(900), **changes)
        with pytest.raises(Exception, match=column.replace(".", r"\.")) as raised:
            sink.write(spec, [spec.to_row(bad, 0)])
        assert getattr(raised.value, "bad_data", False), case
    sink.close()
    assert stored_trades(engine) == []


async def test_a_plain_string_side_is_a_type_error_naming_the_field(engine: Engine) -> None:
    async with BatchWriter(open_sink(engine)) as writer:
        with pytest.raises(TypeError, match=r"Trade\.side: expected Side, got str 'buy'"):
            await writer.put(dataclasses.replace(trade(1), side="buy"))  # type: ignore[arg-type]
        await writer.put(dataclasses.replace(trade(2), side=Side.BUY))
        await writer.flush()
        assert writer.stats().pending_rows == 0
    assert [t.trade_id for t in stored_trades(engine)] == [2]


async def test_a_bulk_list_with_a_record_that_cannot_become_a_row_queues_the_records_before_it(
    engine: Engine,
) -> None:
    """``put_many`` of a list builds its rows in one pass; a bad record still stops the call exactly there."""
    bad = dataclasses.replace(trade(3), side="sell")  # type: ignore[arg-type]
    async with BatchWriter(open_sink(engine)) as writer:
        with pytest.raises(TypeError, match=r"Trade\.side: expected Side, got str 'sell'"):
            await writer.put_many([trade(1), trade(2), bad, trade(4)])
        assert writer.stats().pending_rows == 2
        await writer.put_many([trade(i) for i in range(5, 9)])
        await writer.flush()
    assert [t.trade_id for t in stored_trades(engine)] == [1, 2, 5, 6, 7, 8]
