"""Prices, sizes and instants survive a round trip through each database exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from collectors.model import Candle, CandleSource
from collectors.storage.schema import CandleRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from tests.builders import BASE_TS, trade
from tests.storage.helpers import stored_trades

# SQLite's NUMERIC affinity would turn '43210.5' into a float and '43210.0' into the integer 43210.
AWKWARD = [
    ("43210.5", "0.00164251"),
    ("43210.0", "1"),
    ("43210.50", "1.10"),
    ("0.00001234", "0.00000001"),  # PEPE-sized price, BTC lot-sized size
    ("102537.9", "0.0000125"),  # real OKX history-trades row
    ("9999999999.0000000000000000", "123456789012345678.123456789"),
    ("0.1", "0.2"),  # 0.1 + 0.2 is not 0.3 in binary floating point
]


def test_decimals_round_trip_exactly(engine: Engine) -> None:
    trades = [trade(i + 1, price=p, size=s) for i, (p, s) in enumerate(AWKWARD)]
    spec = spec_for(trades[0])
    sink = open_sink(engine)
    sink.write(spec, [spec.to_row(t, 0) for t in trades])
    sink.close()

    rows = stored_trades(engine)
    assert [(str(r.price), str(r.size)) for r in rows] == [(str(t.price), str(t.size)) for t in trades]
    assert [r.price for r in rows] == [Decimal(p) for p, _ in AWKWARD]
    assert all(isinstance(r.price, Decimal) and isinstance(r.size, Decimal) for r in rows)
    assert sum(r.price for r in rows if r.price in (Decimal("0.1"),)) + Decimal("0.2") == Decimal("0.3")


def test_instants_are_utc_milliseconds(engine: Engine) -> None:
    t = trade(1)
    spec = spec_for(t)
    sink = open_sink(engine)
    sink.write(spec, [spec.to_row(t, 0)])
    sink.close()
    (row,) = stored_trades(engine)
    assert row.ts == t.ts_ms == BASE_TS + 1
    assert row.recv_time == t.recv_ms
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            shown = conn.execute(
                text("SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') FROM trades")
            )
            assert shown.scalar_one() == "2026-08-13 09:26:14.874"  # date -u -d @1786613174.874
        else:
            assert conn.execute(text("SELECT typeof(ts), typeof(price) FROM trades")).one() == (
                "integer",
                "text",
            )


@pytest.mark.parametrize("close", ["0.00001234", "63707.30", "43210"])
def test_candle_round_trip(engine: Engine, close: str) -> None:
    candle = Candle(
        exchange="okx",
        inst_id="PEPE-USDT",
        timeframe="1m",
        open_time_ms=BASE_TS - BASE_TS % 60_000,
        open=Decimal("0.00001230"),
        high=Decimal(close).max(Decimal("0.00001230")),
        low=Decimal(close).min(Decimal("0.00001230")),
        close=Decimal(close),
        volume=Decimal("1000000.00000001"),
        quote_volume=Decimal("12.3400000000000123"),
        trade_count=3,
        buy_volume=Decimal("1000000"),
        sell_volume=Decimal("0.00000001"),
        first_trade_id=7,
        last_trade_id=9,
        first_trade_ms=BASE_TS,
        last_trade_ms=BASE_TS + 2,
        is_closed=True,
        source=CandleSource.BACKFILL,
    )
    spec = spec_for(candle)
    sink = open_sink(engine)
    sink.write(spec, [spec.to_row(candle, BASE_TS + 5)])
    sink.close()
    with Session(engine) as session:
        row = session.scalars(select(CandleRow)).one()
    assert (row.open, row.high, row.low, row.close) == (candle.open, candle.high, candle.low, candle.close)
    assert str(row.close) == close
    assert row.volume == candle.volume and str(row.quote_volume) == "12.3400000000000123"
    assert row.vwap == candle.vwap
    assert (row.open_time, row.updated_at, row.source, row.revision) == (
        candle.open_time_ms,
        BASE_TS + 5,
        "backfill",
        0,
    )
