"""Retention deletes old archive rows, and only those."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.config import RetentionConfig
from collectors.model import Ticker
from collectors.storage.records import RawMessage
from collectors.storage.retention import purge_expired
from collectors.storage.schema import RawMessageRow, TickerRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from tests.builders import trade
from tests.storage.helpers import count_trades

DAY = 86_400_000
NOW = 1_786_613_174_873


def _write(engine: Engine, records: list) -> None:
    sink = open_sink(engine)
    spec = spec_for(records[0])
    sink.write(spec, [spec.to_row(r, NOW) for r in records])
    sink.close()


def test_purge_removes_only_expired_archive_rows(engine: Engine) -> None:
    _write(engine, [
        RawMessage(collector_id="c", seq=i, exchange="okx", channel="trades", inst_id="BTC-USDT",
                   recv_ms=NOW - age_days * DAY, payload="{}")
        for i, age_days in enumerate([0, 6, 8, 30], start=1)
    ])  # fmt: skip
    _write(engine, [
        Ticker(exchange="okx", inst_id="BTC-USDT", ts_ms=NOW - age_days * DAY, last=Decimal("63707.3"))
        for age_days in (1, 29, 31)
    ])  # fmt: skip
    old_trade = trade(1)
    _write(engine, [old_trade])

    deleted = purge_expired(engine, RetentionConfig(raw_messages_days=7, tickers_days=30), now_ms=NOW)
    assert deleted == {"raw_messages": 2, "rejected_messages": 0, "book_snapshots": 0, "tickers": 1}
    with Session(engine) as session:
        assert sorted(session.scalars(select(RawMessageRow.seq))) == [1, 2]
        assert session.scalar(select(func.count()).select_from(TickerRow)) == 2
    assert count_trades(engine) == 1  # trades are kept forever

    keep_all = RetentionConfig(raw_messages_days=None, rejected_messages_days=None, book_snapshots_days=None,
                               tickers_days=None)  # fmt: skip
    assert set(purge_expired(engine, keep_all, now_ms=NOW + 1000 * DAY).values()) == {0}
