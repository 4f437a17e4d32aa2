"""End to end: the simulator's steady firehose -> one collector process -> the database, beside the barest pipeline.

Each phase starts its own simulator process (``python -m okx_simulator --firehose-rate R --pairs <nine pairs>
--no-rate-limits``) and one child process that records it into a fresh database:

* ``ours``: ``run_collectors`` (collectors/live/app.py) on the real clients, ``trades`` (trades-all, every fill)
  on the nine pairs, candles in the default six timeframes, the raw archive ``all``, the default batching
  (``batching``: 5 000 rows or 0.25 s; ``--flush-s`` sets the interval), into a freshly migrated database;
* ``bare``: one aiohttp WebSocket on /ws/v5/business subscribed to trades-all for the nine pairs, ``orjson``,
  ``Decimal``, rows batched by the same rule (and the same ``--flush-s``) and written by one thread: a psycopg binary
  ``COPY`` per batch on PostgreSQL, ``executemany`` per batch on SQLite; into the same migrated ``trades`` table
  (same key and index). No validation, no candles, no raw archive, no gap handling.

This process is the observer. After the first committed row and a warm-up it measures, over a window:

* ``value``: trades committed per second (rows the poller saw appear during the window / its length);
* CPU per trade: the child's user + system CPU (/proc/<pid>/stat, every thread) over the window / trades committed
  in it; ``ratio`` = bare CPU per trade / ours (1.0 = as cheap as the bare pipeline; the goal is >= 0.5);
* lag: a poller reads, every ``POLL_S``, each pair's rows above the last id it saw; a trade's lag is the wall time
  of the poll that first saw it minus its ``ts`` (the simulator pushes a trade when its clock reaches ``ts``), so
  a lag includes up to ``POLL_S`` of poll granularity (half of it on average); p50/p99 over the trades whose ts
  is in the window (rows committed after the window are awaited for up to ``DRAIN_S``);
* RSS of the child (/proc/<pid>/status VmRSS) at the window's start and end, and the largest sample;
* ``missing``: ids of ``GET /sim/tape?from=t0&to=t1`` not in ``trades`` (the collector is stopped with SIGTERM
  first, so what it buffered is flushed), ``extra`` the other way, ``duplicates`` rows beyond one per id;
* load: the load average, the machine's busy share (/proc/stat) and the simulator's CPU share over the window;
  on PostgreSQL also the server backends' CPU per trade (pg_stat_activity pids of the database).

Entries ``e2e.<postgres|sqlite>.<rate>``: 20 000 trades/s (issue 9's rate) and 5 000 trades/s (a rate the
collector sustains on the shared 2-core machine these figures come from, so its CPU per trade is not inflated by
the reconnects and REST catch-up of an overloaded run); ``--quick`` runs 5 000/s for 8 s only. The children, the simulators, the databases and the files are
removed on every exit path. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from collectors.config import BatchingConfig
from collectors.exchanges.okx.spec import DEFAULT_PAIRS as PAIRS  # the nine default pairs: one home

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RATES = (20_000, 5_000)  # issue 9's rate, and one this collector sustains on a shared 2-core machine
POLL_S = 0.1
DRAIN_S = 15.0
FIRST_ROW_S = 60.0
# the bare pipeline batches by the collector's rule and defaults (batching.max_batch_rows, flush_interval_s)
BATCH_ROWS: int = BatchingConfig.model_fields["max_batch_rows"].default
BATCH_S: float = BatchingConfig.model_fields["flush_interval_s"].default
COLUMNS = ("exchange", "inst_id", "trade_id", "ts", "price", "size", "side", "source", "recv_time")
PG_TYPES = ("text", "text", "int8", "timestamptz", "numeric", "numeric", "text", "text", "timestamptz")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------------------------- /proc probes


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


# --------------------------------------------------------------------------------------------- the children


def _child_ours(url: str, urls: dict[str, str], flush_s: float) -> None:
    from collectors.config import parse_config
    from collectors.live.app import Endpoints, run_collectors
    from collectors.storage.engine import make_engine

    config = parse_config(
        {
            "exchanges": {"okx": {"channels": ["trades"], "pairs": list(PAIRS)}},
            "live": {"raw_archive": "all", "trades_mode": "every_fill"},
            "batching": {"flush_interval_s": flush_s},
        }
    )
    endpoints = Endpoints(
        rest_url=urls["rest"], ws_public_url=urls["ws_public"], ws_business_url=urls["ws_business"]
    )
    engine = make_engine(url)

    async def main() -> None:
        task = asyncio.create_task(
            run_collectors(config=config, db=engine, endpoints=endpoints, collector_id="bench-e2e")
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            result = await task
            print(
                json.dumps({"written_rows": result.written_rows, "dead_rows": result.dead_rows}), flush=True
            )

    asyncio.run(main())
    engine.dispose()


Row = tuple[Any, ...]


def _pg_writer(url: str, batches: queue.Queue[list[Row] | None]) -> None:
    copy_sql = sql.SQL("COPY trades ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with psycopg.connect(url) as conn:
        while (batch := batches.get()) is not None:
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.set_types(list(PG_TYPES))
                for row in batch:
                    copy.write_row(row)
            conn.commit()


def _sqlite_writer(path: str, batches: queue.Queue[list[Row] | None]) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    insert = f"INSERT INTO trades ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    while (batch := batches.get()) is not None:
        with conn:
            conn.executemany(insert, batch)
    conn.close()


def _child_bare(url: str, urls: dict[str, str], flush_s: float) -> None:
    import aiohttp

    sqlite = url.startswith("sqlite")
    batches: queue.Queue[list[Row] | None] = queue.Queue()
    target = _sqlite_writer if sqlite else _pg_writer
    thread = threading.Thread(target=target, args=(url.split("///", 1)[1] if sqlite else url, batches))
    thread.start()

    def ms(value: int) -> Any:
        return value if sqlite else _EPOCH + timedelta(milliseconds=value)

    def dec(text: str) -> Any:
        return str(Decimal(text)) if sqlite else Decimal(text)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        args = [{"channel": "trades-all", "instId": p} for p in PAIRS]
        rows: list[Row] = []
        flushed = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(urls["ws_business"], max_msg_size=0, autoping=True) as ws,
        ):
            await ws.send_str(orjson.dumps({"op": "subscribe", "args": args}).decode())
            while not stop.is_set():
                if not thread.is_alive():
                    raise RuntimeError("the writer thread died")
                try:
                    msg = await ws.receive(timeout=0.2)
                except TimeoutError:
                    msg = None
                if msg is not None:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = orjson.loads(msg.data).get("data")
                    if data:
                        recv = ms(_now_ms())
                        for t in data:
                            rows.append(
                                ("okx", t["instId"], int(t["tradeId"]), ms(int(t["ts"])), dec(t["px"]),
                                 dec(t["sz"]), t["side"], t.get("source"), recv)
                            )  # fmt: skip
                if len(rows) >= BATCH_ROWS or (rows and time.monotonic() - flushed >= flush_s):
                    batches.put(rows)
                    rows = []
                    flushed = time.monotonic()
        if rows:
            batches.put(rows)

    try:
        asyncio.run(main())
    finally:
        batches.put(None)
        thread.join()


def _child(argv: list[str]) -> None:
    kind, url, urls, flush_s = argv[0], argv[1], json.loads(argv[2]), float(argv[3])
    (_child_ours if kind == "ours" else _child_bare)(url, urls, flush_s)


# ------------------------------------------------------------------------------------------ the observer


@dataclass
class _Db:
    """A fresh migrated database of one phase, and the observer's reads of it."""

    backend: str
    name: str
    url: str = ""
    path: Path | None = None
    pg: psycopg.Connection[Any] | None = None
    lite: sqlite3.Connection | None = None
    last_id: dict[str, int] = field(default_factory=dict)
    last_ts: dict[str, int] = field(default_factory=dict)

    def create(self, workdir: Path) -> None:
        from collectors.storage.engine import make_engine
        from collectors.storage.migrate import upgrade

        if self.backend == "postgres":
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                )
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            self.url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{self.name}"
        else:
            self.path = workdir / f"{self.name}.sqlite"
            self._remove_files()
            self.url = f"sqlite:///{self.path}"
        engine = make_engine(self.url)
        upgrade(engine)
        engine.dispose()
        if self.pg is None and self.backend == "postgres":
            self.pg = psycopg.connect(self.url, autocommit=True)
        elif self.backend == "sqlite":
            self.lite = sqlite3.connect(str(self.path), isolation_level=None)
            self.lite.execute("PRAGMA busy_timeout=30000")

    def _remove_files(self) -> None:
        if self.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def drop(self) -> None:
        if self.pg is not None:
            self.pg.close()
        if self.lite is not None:
            self.lite.close()
        self._remove_files()
        if self.backend == "postgres" and self.url:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            try:
                with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                    admin.execute(drop)
            except (
                psycopg.OperationalError
            ) as exc:  # the server is gone: say what is left, keep the first error
                print(f"bench_e2e: could not drop database {self.name}: {exc}", file=sys.stderr)

    def _rows(self, query_pg: str, query_lite: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self.pg is not None:
            return self.pg.execute(query_pg, params).fetchall()
        assert self.lite is not None
        return self.lite.execute(query_lite, params).fetchall()

    def new_rows(self) -> list[tuple[str, int]]:
        """(inst_id, ts ms) of the rows committed since the last call, per pair above the last id seen."""
        out: list[tuple[str, int]] = []
        for inst in PAIRS:
            rows = self._rows(
                "SELECT trade_id, (extract(epoch FROM ts) * 1000)::int8 FROM trades "
                "WHERE exchange = 'okx' AND inst_id = %s AND trade_id > %s ORDER BY trade_id",
                "SELECT trade_id, ts FROM trades WHERE exchange = 'okx' AND inst_id = ? AND trade_id > ? "
                "ORDER BY trade_id",
                (inst, self.last_id.get(inst, -1)),
            )
            if rows:
                self.last_id[inst] = rows[-1][0]
                self.last_ts[inst] = int(rows[-1][1])
                out.extend((inst, int(ts)) for _, ts in rows)
        return out

    def ids_between(self, inst: str, t0: int, t1: int) -> list[int]:
        rows = self._rows(
            "SELECT trade_id FROM trades WHERE exchange = 'okx' AND inst_id = %s "
            "AND ts >= 'epoch'::timestamptz + %s * interval '1 millisecond' "
            "AND ts < 'epoch'::timestamptz + %s * interval '1 millisecond'",
            "SELECT trade_id FROM trades WHERE exchange = 'okx' AND inst_id = ? AND ts >= ? AND ts < ?",
            (inst, t0, t1),
        )
        return [r[0] for r in rows]

    def backend_pids(self) -> list[int]:
        if self.pg is None:
            return []
        rows = self.pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.name,)
        ).fetchall()
        return [r[0] for r in rows]


