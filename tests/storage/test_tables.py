"""Every table, written through the writer and read back: each column holds exactly what the record said.

Also: the migrated schema is the declared one, and the writer's column list is the schema's (one home).
"""

from __future__ import annotations

from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from collectors.model import BookLevel, BookSnapshot, Candle, CandleSource, DataType, Ticker
from collectors.storage.records import (
    CoverageSpan,
    CoverageStatus,
    ExchangeCandle,
    RawMessage,
    RejectedMessage,
)
from collectors.storage.schema import Base
from collectors.storage.sinks import open_sink
from collectors.storage.tables import SPECS, Kind, spec_for
from collectors.storage.writer import BatchWriter
from tests.builders import BASE_TS, DOGE, trade

NOW_MS = BASE_TS + 60_000
_MINUTE = BASE_TS - BASE_TS % 60_000


def _one_of_each() -> list[object]:
    """One record per table; values taken from the recorded OKX samples (BTC-USDT, DOGE-USDT)."""
    return [
        trade(1),
        Candle(
            exchange="okx", inst_id="BTC-USDT", timeframe="1m", open_time_ms=_MINUTE, open=Decimal("63707.3"),
            high=Decimal("63710"), low=Decimal("63700.1"), close=Decimal("63709.9"), volume=Decimal("0.5"),
            quote_volume=Decimal("31853.65"), trade_count=4, buy_volume=Decimal("0.3"),
            sell_volume=Decimal("0.2"), first_trade_id=1, last_trade_id=4, first_trade_ms=BASE_TS,
            last_trade_ms=BASE_TS + 30, is_closed=True, is_complete=False, source=CandleSource.BACKFILL,
            revision=2,
        ),
        BookSnapshot(
            exchange="okx", inst_id="BTC-USDT", ts_ms=BASE_TS, seq_id=123_456_789,
            bids=(BookLevel(price=Decimal("63707.3"), size=Decimal("0.00164251"), orders=2),),
            asks=(BookLevel(price=Decimal("63707.4"), size=Decimal("1.2"), orders=1),
                  BookLevel(price=Decimal("63708"), size=Decimal("0.5"), orders=None)),
            recv_ms=BASE_TS + 5,
        ),
        Ticker(
            exchange="okx", inst_id="BTC-USDT", ts_ms=BASE_TS, last=Decimal("63707.3"),
            last_size=Decimal("0.00164251"), bid_price=Decimal("63707.3"), bid_size=Decimal("0.1"),
            ask_price=Decimal("63707.4"), ask_size=Decimal("1.2"), open_24h=Decimal("62000"),
            high_24h=Decimal("64000.5"), low_24h=Decimal("61000.01"), volume_24h=Decimal("1234.5678"),
            volume_ccy_24h=Decimal("78650000.123"), recv_ms=BASE_TS + 3,
        ),
        DOGE,
        RawMessage(collector_id="c-1", seq=1, exchange="okx", channel="trades", inst_id="BTC-USDT",
                   recv_ms=BASE_TS, payload='{"arg":{"channel":"trades"}}'),
        RejectedMessage(collector_id="c-1", seq=2, exchange="okx", channel=None, inst_id=None, recv_ms=BASE_TS,
                        reason="price: not a decimal", payload='{"px":"x"}'),
        CoverageSpan(exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=_MINUTE,
                     end_ms=_MINUTE + 60_000, status=CoverageStatus.GAP, reason="disconnect"),
        ExchangeCandle(
            exchange="okx", inst_id="BTC-USDT", bar="1Dutc", open_time_ms=_MINUTE, open=Decimal("63707.3"),
            high=Decimal("63710"), low=Decimal("63700.1"), close=Decimal("63709.9"), volume=Decimal("0.5"),
            volume_ccy=Decimal("31853.65"), volume_ccy_quote=Decimal("31853.65"), confirmed=True,
        ),
    ]  # fmt: skip


async def test_every_table_reads_back_exactly_what_was_written(engine: Engine) -> None:
    records = _one_of_each()
    assert {type(r) for r in records} == set(SPECS)
    async with BatchWriter(open_sink(engine), clock=lambda: NOW_MS) as writer:
        await writer.put_many(records)
        await writer.flush()
        assert writer.stats().written_rows == len(records)
    with engine.connect() as conn:
        for record in records:
            spec = spec_for(record)
            table = Base.metadata.tables[spec.table]
            stored = conn.execute(select(*(table.c[name] for name in spec.names))).one()
            assert tuple(stored) == spec.to_row(record, NOW_MS), spec.table
            for value, kind in zip(stored, spec.kinds, strict=True):  # exact types, not just equal values
                if value is not None:
                    assert type(value) is _PYTHON[kind], (spec.table, value)


_PYTHON = {
    Kind.TEXT: str,
    Kind.INT: int,
    Kind.INT4: int,
    Kind.DECIMAL: Decimal,
    Kind.TIME: int,
    Kind.BOOL: bool,
}


def test_the_migrated_schema_is_the_declared_one(engine: Engine) -> None:
    """Alembic's migration (a frozen record) and schema.py agree on every table, column and type."""
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    inspector = inspect(engine)
    for spec in SPECS.values():
        stored = [c["name"] for c in inspector.get_columns(spec.table) if c["name"] != "id"]
        assert stored == list(spec.names), spec.table


def test_the_writer_columns_come_from_the_schema() -> None:
    for spec in SPECS.values():
        table = Base.metadata.tables[spec.table]
        assert spec.names == tuple(c.name for c in table.columns if c.identity is None)
        assert len(spec.to_row(next(r for r in _one_of_each() if spec_for(r) is spec), 0)) == len(spec.names)
