"""Writer throughput: our idempotent BatchWriter vs the barest bulk load of the same rows, in one run.

Entries:

1. ``writer.postgres.new_rows``: 500k new trades through :class:`BatchWriter` (Trade objects in, COPY fast
   path) vs a bare psycopg binary COPY of the same rows, already converted to tuples, into an equivalent
   table (same primary key and index), 50k rows per COPY and transaction. The bare COPY is not idempotent: a
   replay would fail.
2. ``writer.postgres.replay``: the same 500k trades written again into the filled table (every row a
   duplicate: one index count proves it, path ``skip``) vs the same bare COPY figure.
3. ``writer.sqlite.new_rows``: the writer on SQLite vs a bare ``executemany`` INSERT of prepared tuples (50k rows
   per transaction, WAL and ``synchronous=NORMAL`` like ours) into a second file with the same schema.
4. ``writer.sqlite.new_rows_vs_multirow``: the same passes of our writer vs a bare multi-row INSERT of the
   prepared tuples (1,024 rows per statement, as our SQLite sink does at most), into a third file: the stronger
   bare load, so that entry 3's ratio is not read as more than it is.

Ours and the baselines are interleaved batch by batch, so all see the same machine load: a pass feeds the
rows in 50k-row chunks, and for each chunk each baseline loads it (one transaction, into its own equivalent
table or file) and our writer takes it (``put_many`` + ``flush``: one batch, one transaction), the order
alternating from chunk to chunk. A pass's ratio is the baseline's total time over ours; the writer's start-up
and close count on our side. Five passes run; the entry reports the pass with the median ratio (its two
throughputs, so ``ratio == value / baseline_value``) and, in ``params``, every pass's ratio and their spread
(``ratio_min``/``ratio_max``).

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
from collections.abc import Callable, Mapping
from decimal import Decimal
from itertools import chain
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


CHUNK_ROWS = OPTIONS.max_batch_rows
Tuples = list[tuple[Any, ...]]


async def _pass(
    url: str,
    trades: list[Trade],
    tuples: Tuples,
    bares: Mapping[str, Callable[[Tuples], None]],
    *,
    bare_first: bool,
) -> tuple[float, dict[str, float]]:
    """One pass over the rows, chunk by chunk: (our seconds, each baseline's seconds)."""
    ours_s = 0.0
    bare_s = dict.fromkeys(bares, 0.0)
    started = time.perf_counter()
    engine = make_engine(url)
    async with BatchWriter(open_sink(engine), options=OPTIONS) as writer:
        ours_s += time.perf_counter() - started
        for k, start in enumerate(range(0, len(trades), CHUNK_ROWS)):
            chunk = trades[start : start + CHUNK_ROWS]
            sides = [*bares, "ours"] if (k % 2 == 0) == bare_first else ["ours", *reversed(list(bares))]
            for side in sides:
                began = time.perf_counter()
                if side == "ours":
                    await writer.put_many(chunk)
                    await writer.flush()
                    ours_s += time.perf_counter() - began
                else:
                    bares[side](tuples[start : start + CHUNK_ROWS])
                    bare_s[side] += time.perf_counter() - began
        began = time.perf_counter()
    engine.dispose()
    ours_s += time.perf_counter() - began
    return ours_s, bare_s


def _entry(
    name: str, rows: int, passes: list[tuple[float, float]], baseline: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One entry from (our seconds, baseline seconds) per pass: the median-ratio pass, every ratio in params."""
    ratios = [bare_s / ours_s for ours_s, bare_s in passes]
    ours_s, bare_s = sorted(passes, key=lambda p: p[1] / p[0])[(len(passes) - 1) // 2]
    return {
        "name": name,
        "metric": "throughput",
        "value": round(rows / ours_s, 1),
        "unit": "rows/s",
        "baseline": baseline,
        "baseline_value": round(rows / bare_s, 1),
        "ratio": round(bare_s / ours_s, 3),
        "params": {
            **params,
            "rows": rows,
            "batch_rows": CHUNK_ROWS,
            "interleaved": "per batch",
            "passes": len(passes),
            "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3),
            "ratios": [round(r, 3) for r in ratios],
            "rows_per_s": [round(rows / o) for o, _ in passes],
            "baseline_rows_per_s": [round(rows / b) for _, b in passes],
        },
    }


# ----------------------------------------------------------------------------------------------- PostgreSQL


def _pg_bare_copy(conn: psycopg.Connection[Any], tuples: Tuples) -> None:
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


def _postgres(trades: list[Trade], passes: int) -> list[dict[str, Any]]:
    name = f"okxc_bench_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    new_rows: list[tuple[float, float]] = []
    replay: list[tuple[float, float]] = []
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

            def bare(chunk: Tuples) -> None:
                _pg_bare_copy(conn, chunk)

            for i in range(passes):
                conn.execute("TRUNCATE trades, bench_bare")
                conn.commit()
                ours_s, bare_s = asyncio.run(
                    _pass(url, trades, tuples, {"copy": bare}, bare_first=i % 2 == 0)
                )
                new_rows.append((ours_s, bare_s["copy"]))
                conn.execute("TRUNCATE bench_bare")  # the writer replays into its filled table
                conn.commit()
                ours_s, bare_s = asyncio.run(
                    _pass(url, trades, tuples, {"copy": bare}, bare_first=i % 2 == 1)
                )
                replay.append((ours_s, bare_s["copy"]))
                stored = conn.execute("SELECT count(*) FROM trades").fetchone()
                assert stored is not None and stored[0] == len(trades), stored
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    baseline = "bare psycopg binary COPY of prepared tuples (not idempotent)"
    return [
        _entry("writer.postgres.new_rows", len(trades), new_rows, baseline, {}),
        _entry("writer.postgres.replay", len(trades), replay, baseline, {"all_rows_duplicates": True}),
    ]


# --------------------------------------------------------------------------------------------------- SQLite


MULTI_ROWS = 1024  # rows per statement of the bare multi-row INSERT (what our sink uses at most)


def _sqlite(trades: list[Trade], passes: int) -> list[dict[str, Any]]:
    results: dict[str, list[tuple[float, float]]] = {"executemany": [], "multirow": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"ours": Path(tmp) / "bench.db", **{side: Path(tmp) / f"{side}.db" for side in results}}
        for target in paths.values():
            engine = make_engine(f"sqlite:///{target}")
            upgrade(engine)
            engine.dispose()
        tuples = [
            (t.exchange, t.inst_id, t.trade_id, t.ts_ms, format_decimal(t.price), format_decimal(t.size),
             t.side.value, t.source, t.recv_ms)
            for t in trades
        ]  # fmt: skip
        head = f"INSERT INTO trades ({', '.join(COLUMNS)}) VALUES "
        marks = f"({', '.join('?' for _ in COLUMNS)})"
        conns = {side: sqlite3.connect(paths[side]) for side in results}
        for conn in conns.values():
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")

        def executemany(chunk: Tuples) -> None:
            with conns["executemany"] as conn:
                conn.executemany(head + marks, chunk)

        def multirow(chunk: Tuples) -> None:
            with conns["multirow"] as conn:
                for start in range(0, len(chunk), MULTI_ROWS):
                    rows = chunk[start : start + MULTI_ROWS]
                    conn.execute(head + ", ".join([marks] * len(rows)), list(chain.from_iterable(rows)))

        try:
            for i in range(passes):
                for target_path in paths.values():
                    cleaner = sqlite3.connect(target_path)
                    with cleaner:
                        cleaner.execute("DELETE FROM trades")
                    cleaner.close()
                bares = {"executemany": executemany, "multirow": multirow}
                ours_s, bare_s = asyncio.run(
                    _pass(f"sqlite:///{paths['ours']}", trades, tuples, bares, bare_first=i % 2 == 0)
                )
                for side in results:
                    results[side].append((ours_s, bare_s[side]))
        finally:
            for conn in conns.values():
                conn.close()
    return [
        _entry(
            "writer.sqlite.new_rows",
            len(trades),
            results["executemany"],
            "bare executemany INSERT of prepared tuples, 50k rows per transaction",
            {},
        ),
        _entry(
            "writer.sqlite.new_rows_vs_multirow",
            len(trades),
            results["multirow"],
            f"bare multi-row INSERT of prepared tuples ({MULTI_ROWS} rows per statement), 50k rows per transaction",
            {"rows_per_statement": MULTI_ROWS},
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows, passes = (50_000, 1) if quick else (500_000, 5)
    trades = make_trades(rows)
    return [*_postgres(trades, passes), *_sqlite(trades, passes)]