def _backends_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = _cpu_s(pid)
    return out


@contextlib.contextmanager
def _process(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    """A child in its own session; terminated (then killed) with its group on every exit path."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _stop(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> str:
    """SIGTERM the child and wait for its clean exit (it flushes); returns what it printed."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout_s)
    return out


def _tape_ids(control_url: str, inst: str, t0: int, t1: int) -> list[int]:
    query = f"{control_url}/tape?instId={inst}&from={t0}&to={t1}"
    with urllib.request.urlopen(query, timeout=120) as response:
        return [int(orjson.loads(line)["tradeId"]) for line in response.read().splitlines() if line]


def _py_spy(pid: int, window_s: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy (``PY_SPY``, else on PATH) sampling ``pid`` over the window, collapsed stacks to ``out``.

    ``--nonblocking``: the child is not paused per sample, so its CPU figures stay comparable (a little)."""
    exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("--profile needs py-spy: set PY_SPY or put it on PATH (pip install py-spy)")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [exe, "record", "--pid", str(pid), "--duration", str(int(window_s)), "--rate", "100"]
    command += ["--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _quantile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def _phase(
    kind: str,
    backend: str,
    rate: int,
    warmup_s: float,
    window_s: float,
    workdir: Path,
    profile: Path | None = None,
    flush_s: float = BATCH_S,
) -> dict[str, Any]:
    db = _Db(backend=backend, name=f"okxc_e2e_{os.getpid()}_{kind}_{rate}")
    sim_cmd = [sys.executable, "-m", "okx_simulator", "--firehose-rate", str(rate), "--history-hours", "0.1"]
    sim_cmd += ["--pairs", ",".join(PAIRS), "--no-rate-limits"]
    try:
        db.create(workdir)
        with _process(sim_cmd) as sim:
            assert sim.stdout is not None
            urls = json.loads(sim.stdout.readline())
            child_cmd = [
                sys.executable,
                "-m",
                "benchmarks.bench_e2e",
                "--child",
                kind,
                db.url,
                json.dumps(urls),
                str(flush_s),
            ]
            with _process(child_cmd) as child:
                out = None if profile is None else profile / f"{kind}.{backend}.{rate}.collapsed"
                return _observe(db, sim, child, urls, warmup_s, window_s, out)
    finally:
        db.drop()


def _observe(
    db: _Db,
    sim: subprocess.Popen[str],
    child: subprocess.Popen[str],
    urls: dict[str, str],
    warmup_s: float,
    window_s: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + FIRST_ROW_S
    while not db.new_rows():
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no row committed (child exit code {child.poll()})")
        time.sleep(POLL_S)
    first_row = time.monotonic()
    while time.monotonic() - first_row < warmup_s:
        db.new_rows()
        time.sleep(POLL_S)

    def marks() -> dict[str, Any]:
        pids = db.backend_pids()
        return {
            "ms": _now_ms(),
            "cpu": _cpu_s(child.pid),
            "sim_cpu": _cpu_s(sim.pid),
            "rss": _rss_mb(child.pid),
            "machine": _machine_ticks(),
            "load": os.getloadavg()[0],
            "pg": _backends_cpu(pids),
        }

    db.new_rows()
    start = marks()
    spy = None if profile is None else _py_spy(child.pid, window_s, profile)
    t0 = start["ms"]
    t1 = t0 + int(window_s * 1000)
    committed = 0
    lags: list[int] = []
    rss_max = start["rss"]
    end: dict[str, Any] | None = None
    next_poll = time.monotonic()
    drain_until = time.monotonic() + window_s + DRAIN_S
    while True:
        next_poll += POLL_S
        time.sleep(max(0.0, next_poll - time.monotonic()))
        if child.poll() is not None:
            raise RuntimeError(f"the child exited during the window (code {child.returncode})")
        rows = db.new_rows()
        seen = _now_ms()
        if end is None:
            committed += len(rows)
            rss_max = max(rss_max, _rss_mb(child.pid))
        lags.extend(seen - ts for _, ts in rows if t0 <= ts < t1)
        if end is None and seen >= t1:
            end = marks()
        if end is not None and (
            all(db.last_ts.get(p, 0) >= t1 for p in PAIRS) or time.monotonic() > drain_until
        ):
            break
    assert end is not None
    drained_in_s = (_now_ms() - t1) / 1000
    caught_up = all(db.last_ts.get(p, 0) >= t1 for p in PAIRS)
    behind_ms = max(t1 - min(db.last_ts.get(p, t0) for p in PAIRS), 0)
    if spy is not None:
        spy.wait(timeout=60)
    printed = _stop(child)
    seconds = (end["ms"] - t0) / 1000
    cpu = end["cpu"] - start["cpu"]
    busy0, total0 = start["machine"]
    busy1, total1 = end["machine"]
    pg_cpu = sum(end["pg"][p] - start["pg"][p] for p in end["pg"] if p in start["pg"])

    missing = extra = duplicates = 0
    tape_total = 0
    for inst in PAIRS:
        tape = set(_tape_ids(urls["control"], inst, t0, t1))
        ids = db.ids_between(inst, t0, t1)
        unique = set(ids)
        tape_total += len(tape)
        duplicates += len(ids) - len(unique)
        missing += len(tape - unique)
        extra += len(unique - tape)
    lags.sort()
    result: dict[str, Any] = {
        "trades_per_s": committed / seconds,
        "cpu_us_per_trade": cpu / max(committed, 1) * 1e6,
        "cpu_share": cpu / seconds,
        "p50_lag_ms": _quantile(lags, 0.50),
        "p99_lag_ms": _quantile(lags, 0.99),
        "max_lag_ms": float(lags[-1]) if lags else float("nan"),
        "lag_samples": len(lags),
        "rss_start_mb": start["rss"],
        "rss_end_mb": end["rss"],
        "rss_max_mb": rss_max,
        "missing": missing,
        "extra": extra,
        "duplicates": duplicates,
        "tape_trades": tape_total,
        "committed": committed,
        "window_s": seconds,
        "drained_in_s": drained_in_s,
        "caught_up": caught_up,
        "behind_at_stop_ms": behind_ms,
        "lag_unobserved": tape_total - len(lags),
        "sim_cpu_share": (end["sim_cpu"] - start["sim_cpu"]) / seconds,
        "machine_busy_share": (busy1 - busy0) / max(total1 - total0, 1),
        "loadavg_1m_start": start["load"],
        "loadavg_1m_end": end["load"],
    }
    if db.backend == "postgres":
        result["pg_backend_cpu_us_per_trade"] = pg_cpu / max(committed, 1) * 1e6
    if printed.strip():
        with contextlib.suppress(ValueError):
            result["child_report"] = json.loads(printed.strip().splitlines()[-1])
    return result


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if value != value else round(value, 3)  # NaN (no sample) -> null: valid JSON
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _entry(backend: str, rate: int, ours: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    baseline = (
        "bare pipeline: one aiohttp WebSocket, orjson, Decimal, "
        + ("binary COPY per batch" if backend == "postgres" else "executemany per batch")
        + " (no validation, no candles, no raw archive); ratio = its CPU per trade / ours"
    )
    return {
        "name": f"e2e.{backend}.{rate}",
        "metric": "trades committed per second (firehose, nine pairs, one collector process)",
        "value": round(ours["trades_per_s"], 1),
        "unit": "trades/s",
        "baseline": baseline,
        "baseline_value": round(bare["trades_per_s"], 1),
        "ratio": round(bare["cpu_us_per_trade"] / ours["cpu_us_per_trade"], 3),
        "params": {
            "offered_rate": rate,
            "pairs": len(PAIRS),
            "missing": ours["missing"],
            "duplicates": ours["duplicates"],
            "p50_lag_ms": _round(ours["p50_lag_ms"]),
            "p99_lag_ms": _round(ours["p99_lag_ms"]),
            "rss_start_mb": round(ours["rss_start_mb"], 1),
            "rss_end_mb": round(ours["rss_end_mb"], 1),
            "cpu_us_per_trade": round(ours["cpu_us_per_trade"], 2),
            "bare_cpu_us_per_trade": round(bare["cpu_us_per_trade"], 2),
            "poll_s": POLL_S,
            "ours": _round(ours),
            "bare": _round(bare),
        },
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    rates, warmup_s, window_s = ((5_000,), 3.0, 8.0) if quick else (RATES, 10.0, 60.0)
    workdir = Path(tempfile.mkdtemp(prefix="okxc_e2e_"))
    entries = []
    try:
        for backend in ("postgres", "sqlite"):
            for rate in rates:
                ours = _phase("ours", backend, rate, warmup_s, window_s, workdir)
                bare = _phase("bare", backend, rate, warmup_s, window_s, workdir)
                entries.append(_entry(backend, rate, ours, bare))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return entries


def _core_cost(frames: int) -> dict[str, float]:
    """CPU per single-trade push of one pair core in this process (no sockets, no writer): ``on_event`` of
    parsed trades-all pushes (the recorded real row, ids and times moved) and a tick every 450 pushes (20 000
    pushes/s over nine pairs and a 0.2 s tick), with the engine as the live path builds it; best of 3."""
    from collectors.candles import CandleEngine, EngineConfig
    from collectors.exchanges.okx.parse import parse_frame
    from collectors.live.archive import Archive
    from collectors.live.core import CoreSettings, PairCore
    from tests.live.live_frames import T0, trades_all_text

    texts = [trades_all_text(1_000 + i, T0 + 2 * i) for i in range(frames)]
    best = float("inf")
    for _ in range(3):
        engine = CandleEngine(exchange="okx", inst_id="BTC-USDT", config=EngineConfig(emit_updates=False))
        archive = Archive(
            collector_id="c", exchange="okx", mode="all", trade_channels=frozenset({"trades-all"})
        )
        core = PairCore(
            exchange="okx",
            inst_id="BTC-USDT",
            engine=engine,
            archive=archive,
            settings=CoreSettings(),
            now_ms=T0,
        )
        events = [(parse_frame(t, recv_ms=T0 + 2 * i + 5), t, T0 + 2 * i + 5) for i, t in enumerate(texts)]
        started = time.process_time()
        for i, (event, text, now) in enumerate(events):
            core.on_event(event, now, text)
            if i % 450 == 449:
                core.tick(now)
                core.drain()
        core.tick(T0 + 2 * frames + 5)
        core.drain()
        best = min(best, time.process_time() - started)
    return {"frames": frames, "core_cpu_us_per_push": round(best / frames * 1e6, 2)}


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_e2e",
        description="One e2e entry (ours beside the bare pipeline) for one backend and rate; prints its JSON. "
        "The full set: python -m benchmarks --only e2e.",
    )
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--rate", type=int, default=RATES[0], help="offered trades/s over the nine pairs")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after the first committed row")
    parser.add_argument("--window", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--only", choices=("ours", "bare"), help="run one pipeline (no ratio)")
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy collapsed stacks of each child over the window"
    )
    parser.add_argument(
        "--flush-s",
        type=float,
        default=BATCH_S,
        help=f"both pipelines' flush interval (batching.flush_interval_s; default {BATCH_S})",
    )
    parser.add_argument(
        "--core", type=int, metavar="N", help="only the pair core in this process: CPU per push over N pushes"
    )
    args = parser.parse_args(argv)
    if args.core:
        print(json.dumps(_core_cost(args.core)))
        return
    workdir = Path(tempfile.mkdtemp(prefix="okxc_e2e_"))
    try:
        phases = {}
        for kind in ("ours", "bare") if args.only is None else (args.only,):
            phases[kind] = _phase(
                kind, args.backend, args.rate, args.warmup, args.window, workdir, args.profile, args.flush_s
            )
            print(json.dumps({kind: _round(phases[kind])}), flush=True)
        if len(phases) == 2:
            print(json.dumps(_entry(args.backend, args.rate, phases["ours"], phases["bare"])))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        _main(sys.argv[1:])
