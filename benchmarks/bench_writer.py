"""Writer throughput: our idempotent BatchWriter vs the barest bulk load of the same rows, in one run.

Entries:

1. ``writer.postgres.new_rows``: 500k new trades through :class:`BatchWriter` (Trade objects in, COPY fast
   path) vs a bare psycopg binary COPY of the same rows, already converted to tuples, into an equivalent
   table (same primary key and index). The bare COPY is not idempotent: a replay would fail.
2. ``writer.postgres.replay``: the same 500k trades written again into the filled table (every row a
   duplicate: the staging + ``INSERT ... ON CONFLICT`` merge path) vs the same bare COPY figure.
3. ``writer.sqlite.new_rows``: the writer on SQLite vs a bare ``executemany`` INSERT in one transaction.

PostgreSQL is the local server (``BENCH_PG_ADMIN_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``);
the benchmark creates and drops its own database.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from collectors.model import Side, Trade, format_decimal
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.sinks import open_sink
from collectors.storage.types import ms_to_datetime
from collectors.storage.writer import BatchWriter, WriterOptions

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_MS = 1_786_613_174_873
OPTIONS = WriterOptions(max_batch_rows=50_000, max_pending_rows=500_000, flush_interval_s=1.0)
COLUMNS = ("exchange", "inst_id", "trade_id", "ts", "price", "size", "side", "source", "recv_time")
TYPES = ("text", "text", "int8", "timestamptz", "numeric", "numeric", "text", "text", "timestamptz")


def make_trades(n: int, *, seed: int = 7) -> list[Trade]:
    rng = random.Random(seed)
    trades = []
    price = 63_707_3
    for i in range(1, n + 1):
        price = max(1, price + rng.randint(-3, 3))
        trades.append(
            Trade(
                exchange="okx",
                inst_id="BTC-USDT",
                trade_id=700_000_000 + i,
                ts_ms=START_MS + i * 3,
                price=Decimal(price).scaleb(-1),
                size=Decimal(rng.randint(1, 5_000_000)).scaleb(-8),
                side=Side.BUY if rng.random() < 0.5 else Side.SELL,
                source="0",
                recv_ms=START_MS + i * 3 + 11,
            )
        )
    return trades


def _best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def _entry(
    name: str, value: float, baseline: str, baseline_value: float, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "metric": "throughput",
        "value": round(value, 1),
        "unit": "rows/s",
        "baseline": baseline,
        "baseline_value": round(baseline_value, 1),
        "ratio": round(value / baseline_value, 3),
        "params": params,
    }


async def _write_all(url: str, trades: list[Trade]) -> float:
    engine = make_engine(url)
    started = time.perf_counter()
    async with BatchWriter(open_sink(engine), options=OPTIONS) as writer:
        await writer.put_many(trades)
        await writer.drain(timeout_s=600)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return len(trades) / elapsed


# ----------------------------------------------------------------------------------------------- PostgreSQL


def _pg_bare_copy(conn: psycopg.Connection[Any], tuples: list[tuple[Any, ...]]) -> float:
    conn.execute("TRUNCATE bench_bare")
    conn.commit()
    started = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(
            sql.SQL("COPY bench_bare ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
            )
        ) as copy:
            copy.set_types(list(TYPES))
            for row in tuples:
                copy.write_row(row)
    conn.commit()
    return len(tuples) / (time.perf_counter() - started)


def _postgres(trades: list[Trade], repeats: int) -> list[dict[str, Any]]:
    name = f"okxc_bench_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE bench_bare (LIKE trades INCLUDING ALL)")
            conn.commit()
            tuples = [
                (t.exchange, t.inst_id, t.trade_id, ms_to_datetime(t.ts_ms), t.price, t.size, t.side.value,
                 t.source, ms_to_datetime(t.recv_ms or 0))
                for t in trades
            ]  # fmt: skip
            bare = _best(lambda: _pg_bare_copy(conn, tuples), repeats)

            def fresh() -> float:
                conn.execute("TRUNCATE trades")
                conn.commit()
                return asyncio.run(_write_all(url, trades))

            new_rows = _best(fresh, repeats)
            replay = _best(lambda: asyncio.run(_write_all(url, trades)), repeats)
            stored = conn.execute("SELECT count(*) FROM trades").fetchone()
            assert stored is not None and stored[0] == len(trades), stored
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    params = {"rows": len(trades), "batch_rows": OPTIONS.max_batch_rows, "repeats": repeats, "best_of": True}
    baseline = "bare psycopg binary COPY of prepared tuples (not idempotent)"
    return [
        _entry("writer.postgres.new_rows", new_rows, baseline, bare, params),
        _entry("writer.postgres.replay", replay, baseline, bare, {**params, "all_rows_duplicates": True}),
    ]


# --------------------------------------------------------------------------------------------------- SQLite


def _sqlite_bare(path: Path, tuples: list[tuple[Any, ...]]) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("DELETE FROM trades")
    conn.commit()
    marks = ", ".join("?" for _ in COLUMNS)
    started = time.perf_counter()
    with conn:
        conn.executemany(f"INSERT INTO trades ({', '.join(COLUMNS)}) VALUES ({marks})", tuples)
    elapsed = time.perf_counter() - started
    conn.close()
    return len(tuples) / elapsed


def _sqlite(trades: list[Trade], repeats: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        tuples = [
            (t.exchange, t.inst_id, t.trade_id, t.ts_ms, format_decimal(t.price), format_decimal(t.size),
             t.side.value, t.source, t.recv_ms)
            for t in trades
        ]  # fmt: skip
        bare = _best(lambda: _sqlite_bare(path, tuples), repeats)

        def fresh() -> float:
            with sqlite3.connect(path) as conn:
                conn.execute("DELETE FROM trades")
            return asyncio.run(_write_all(url, trades))

        ours = _best(fresh, repeats)
    params = {"rows": len(trades), "batch_rows": OPTIONS.max_batch_rows, "repeats": repeats, "best_of": True}
    return [
        _entry("writer.sqlite.new_rows", ours, "bare executemany INSERT in one transaction", bare, params)
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows, repeats = (50_000, 1) if quick else (500_000, 3)
    trades = make_trades(rows)
    return [*_postgres(trades, repeats), *_sqlite(trades, repeats)]
