"""SQLite's multi-row statements and its text verdict on decimals (collectors/storage/sink_sqlite.py, values.py).

A batch goes in as statements of many rows each, sized by powers of two within the connection's limit on bound
variables; whatever the sizes, every row lands once, replays change nothing, and candles are revised exactly as
one row per statement would. Decimals are checked through the text SQLite stores: the verdict is the same as
the value-by-value one, at the limits too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from collectors.model import format_decimal
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.schema import CandleRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import SPECS, spec_for
from collectors.storage.values import check_value, checked_chunks
from tests.builders import candle, trade
from tests.storage.helpers import stored_trades


def _engine(path: Path, variables: int | None) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    if variables is not None:

        def limit(dbapi: sqlite3.Connection, _record: object) -> None:
            dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)

        event.listen(engine, "connect", limit)
    return engine


WIDEST = max(len(spec.names) for spec in SPECS.values())  # candles: one candle per statement at this limit


@pytest.fixture(params=[None, 100, WIDEST], ids=["default-limit", "100-variables", "widest-row-alone"])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    engine = _engine(tmp_path / "limited.db", request.param)
    yield engine
    engine.dispose()


def test_batches_of_awkward_sizes_land_once_under_any_variable_limit(limited: Engine) -> None:
    sink = open_sink(limited)
    spec = spec_for(trade(1))
    ids = range(1, 2032)  # 1024 + 1007 rows: a full chunk, then 512 + 256 + 128 + 64 + 32 + 8 + 4 + 2 + 1
    first = sink.write(spec, [spec.to_row(trade(i), 0) for i in ids])
    assert (first.written, first.unchanged) == (2031, 0)
    again = sink.write(spec, [spec.to_row(trade(i), 0) for i in range(2001, 2040)])
    assert (again.written, again.unchanged) == (8, 31)
    sink.close()
    stored = stored_trades(limited)
    assert [t.trade_id for t in stored] == list(range(1, 2040))
    assert {(t.price, t.size) for t in stored} == {(Decimal("63707.3"), Decimal("0.00164251"))}


def test_candles_are_revised_through_multi_row_statements(limited: Engine) -> None:
    """Several candles per statement, each written twice: the forming state, then the closed one."""
    sink = open_sink(limited)
    base = candle()
    minutes = [base.open_time_ms + 60_000 * i for i in range(40)]
    forming = [candle(open_time_ms=ms, is_closed=False, close=Decimal("1.5")) for ms in minutes]
    closed = [candle(open_time_ms=ms, is_closed=True, close=Decimal("2.25")) for ms in minutes]
    spec = spec_for(base)
    assert sink.write(spec, [spec.to_row(c, 10) for c in forming]).written == 40
    assert sink.write(spec, [spec.to_row(c, 20) for c in closed]).written == 40
    # a late forming state never replaces a closed candle; an identical closed one changes nothing
    late = sink.write(spec, [spec.to_row(c, 30) for c in forming + closed])
    assert (late.written, late.unchanged) == (0, 40)
    sink.close()
    with Session(limited) as session:
        rows = session.execute(select(CandleRow.open_time, CandleRow.close, CandleRow.is_closed)).all()
    assert sorted(rows) == [(ms, Decimal("2.25"), True) for ms in minutes]


LIMIT_DECIMALS = [
    "1E-16383",  # the most digits after the point a database numeric holds
    "1E-16384",  # one more
    "0." + "0" * 16382 + "1",  # 16383 digits after the point, printed without an exponent
    "0." + "0" * 16383 + "1",  # 16384
    "9" * 16383,  # long texts without an exponent, far below 1E+131072
    "9" * 20000,
    "9" * 131072,  # the largest integer digit count below the limit
    "1" + "0" * 131072,  # 1E+131072: refused
    "1E+131071",
    "-1E+131072",
    "NaN",
    "-sNaN",
    "Infinity",
    "-Infinity",
    "-0",
    "0E-16384",
    "0.000001",
    "1E-7",
]


@pytest.mark.parametrize("text", LIMIT_DECIMALS, ids=lambda t: t if len(t) < 24 else f"{t[:8]}..{len(t)}")
def test_the_text_verdict_on_decimals_is_the_value_verdict(text: str) -> None:
    value = Decimal(text)
    spec = spec_for(trade(1))
    column = spec.columns[spec.index_of("price")]
    try:
        check_value(spec.table, column, value)
    except (TypeError, ValueError) as exc:
        expected: Any = type(exc)
    else:
        expected = format_decimal(value)
    for values in ([value], [Decimal("1.5"), value, Decimal("63707.3")]):
        rows = [spec.to_row(trade(i + 1, price=v), 0) for i, v in enumerate(values)]
        try:
            chunks = checked_chunks(spec, rows, decimals_as_text=True)
        except (TypeError, ValueError) as exc:
            assert type(exc) is expected and "trades.price" in str(exc)
        else:
            width = len(spec.names)
            assert chunks[0][spec.index_of("price") :: width] == [
                expected if v is value else format_decimal(v) for v in values
            ]
