"""Retention deletes old archive rows, and only those, in batches (``purge_batch``) from the library and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

import collectors.storage.engine
from collectors.config import RetentionConfig
from collectors.model import Ticker
from collectors.storage.records import RawMessage
from collectors.storage.retention import Purged, purge_expired
from collectors.storage.schema import RawMessageRow, TickerRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from tests.builders import trade
from tests.storage.helpers import count_trades

ROOT = Path(__file__).resolve().parents[2]

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
    assert {table: done.deleted for table, done in deleted.items()} == {
        "raw_messages": 2, "rejected_messages": 0, "book_snapshots": 0, "tickers": 1,
    }  # fmt: skip
    with Session(engine) as session:
        assert sorted(session.scalars(select(RawMessageRow.seq))) == [1, 2]
        assert session.scalar(select(func.count()).select_from(TickerRow)) == 2
    assert count_trades(engine) == 1  # trades are kept forever

    keep_all = RetentionConfig(raw_messages_days=None, rejected_messages_days=None, book_snapshots_days=None,
                               tickers_days=None)  # fmt: skip
    assert set(purge_expired(engine, keep_all, now_ms=NOW + 1000 * DAY).values()) == {Purged(0, 0)}


def _batches(engine: Engine) -> list[tuple[str, int]]:
    """Record (table, rows deleted) of every transaction on ``engine`` that deleted rows, in order."""
    done: list[tuple[str, int]] = []
    pending: dict[str, int] = {}

    @event.listens_for(engine, "after_cursor_execute")
    def _deleted(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE FROM "):
            table = statement.split()[2]
            pending[table] = pending.get(table, 0) + cursor.rowcount

    @event.listens_for(engine, "commit")
    def _committed(conn: Any) -> None:
        done.extend(pending.items())
        pending.clear()

    return done


def test_db_purge_deletes_exactly_the_expired_rows_in_batches_on_postgresql(
    pg_engine: Engine, pg_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``okx-collector db purge --batch-rows 4`` with config/collectors.yaml (raw_messages 7 days, tickers 30):
    11 expired raw messages of three instruments (one NULL) go in transactions of 4, 4 and 3 rows, 5 expired
    tickers in 4 and 1; the rows within their retention stay, values asserted."""
    from flows.cli import main

    now = time.time_ns() // 1_000_000
    raw_ages = {  # seq: age in days
        **{seq: 7.01 + seq for seq in range(1, 7)},  # BTC-USDT, expired
        **{seq: 8.5 + seq for seq in range(7, 10)},  # ETH-USDT, expired
        10: 40.0, 11: 7.5,  # no instrument, expired
        12: 0.0, 13: 6.9, 14: 6.99,  # kept
    }  # fmt: skip
    inst = {**dict.fromkeys(range(1, 7), "BTC-USDT"), **dict.fromkeys(range(7, 10), "ETH-USDT"),
            10: None, 11: None, 12: "BTC-USDT", 13: "ETH-USDT", 14: None}  # fmt: skip
    _write(pg_engine, [
        RawMessage(collector_id="c", seq=seq, exchange="okx", channel="trades", inst_id=inst[seq],
                   recv_ms=now - int(age * DAY), payload=f'{{"seq":{seq}}}')
        for seq, age in raw_ages.items()
    ])  # fmt: skip
    ticker_ages = {"BTC-USDT": (31, 45, 29), "ETH-USDT": (30.5, 60, 90, 1)}
    _write(pg_engine, [
        Ticker(exchange="okx", inst_id=pair, ts_ms=now - int(age * DAY), last=Decimal(f"{i}.5"))
        for pair, ages in ticker_ages.items() for i, age in enumerate(ages)
    ])  # fmt: skip
    monkeypatch.setenv("COLLECTOR_CONFIG", str(ROOT / "config" / "collectors.yaml"))
    make: Callable[..., Engine] = collectors.storage.engine.make_engine
    recorded: list[list[tuple[str, int]]] = []  # one list of batches per engine the CLI makes

    def watched(*args: Any, **kwargs: Any) -> Engine:
        engine = make(*args, **kwargs)
        recorded.append(_batches(engine))
        return engine

    monkeypatch.setattr(collectors.storage.engine, "make_engine", watched)

    code = main(["db", "purge", "--database-url", pg_database, "--batch-rows", "4", "--pause-s", "0"])
    out = capsys.readouterr().out
    assert code == 0 and len(recorded) == 1
    assert out.splitlines() == [
        "raw_messages: 11 rows deleted in 3 batches",
        "rejected_messages: 0 rows deleted in 1 batches",
        "book_snapshots: 0 rows deleted in 1 batches",
        "tickers: 5 rows deleted in 2 batches",
    ]
    assert recorded[0] == [("raw_messages", 4), ("raw_messages", 4), ("raw_messages", 3), ("tickers", 4),
                           ("tickers", 1)]  # fmt: skip
    with Session(pg_engine) as session:
        kept_raw = session.execute(select(RawMessageRow.seq, RawMessageRow.inst_id, RawMessageRow.payload))
        assert sorted(kept_raw) == [(12, "BTC-USDT", '{"seq":12}'), (13, "ETH-USDT", '{"seq":13}'),
                                    (14, None, '{"seq":14}')]  # fmt: skip
        kept_tickers = session.execute(select(TickerRow.inst_id, TickerRow.last, TickerRow.ts))
        assert sorted(kept_tickers) == [
            ("BTC-USDT", Decimal("2.5"), now - 29 * DAY), ("ETH-USDT", Decimal("3.5"), now - 1 * DAY),
        ]  # fmt: skip
