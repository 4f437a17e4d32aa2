"""Re-aggregation throughput over stored trades on PostgreSQL vs a bare ``COPY ... TO STDOUT`` of the same rows.

Entries (trades/s; ``ratio`` = ours / bare COPY, both measured in this run):

1. ``reaggregate.postgres.first``: :func:`~collectors.quality.reaggregate.reaggregate_chunk` over every day
   chunk of 5 million stored BTC-USDT trades (about 5 days, prices on a 0.1 grid, sizes of 8 places) into an
   empty candles table: read the trades (binary COPY of int8 steps), the engine's batch path for the six
   default timeframes, read the stored candles, compare, and upsert every candle through the BatchWriter.
2. ``reaggregate.postgres.unchanged``: the same again once the candles are stored: everything is compared and
   nothing is written (the common case of a check or a repeated run).

The baseline is the barest read of the same rows: ``COPY (SELECT ts, trade_id, price, size, side FROM trades
WHERE <the chunk's pair and range>) TO STDOUT`` (text), bytes drained and dropped: no parsing, no candles, no
writes. Ours and the baseline alternate chunk by chunk (the order flipping each chunk), so both see the same
machine load; a pass's ratio is the baseline's total time over ours. Three passes of the unchanged case run;
its entry reports the median-ratio pass and every ratio in ``params``. ``--quick`` uses 200 000 trades.

PostgreSQL is the local server (``BENCH_PG_ADMIN_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``);
the benchmark creates and drops its own database.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

from collectors.errors import StorageError
from collectors.model import DEFAULT_TIMEFRAMES
from collectors.quality.reaggregate import plan_chunks, reaggregate_chunk
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.types import ms_to_datetime

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_MS = 1_786_579_200_000  # a UTC midnight
SPACING_MS = 86  # 5 million trades span about five days
PAIR = "BTC-USDT"

_FILL = """
INSERT INTO trades (exchange, inst_id, trade_id, ts, price, size, side, source, recv_time)
SELECT 'okx', {pair}, 700000000 + i,
       timestamptz 'epoch' + ({start} + i * {spacing}) * interval '1 millisecond',
       round((630000 + (i * 7919) % 20000)::numeric / 10, 1),
       round(((i * 104729) % 5000000 + 1)::numeric / 100000000, 8),
       CASE WHEN (i * 31) % 7 < 3 THEN 'buy' ELSE 'sell' END, '0',
       timestamptz 'epoch' + ({start} + i * {spacing} + 9) * interval '1 millisecond'
FROM generate_series(0::int8, {n} - 1) AS i
"""
_BARE = (
    "COPY (SELECT ts, trade_id, price, size, side FROM trades WHERE exchange = 'okx' AND inst_id = {pair}"
    " AND ts >= {start} AND ts < {end}) TO STDOUT"
)


def _bare_copy(url: str, start_ms: int, end_ms: int) -> int:
    query = sql.SQL(_BARE).format(
        pair=sql.Literal(PAIR),
        start=sql.Literal(ms_to_datetime(start_ms)),
        end=sql.Literal(ms_to_datetime(end_ms)),
    )
    size = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            size += len(block)
    return size


async def _timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def _pass(url: str, n: int, chunks: list[tuple[int, int]]) -> tuple[float, float, int]:
    """(our seconds, bare seconds, candles written) over every chunk, alternating who goes first."""
    engine = make_engine(url)
    ours = bare = 0.0
    written = 0
    try:
        for index, (start, end) in enumerate(chunks):

            async def mine(start: int = start, end: int = end) -> None:
                nonlocal written
                result = await reaggregate_chunk(
                    engine, exchange="okx", inst_id=PAIR, timeframes=DEFAULT_TIMEFRAMES, start_ms=start,
                    end_ms=end, now_ms=START_MS + 30 * 86_400_000,
                )  # fmt: skip
                written += result.written

            async def baseline(start: int = start, end: int = end) -> None:
                await asyncio.to_thread(_bare_copy, url, start, end)

            if index % 2:
                ours += await _timed(mine)
                bare += await _timed(baseline)
            else:
                bare += await _timed(baseline)
                ours += await _timed(mine)
    finally:
        engine.dispose()
    return ours, bare, written


def _wait_for_server(timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg.connect(ADMIN_URL, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _retried(url: str, n: int, chunks: list[tuple[int, int]]) -> tuple[float, float, int]:
    """A pass, done again when the server restarted under it (the shared machine's outage tests restart
    PostgreSQL): a pass with a restart in it measures the restart, not us."""
    for attempt in range(3):
        try:
            return asyncio.run(_pass(url, n, chunks))
        except (psycopg.OperationalError, StorageError) as exc:
            if attempt == 2 or (isinstance(exc, StorageError) and not exc.transient):
                raise
            print(f"  pass interrupted ({exc}); waiting for the server, then again", file=sys.stderr)
            _wait_for_server()
    raise AssertionError("unreachable")


def _entry(name: str, n: int, runs: list[tuple[float, float, int]], params: dict[str, Any]) -> dict[str, Any]:
    ratios = [bare / ours for ours, bare, _ in runs]
    median = statistics.median_low(ratios)
    ours, bare, written = runs[ratios.index(median)]
    return {
        "name": name,
        "metric": "trades re-aggregated per second",
        "value": n / ours,
        "unit": "trades/s",
        "baseline": "bare COPY TO STDOUT of the same rows",
        "baseline_value": n / bare,
        "ratio": median,
        "params": {
            **params,
            "trades": n,
            "candles_written": written,
            "ratios": [round(r, 3) for r in ratios],
            "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3),
        },
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 200_000 if quick else 5_000_000
    name = f"okxc_bench_reagg_{os.getpid()}"
    base = ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(_FILL).format(pair=sql.Literal(PAIR), start=START_MS, spacing=SPACING_MS, n=n)
            )
            conn.execute("VACUUM ANALYZE trades")
        chunks = plan_chunks(START_MS, START_MS + n * SPACING_MS, DEFAULT_TIMEFRAMES)
        params = {"chunks": len(chunks), "timeframes": list(DEFAULT_TIMEFRAMES)}
        first = _retried(url, n, chunks)
        unchanged = [_retried(url, n, chunks) for _ in range(1 if quick else 3)]
        return [
            _entry("reaggregate.postgres.first", n, [first], params),
            _entry("reaggregate.postgres.unchanged", n, unchanged, params),
        ]
    finally:
        _wait_for_server()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
