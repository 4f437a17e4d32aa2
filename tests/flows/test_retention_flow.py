"""The ``retention`` flow deletes expired archive rows in batches (one transaction each), and only those."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.model import Ticker
from collectors.storage.records import RawMessage
from collectors.storage.retention import purge_batch
from collectors.storage.schema import RawMessageRow, TickerRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for
from tests.builders import trade
from tests.storage.helpers import count_trades

DAY = 86_400_000


def _write(engine: Engine, records: list[Any], now_ms: int) -> None:
    sink = open_sink(engine)
    spec = spec_for(records[0])
    sink.write(spec, [spec.to_row(r, now_ms) for r in records])
    sink.close()


def _fill(engine: Engine, now_ms: int) -> None:
    _write(engine, [
        RawMessage(collector_id="c", seq=i, exchange="okx", channel="trades", inst_id="BTC-USDT",
                   recv_ms=now_ms - age_days * DAY, payload="{}")
        for i, age_days in enumerate([0, 6, 8, 9, 10, 30, 31], start=1)
    ], now_ms)  # fmt: skip
    _write(engine, [
        Ticker(exchange="okx", inst_id="BTC-USDT", ts_ms=now_ms - age_days * DAY, last=Decimal("63707.3"))
        for age_days in (1, 29, 31)
    ], now_ms)  # fmt: skip
    _write(engine, [trade(1)], now_ms)


@pytest.fixture
def retention_env(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    config = tmp_path / "collectors.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "exchanges": {"okx": {"pairs": ["BTC-USDT"]}},
                "retention": {"raw_messages_days": 7, "tickers_days": 30, "book_snapshots_days": None},
            }
        )
    )
    monkeypatch.setenv("COLLECTOR_CONFIG", str(config))
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return engine


async def test_retention_flow_deletes_expired_rows_in_batches(
    prefect_harness: None, retention_env: Engine
) -> None:
    from flows.retention import retention

    _fill(retention_env, time.time_ns() // 1_000_000)
    rows = await retention(batch_rows=2, pause_s=0.0)
    by_table = {r["table"]: (r["deleted"], r["batches"]) for r in rows}
    # raw_messages: 5 expired rows at 2 per batch = 3 batches (the third finds 1 and stops)
    assert by_table == {
        "raw_messages": (5, 3),
        "rejected_messages": (0, 1),
        "book_snapshots": (0, 0),  # kept forever: not even queried
        "tickers": (1, 1),
    }
    with Session(retention_env) as session:
        assert sorted(session.scalars(select(RawMessageRow.seq))) == [1, 2]
        assert session.scalar(select(func.count()).select_from(TickerRow)) == 2
    assert count_trades(retention_env) == 1  # trades are never purged


def test_purge_batch_deletes_at_most_the_limit_of_expired_rows_per_call(engine: Engine) -> None:
    now = 1_786_613_174_873
    _fill(engine, now)
    cutoff = now - 7 * DAY
    assert [purge_batch(engine, "raw_messages", cutoff_ms=cutoff, limit=3) for _ in range(3)] == [3, 2, 0]
    with Session(engine) as session:
        assert sorted(session.scalars(select(RawMessageRow.seq))) == [1, 2]
    with pytest.raises(ValueError, match="limit must be above 0"):
        purge_batch(engine, "tickers", cutoff_ms=cutoff, limit=0)


def _scans(plan: Any) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan tree."""
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _scans(child)
    return nodes


@pytest.mark.parametrize(
    ("table", "time_column", "fill"),
    [
        ("raw_messages", "recv_time",
         "INSERT INTO raw_messages (collector_id, seq, exchange, channel, inst_id, recv_time, payload) "
         "SELECT 'c', g, 'okx', 'trades', CASE WHEN g % 50 = 0 THEN NULL ELSE 'P-' || (g % 7) END, "
         "to_timestamp((:now - (g % 20) * 86400000) / 1000.0), '{}' FROM generate_series(1, 60000) g"),
        ("tickers", "ts",
         "INSERT INTO tickers (exchange, inst_id, ts, last) "
         "SELECT 'okx', 'P-' || (g % 7), to_timestamp((:now - g * 30000) / 1000.0), 1 "
         "FROM generate_series(1, 60000) g"),
    ],
)  # fmt: skip
def test_a_batch_deletes_by_an_index_range_never_a_full_scan(
    pg_engine: Engine, table: str, time_column: str, fill: str
) -> None:
    """On PostgreSQL every statement of a purge batch reads the table through an index with the time bound in
    its condition (no sequential scan, no whole-index walk), and the purge deletes exactly the expired rows,
    NULL instruments included."""
    from sqlalchemy import event, text

    now = time.time_ns() // 1_000_000
    cutoff = now - 10 * DAY
    with pg_engine.begin() as conn:
        conn.execute(text(fill), {"now": now})
        conn.execute(text(f"ANALYZE {table}"))
        expired = conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE {time_column} < to_timestamp(:c / 1000.0)"),
            {"c": cutoff},
        ).scalar_one()
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(pg_engine, "before_cursor_execute", seen)
    try:
        first = purge_batch(pg_engine, table, cutoff_ms=cutoff, limit=5_000)
    finally:
        event.remove(pg_engine, "before_cursor_execute", seen)
    deleted = first
    while (n := purge_batch(pg_engine, table, cutoff_ms=cutoff, limit=5_000)) > 0:
        deleted += n
    assert expired > 5_000 and (first, deleted) == (5_000, expired)
    with pg_engine.connect() as conn:
        left = conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE {time_column} < to_timestamp(:c / 1000.0)"),
            {"c": cutoff},
        ).scalar_one()
        assert left == 0
        reading = [(s, p) for s, p in statements if table in s]
        assert reading
        for statement, parameters in reading:
            [[plan]] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).one()
            nodes = _scans(plan["Plan"])
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (statement, nodes)
            for node in nodes:
                if node.get("Relation Name") == table and node["Node Type"] != "ModifyTable":
                    assert node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), node
                if node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
                    assert "Index Cond" in node, (
                        statement,
                        node,
                    )  # a seek or a range, never a whole-index walk
