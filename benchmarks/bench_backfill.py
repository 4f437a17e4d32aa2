"""Backfill throughput against the REST limit, and the share of OKX's quota it uses.

The simulator runs in its own process (``python -m okx_simulator``) and enforces OKX's 20 history-trades
requests per fixed 2 s window per IP; the database is a fresh PostgreSQL database (created and dropped here).
For each pair the true tape (``/sim/tape``) is stored, then cut down to its first and last trade, so the
backfill has the whole tape to fetch (about 100 trades per request).

Entries (the baseline is the limit itself, the ceiling any client on one IP can reach):

* ``backfill.one.trades_per_s``: one backfill alone (its limiter's whole share) vs 20 requests / 2 s x 100
  trades per page = 1 000 trades/s;
* ``backfill.one.requests_per_window``: history-trades requests per epoch-aligned 2 s window (the
  simulator's windows), mean over the full windows of the run, vs 20; ``params`` hold the max window and the
  simulator's 429 count;
* ``backfill.two.trades_per_s`` / ``backfill.two.requests_per_window``: two backfill processes at once (two
  limiters with half the budget each, as ``--rest-share 0.5`` or the membership GCL of two flow runs gives
  them), the two together;
* ``backfill.beside_idle_live.*``: one backfill that shares the budget through the membership GCL (a
  ``prefect_test_harness`` server in this process) while a live collector's limiter is a member on demand
  and idle (as a live run between catch-ups): the backfill should keep the whole share.

Requests are timed on the client (httpx request hook, wall clock, as the simulator's windows are); every
request of the run counts (planning, pages, retries). ``trades_per_s`` is over the whole run (planning,
fetching, coverage, candles); ``params.fetch_trades_per_s`` over the span of its history-trades requests only.
A run checks that the stored tape equals /sim/tape. ``BENCH_CHUNK`` sets the chunk size (trade ids, 10000).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from collectors.backfill import BackfillSettings, Request, run_backfill
from collectors.backfill.work import Backfill
from collectors.exchanges.okx.limits import HISTORY_TRADES, OKX_REST_QUOTAS
from collectors.exchanges.okx.rest import OkxRestClient
from collectors.exchanges.okx.rows import build_trade
from collectors.model import Trade
from collectors.ratelimit import RateLimiter
from collectors.storage import reads
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.schema import TradeRow
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parents[1]
WINDOW_MS = OKX_REST_QUOTAS[HISTORY_TRADES].window_ms
LIMIT = OKX_REST_QUOTAS[HISTORY_TRADES].limit
PAGE = 100
CHUNK = int(os.environ.get("BENCH_CHUNK", "10000"))
PAIRS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")


@contextlib.contextmanager
def _simulator(history_hours: float, trade_rate: float) -> Iterator[str]:
    command = [
        sys.executable, "-m", "okx_simulator", "--port", "0", "--seed", "3", "--pairs", ",".join(PAIRS),
        "--history-hours", str(history_hours), "--trade-rate", str(trade_rate),
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        yield str(urls["rest"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _database() -> Iterator[str]:
    name = f"okxc_bench_backfill_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def _tape(rest_url: str, inst_id: str) -> list[Trade]:
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.get(f"{rest_url}/sim/tape", params={"instId": inst_id})
    rows = [json.loads(line) for line in response.text.splitlines() if line]
    return [build_trade(row, inst_id, int(row["ts"]), 1)[0] for row in rows]


async def _stats(rest_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        stats: dict[str, Any] = (await http.get(f"{rest_url}/sim/stats")).json()
    return stats


async def _cut_tape(db: Engine, tape: list[Trade]) -> None:
    """Store the tape, then delete everything but its two ends."""
    async with BatchWriter(open_sink(db)) as writer:
        await writer.put_many(tape)
    with Session(db) as session, session.begin():
        session.execute(
            delete(TradeRow).where(
                TradeRow.inst_id == tape[0].inst_id,
                TradeRow.trade_id > tape[0].trade_id,
                TradeRow.trade_id < tape[-1].trade_id,
            )
        )


async def _one_process(
    db: Engine, rest_url: str, inst_id: str, limiter: RateLimiter, sent: list[tuple[int, str]]
) -> int:
    """One backfill process (its own limiter and client); returns the trades it stored."""

    async def hook(request: httpx.Request) -> None:
        sent.append((time.time_ns() // 1_000_000, request.url.path))

    settings = BackfillSettings(default_timeframes=("1m",), exchange_candles=False, chunk_ids=CHUNK)
    async with (
        httpx.AsyncClient(event_hooks={"request": [hook]}) as http,
        OkxRestClient(base_url=rest_url, limiter=limiter, http=http) as rest,
        BatchWriter(open_sink(db)) as writer,
    ):
        bf = Backfill(db=db, rest=rest, writer=writer, settings=settings)
        summary = await run_backfill(bf, Request(pairs=(inst_id,), mode="gaps"))
    assert summary.ok, summary
    return summary.trades


def _windows(sent: list[tuple[int, str]]) -> tuple[float, int]:
    """Mean and max history-trades requests per epoch-aligned window (mean over the full windows only)."""
    times = [t for t, path in sent if path == HISTORY_TRADES]
    counts = Counter(t // WINDOW_MS for t in times)
    first, last = min(counts), max(counts)
    full = [counts.get(w, 0) for w in range(first + 1, last)]
    return (sum(full) / len(full) if full else float(max(counts.values()))), max(counts.values())


async def _beside_idle_live(db: Engine, rest_url: str, inst_id: str, sent: list[tuple[int, str]]) -> int:
    """One backfill member of the budget GCL beside an idle on-demand live member (a Prefect server is up)."""
    from collectors.live.app import process_limiter
    from tasks.rest_budget import ensure_budget_limit, rest_budget

    name = "bench-okx-rest-members"
    await ensure_budget_limit(name)
    limiter = RateLimiter(quotas=OKX_REST_QUOTAS)
    async with (
        rest_budget(process_limiter(), name=name, on_demand=True),
        rest_budget(limiter, name=name) as member,
    ):
        stored = await _one_process(db, rest_url, inst_id, limiter, sent)
        assert member.members == 1, member  # the idle live run held no slot
    return stored


async def _scenario(
    db: Engine, rest_url: str, pairs: tuple[str, ...], share: float, *, idle_live: bool = False
) -> dict[str, Any]:
    tapes = {p: await _tape(rest_url, p) for p in pairs}
    for tape in tapes.values():
        await _cut_tape(db, tape)
    before = (await _stats(rest_url))["http_429"]
    sent: list[tuple[int, str]] = []
    started = time.perf_counter()
    if idle_live:
        stored = [await _beside_idle_live(db, rest_url, p, sent) for p in pairs]
    else:
        stored = await asyncio.gather(
            *(
                _one_process(db, rest_url, p, RateLimiter(quotas=OKX_REST_QUOTAS, share=share), sent)
                for p in pairs
            )
        )
    elapsed = time.perf_counter() - started
    too_many = (await _stats(rest_url))["http_429"] - before
    for inst_id, tape in tapes.items():
        held = reads.trade_values(db, exchange="okx", inst_id=inst_id)
        truth = [(t.trade_id, t.ts_ms, str(t.price), str(t.size), t.side.value) for t in tape]
        assert held == truth, f"{inst_id}: stored tape differs from /sim/tape"
    mean, peak = _windows(sent)
    pages = [t for t, path in sent if path == HISTORY_TRADES]
    return {
        "fetch_trades_per_s": sum(stored) * 1000 / max(1, pages[-1] - pages[0]),
        "trades": sum(stored),
        "seconds": elapsed,
        "trades_per_s": sum(stored) / elapsed,
        "requests": len(sent),
        "mean_per_window": mean,
        "max_per_window": peak,
        "http_429": too_many,
    }


def _entries(tag: str, result: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    ceiling = LIMIT * PAGE * 1000 / WINDOW_MS
    facts = {**params, **{k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}}
    return [
        {
            "name": f"backfill.{tag}.trades_per_s",
            "metric": "throughput",
            "value": result["trades_per_s"],
            "unit": "trades/s",
            "baseline": f"OKX limit {LIMIT} req/{WINDOW_MS // 1000} s x {PAGE} trades/page",
            "baseline_value": ceiling,
            "ratio": result["trades_per_s"] / ceiling,
            "params": facts,
        },
        {
            "name": f"backfill.{tag}.requests_per_window",
            "metric": "quota_share",
            "value": result["mean_per_window"],
            "unit": "req/2s",
            "baseline": f"OKX limit {LIMIT} req/{WINDOW_MS // 1000} s",
            "baseline_value": float(LIMIT),
            "ratio": result["mean_per_window"] / LIMIT,
            "params": facts,
        },
    ]


@contextlib.contextmanager
def _prefect() -> Iterator[None]:
    """A throwaway Prefect server (its own PREFECT_HOME) for the membership GCL."""
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        saved = os.environ.get("PREFECT_HOME")
        os.environ["PREFECT_HOME"] = home
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        from prefect.testing.utilities import prefect_test_harness

        try:
            with prefect_test_harness(server_startup_timeout=120):
                yield
        finally:
            if saved is None:
                os.environ.pop("PREFECT_HOME", None)
            else:
                os.environ["PREFECT_HOME"] = saved


def run(quick: bool = False) -> list[dict[str, Any]]:
    history_hours, rate = (0.1, 5.0) if quick else (0.5, 12.0)
    entries: list[dict[str, Any]] = []
    with _simulator(history_hours, rate) as rest_url, _database() as url:
        db = make_engine(url)
        upgrade(db)
        try:
            params = {"history_hours": history_hours, "trade_rate": rate, "headroom": 0.9, "chunk_ids": CHUNK}
            one = asyncio.run(_scenario(db, rest_url, PAIRS[:1], share=1.0))
            entries += _entries("one", one, {**params, "processes": 1, "share": 1.0})
            two = asyncio.run(_scenario(db, rest_url, PAIRS[1:], share=0.5))
            entries += _entries("two", two, {**params, "processes": 2, "share": 0.5})
            with _prefect():
                idle = asyncio.run(_scenario(db, rest_url, PAIRS[:1], share=1.0, idle_live=True))
            entries += _entries("beside_idle_live", idle, {**params, "processes": 2, "share": "on demand"})
        finally:
            db.dispose()
    return entries
