"""``make bench-peers``: our collector, ccxt.pro and cryptofeed record the same pairs through one fault timeline.

One simulator process (``python -m okx_simulator``: two pairs, ~10 fills/s each) and three recorders, each a
separate process writing what it received:

* ``ours``: ``okx-collector collect`` on its own SQLite database (``data/peers/run/ours.db``), the shipped
  channels (trades = ``trades-all``, books5, tickers, candles) for the two pairs; its trades are read back from the
  database after a clean stop (SIGTERM: everything buffered is written first);
* ``ccxt``: ``benchmarks/peers/rec_ccxt.py`` in ``data/peers/ccxt-venv`` (ccxt.pro ``watch_trades``);
* ``cryptofeed``: ``benchmarks/peers/rec_cryptofeed.py`` in ``data/peers/cryptofeed-venv`` (Python 3.13), its
  WebSocket through a TLS byte pipe (``tls_pipe.py``; cryptofeed takes only ``wss://``).

The venvs are made by ``make bench-peers`` from the pinned ``requirements-<peer>.txt``; a peer whose venv is
missing is reported as skipped (with the reason) and the others run. After a warm-up (every recorder has
received a trade), the timeline: a baseline, then each fault of :func:`timeline` injected on every connection
(``POST /sim/faults``) with ``--window`` seconds after it (the stall: its length plus the window), then until
every recorder reads live trades again. Each fault's window opens ``WINDOW_LEAD_MS`` before it is posted. The
trades of the span are scored against ``GET /sim/tape`` per fault window (``score.py``), and the stall's detection time is
each recorder's first disconnect or error after the stall began. Writes ``benchmarks/results/peers.json`` and
``peers.md`` (``--quick``: ``peers-quick.*``, a 10 s stall and 8 s windows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.peers.score import (
    Counts,
    Fill,
    Received,
    counts_by_recorder,
    detect_s,
    score,
    windows_from_schedule,
)
from benchmarks.peers.tls_pipe import TlsPipe, make_certificate
from collectors.storage.engine import make_engine
from collectors.storage.schema import TradeRow

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PEERS_DIR = ROOT / "data" / "peers"
RESULTS = ROOT / "benchmarks" / "results"
PAIRS = ("BTC-USDT", "ETH-USDT")
TRADE_RATE = 10.0  # fills per second per pair: the simulator's steady firehose (no quiet or burst minutes)
SEED = 11
WARMUP_LIMIT_S = 90.0
RECOVERY_LIMIT_S = 120.0  # the longest a window is stretched for a recorder to read live trades again
DRAIN_S = 10.0  # after the last window, before the stop: lets a recorder that catches up finish
# a window opens this long before its fault is posted: the simulator pushes at 100 ms ticks, so the fills of the
# last moments before a fault are still on their way when it strikes, and what it costs belongs to it
WINDOW_LEAD_MS = 500
SETTLE_S = 3.0  # after every recorder reads live trades again, before the next fault
STOP_LIMIT_S = 60.0


@dataclass(frozen=True)
class Fault:
    name: str  # the window's name in the results
    bodies: tuple[dict[str, Any], ...]  # POST /sim/faults, in this order
    lasts_s: float = 0.0  # how long the fault itself lasts (added to the window)


def timeline(stall_s: float) -> list[Fault]:
    """The one fault timeline: every kind issue 9 names, each on every connection."""
    return [
        Fault("drop (abrupt, no close frame)", ({"kind": "drop"},)),
        Fault("close 1000", ({"kind": "close", "code": 1000, "reason": "bench"},)),
        Fault("close 1011", ({"kind": "close", "code": 1011, "reason": "internal error"},)),
        # refusing new connections alone disconnects nobody: the drop comes right after the refuse
        Fault("drop + refuse 5 s", ({"kind": "refuse", "seconds": 5}, {"kind": "drop"}), 5),
        Fault(f"stall {stall_s:g} s", ({"kind": "stall", "seconds": stall_s},), stall_s),
        Fault("4004 idle close", ({"kind": "close", "code": 4004, "reason": "No data received in 30s."},)),
        Fault("64008 notice (close 5 s later)", ({"kind": "notice", "seconds": 5},), 5),
        Fault("malformed 5 s (30 %, all variants)", ({"kind": "malformed", "rate": 0.3, "seconds": 5},), 5),
        Fault("duplicate 10 s (50 %)", ({"kind": "duplicate", "rate": 0.5, "seconds": 10},), 10),
        Fault("reorder 10 s (50 %)", ({"kind": "reorder", "rate": 0.5, "seconds": 10},), 10),
    ]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _http(url: str, body: dict[str, Any] | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload: bytes = response.read()
        return payload


def _version(venv_python: Path, package: str) -> str:
    out = subprocess.run(
        [str(venv_python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@dataclass
class Recorder:
    name: str
    version: str
    channel: str
    process: subprocess.Popen[bytes] | None = None
    skipped: str | None = None


def _start(cmd: Sequence[str], *, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(list(cmd), stdout=err, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
    return process.returncode


def _trade_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, str | int) and str(value).isdigit() else 1


def peer_rows(path: Path) -> tuple[list[Received], list[int]]:
    """Trades and event times of a peer's JSONL file (an id that is not a number is nowhere to score: skipped)."""
    rows: list[Received] = []
    events: list[int] = []
    for line in _trade_lines(path):
        if line["kind"] == "event":
            events.append(int(line["recv_ms"]))
        elif line["kind"] == "trade" and str(line.get("id") or "").isdigit() and line.get("inst"):
            ts = line.get("ts")
            rows.append(
                Received(
                    inst=str(line["inst"]),
                    trade_id=int(line["id"]),
                    px=line.get("px"),
                    sz=line.get("sz"),
                    side=line.get("side"),
                    ts=int(ts) if isinstance(ts, int | float) else None,
                    count=_count(line.get("count")),
                )
            )
    return rows, events


# the time stamp of a log line: ISO with a Z, or logging's default asctime (local time: the child runs with TZ=UTC)
_ENDED = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)[.,](\d{3})Z? .*connection \d+ ended")


def our_events(log: Path) -> list[int]:
    """When our collector declared a connection dead (its ``connection N ended`` lines)."""
    events = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _ENDED.match(line)
        if match:
            at = datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=UTC
            )
            events.append(int(at.timestamp()) * 1000 + int(match.group(3)))
    return events


def our_rows(db: Path) -> list[Received]:
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(
                    TradeRow.inst_id,
                    TradeRow.trade_id,
                    TradeRow.price,
                    TradeRow.size,
                    TradeRow.side,
                    TradeRow.ts,
                )
            ).all()
    finally:
        engine.dispose()
    return [
        Received(inst, int(tid), str(px), str(sz), side, int(ts)) for inst, tid, px, sz, side, ts in found
    ]


def tape(control: str, inst: str, begin_ms: int, end_ms: int) -> list[Fill]:
    query = urllib.parse.urlencode({"instId": inst, "from": begin_ms, "to": end_ms})
    fills = []
    for line in _http(f"{control}/tape?{query}").decode().splitlines():
        row = json.loads(line)
        fills.append(
            Fill(
                row["instId"],
                int(row["tradeId"]),
                Decimal(row["px"]),
                Decimal(row["sz"]),
                row["side"],
                int(row["ts"]),
            )
        )
    return fills


def _collector_config(run: Path) -> Path:
    path = run / "collectors.yaml"
    pairs = "\n".join(f"      - {p}" for p in PAIRS)
    path.write_text(
        "exchanges:\n  okx:\n    channels: [trades, books5, tickers, candles]\n"
        f"    timeframes: [1m, 5m, 15m, 1h, 4h, 1d]\n    pairs:\n{pairs}\n"
        f"batching:\n  spill_dir: {run / 'spill'}\n",
        encoding="utf-8",
    )
    return path


def _latest_ts(name: str, run: Path) -> dict[str, int]:
    """The newest trade ts per pair a recorder has received so far (ours: stored)."""
    if name == "ours":
        try:
            with contextlib.closing(sqlite3.connect(f"file:{run / 'ours.db'}?mode=ro", uri=True)) as db:
                found = db.execute("SELECT inst_id, max(ts) FROM trades GROUP BY inst_id").fetchall()
        except sqlite3.Error:  # not created or not migrated yet
            return {}
        return {str(inst): int(ts) for inst, ts in found}
    latest: dict[str, int] = {}
    for t in _trade_lines(run / f"{name}.jsonl"):
        if t["kind"] == "trade" and isinstance(t.get("ts"), int) and t.get("inst"):
            latest[str(t["inst"])] = max(int(t["ts"]), latest.get(str(t["inst"]), 0))
    return latest


def _live(latest: dict[str, int], after_ms: int) -> bool:
    return all(latest.get(inst, 0) >= after_ms for inst in PAIRS)


class Bench:
    def __init__(self, *, stall_s: float, window_s: float, quick: bool) -> None:
        self.stall_s, self.window_s, self.quick = stall_s, window_s, quick
        self.run = PEERS_DIR / "run"
        self.recorders: dict[str, Recorder] = {}
        self.sim: subprocess.Popen[bytes] | None = None
        self.urls: dict[str, str] = {}
        self.pipe: TlsPipe | None = None
        self.schedule: list[tuple[Fault, int]] = []

    def start_simulator(self) -> None:
        cmd = [sys.executable, "-m", "okx_simulator", "--pairs", ",".join(PAIRS)]
        cmd += ["--firehose-rate", f"{TRADE_RATE * len(PAIRS):g}", "--trade-rate", f"{TRADE_RATE:g}"]
        cmd += ["--seed", str(SEED)]
        self.sim = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=(self.run / "sim.log").open("ab"), cwd=ROOT
        )
        assert self.sim.stdout is not None
        self.urls = json.loads(self.sim.stdout.readline())

    def start_ours(self) -> None:
        env = {
            **os.environ,
            "TZ": "UTC",
            "DATABASE_URL": f"sqlite:///{self.run / 'ours.db'}",
            "COLLECTOR_CONFIG": str(_collector_config(self.run)),
            "OKX_REST_URL": self.urls["rest"],
            "OKX_WS_PUBLIC_URL": self.urls["ws_public"],
            "OKX_WS_BUSINESS_URL": self.urls["ws_business"],
        }
        cli = str(Path(sys.executable).with_name("okx-collector"))
        subprocess.run([cli, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
        version = importlib.metadata.version("okx-collector")
        rec = Recorder("ours", f"okx-collector {version} ({_git_head()})", "trades-all")
        rec.process = _start([cli, "collect", "--pairs", ",".join(PAIRS)], log=self.run / "ours.log", env=env)
        self.recorders["ours"] = rec

    def start_ccxt(self) -> None:
        python = PEERS_DIR / "ccxt-venv" / "bin" / "python"
        if not python.exists():
            self.recorders["ccxt"] = Recorder(
                "ccxt", "-", "trades", skipped=f"{python} missing (make bench-peers)"
            )
            return
        rec = Recorder("ccxt", f"ccxt {_version(python, 'ccxt')} (ccxt.pro okx)", "trades")
        ws_base = self.urls["ws_public"].removesuffix("/public")
        cmd = [str(python), str(HERE / "rec_ccxt.py"), "--rest", self.urls["rest"], "--ws-base", ws_base]
        rec.process = _start(
            [*cmd, "--pairs", ",".join(PAIRS), "--out", str(self.run / "ccxt.jsonl")],
            log=self.run / "ccxt.log",
        )
        self.recorders["ccxt"] = rec

    async def start_cryptofeed(self) -> None:
        python = PEERS_DIR / "cryptofeed-venv" / "bin" / "python"
        if not python.exists():
            reason = (
                (PEERS_DIR / "cryptofeed-venv.skipped").read_text().strip()
                if (PEERS_DIR / "cryptofeed-venv.skipped").exists()
                else f"{python} missing (make bench-peers)"
            )
            self.recorders["cryptofeed"] = Recorder("cryptofeed", "-", "trades", skipped=reason)
            return
        cert, key = make_certificate(self.run)
        port = urllib.parse.urlsplit(self.urls["rest"]).port
        assert port is not None
        self.pipe = TlsPipe(upstream_port=port, cert=cert, key=key)
        await self.pipe.start()
        wss = f"wss://127.0.0.1:{self.pipe.port}/ws/v5"
        rec = Recorder("cryptofeed", f"cryptofeed {_version(python, 'cryptofeed')} (OKX feed)", "trades")
        cmd = [
            str(python),
            str(HERE / "rec_cryptofeed.py"),
            "--rest",
            self.urls["rest"],
            "--cafile",
            str(cert),
        ]
        cmd += [
            "--ws-public",
            f"{wss}/public",
            "--ws-business",
            f"{wss}/business",
            "--pairs",
            ",".join(PAIRS),
        ]
        rec.process = _start(
            [*cmd, "--out", str(self.run / "cryptofeed.jsonl")], log=self.run / "cryptofeed.log"
        )
        self.recorders["cryptofeed"] = rec

    async def until_live(self, after_ms: int, limit_s: float) -> list[str]:
        """Wait until every recorder has received a trade with ts >= ``after_ms`` on every pair; the ones still
        behind at the limit are returned (a recorder that exited is an error: the bench cannot score a dead process)."""
        deadline = time.monotonic() + limit_s
        waiting = [r.name for r in self.recorders.values() if r.skipped is None]
        while waiting and time.monotonic() < deadline:
            for rec in self.recorders.values():
                if rec.process is not None and rec.process.poll() is not None:
                    raise RuntimeError(
                        f"{rec.name} exited with {rec.process.returncode}: see {self.run}/{rec.name}.log"
                    )
            waiting = [n for n in waiting if not _live(_latest_ts(n, self.run), after_ms)]
            if waiting:
                await asyncio.sleep(1)
        return waiting

    async def warm_up(self) -> None:
        behind = await self.until_live(_now_ms(), WARMUP_LIMIT_S)
        if behind:
            raise RuntimeError(f"no trade received by {behind} within {WARMUP_LIMIT_S:g} s")
        await asyncio.sleep(5)  # our collector's first batch is written; every feed is steady

    async def faults(self) -> tuple[int, int]:
        begin = _now_ms()
        print(f"baseline {self.window_s:g} s", flush=True)
        await asyncio.sleep(self.window_s)
        for fault in timeline(self.stall_s):
            at = _now_ms()
            for body in fault.bodies:
                _http(self.urls["control"] + "/faults", body)
            self.schedule.append((fault, at))
            print(f"{(at - begin) / 1000:7.1f} s  {fault.name}", flush=True)
            await asyncio.sleep(fault.lasts_s + self.window_s)
            # the next fault waits until every recorder reads live trades again, so a slow recovery is not
            # counted in the next fault's window
            behind = await self.until_live(at + int((fault.lasts_s + 1) * 1000), RECOVERY_LIMIT_S)
            await asyncio.sleep(SETTLE_S)  # a recovery's own gap stays clear of the next window's lead
            if behind:
                print(
                    f"          {', '.join(behind)}: no live trade {RECOVERY_LIMIT_S:g} s after the window",
                    flush=True,
                )
        return begin, _now_ms()

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for rec in self.recorders.values():
            if rec.process is not None:
                codes[rec.name] = _stop(rec.process)
        return codes

    async def execute(self) -> dict[str, Any]:
        shutil.rmtree(self.run, ignore_errors=True)
        self.run.mkdir(parents=True)
        started = datetime.now(UTC)
        # SIGTERM and SIGINT cancel the run, so the children are stopped below (a background job ignores SIGINT)
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            self.start_simulator()
            self.start_ours()
            self.start_ccxt()
            await self.start_cryptofeed()
            await self.warm_up()
            begin, end = await self.faults()
            await asyncio.sleep(DRAIN_S)
            exit_codes = self.stop_all()
            truth = [f for inst in PAIRS for f in tape(self.urls["control"], inst, begin, end)]
        finally:
            self.stop_all()
            if self.pipe is not None:
                await self.pipe.stop()
            if self.sim is not None:
                _stop(self.sim)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return self.results(truth, begin, end, started, exit_codes)

    def results(
        self, truth: list[Fill], begin: int, end: int, started: datetime, exit_codes: dict[str, int]
    ) -> dict[str, Any]:
        starts = [(f.name, at - WINDOW_LEAD_MS) for f, at in self.schedule]
        windows = windows_from_schedule(starts, begin_ms=begin, end_ms=end)
        stall_fault, stall_at = next((f, at) for f, at in self.schedule if f.bodies[0]["kind"] == "stall")
        stall_window = next(w for w in windows if w.name == stall_fault.name)
        scored: dict[str, dict[str, Counts]] = {}
        detection: dict[str, float | None] = {}
        for rec in self.recorders.values():
            if rec.skipped is not None:
                continue
            if rec.name == "ours":
                rows, events = our_rows(self.run / "ours.db"), our_events(self.run / "ours.log")
            else:
                rows, events = peer_rows(self.run / f"{rec.name}.jsonl")
            scored[rec.name] = score(truth, rows, windows)
            detection[rec.name] = detect_s(events, start_ms=stall_at, end_ms=stall_window.end_ms)
        return {
            "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "make bench-peers" + (" QUICK=1" if self.quick else ""),
            "simulator": {"pairs": list(PAIRS), "trade_rate": TRADE_RATE, "seed": SEED},
            "span": {"begin_ms": begin, "end_ms": end, "fills": len(truth)},
            "timeline": [
                {
                    "window": w.name,
                    "start_s": (w.start_ms - begin) / 1000,
                    "length_s": (w.end_ms - w.start_ms) / 1000,
                }
                | (
                    {"faults": next(list(f.bodies) for f, _ in self.schedule if f.name == w.name)}
                    if w.name != "baseline"
                    else {}
                )
                for w in windows
            ],
            "recorders": {
                r.name: {
                    "version": r.version,
                    "channel": r.channel,
                    "skipped": r.skipped,
                    "exit": exit_codes.get(r.name),
                }
                for r in self.recorders.values()
            },
            "stall_window": stall_fault.name,
            "stall_detect_s": detection,
            "counts": counts_by_recorder(scored),
            "load_average": list(os.getloadavg()),
        }


def _git_head() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def markdown(result: dict[str, Any]) -> str:
    """The table of docs/benchmarks.md: per window, missing / duplicated / wrong / out of order per recorder."""
    names = [n for n, r in result["recorders"].items() if r["skipped"] is None]
    counts = result["counts"]
    head = ["window (fault at s)", "fills", *[f"{n}: missing / dup / wrong / out of order" for n in names]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    starts = {t["window"]: t["start_s"] for t in result["timeline"]}
    for window in [*starts, "total"]:
        first = counts[names[0]][window] if names else {"truth": 0}
        label = f"{window} ({starts[window]:.0f})" if window in starts and window != "baseline" else window
        cells = [label, f"{first['truth']:,}"]
        for n in names:
            c = counts[n][window]
            invalid = f" ({c['invalid']} invalid)" if c["invalid"] else ""
            order = "n/a" if n == "ours" else f"{c['reordered']:,}"
            cells.append(f"{c['missing']:,} / {c['duplicated']:,} / {c['wrong']:,}{invalid} / {order}")
        lines.append("| " + " | ".join(cells) + " |")
    detect = result["stall_detect_s"]
    cells = [f"{result['stall_window']}: detected after", ""]
    cells += ["not detected" if detect[n] is None else f"{detect[n]:.1f} s" for n in names]
    lines.append("| " + " | ".join(cells) + " |")
    versions = "; ".join(
        f"{n}: {r['version']}, `{r['channel']}`" + (f" (skipped: {r['skipped']})" if r["skipped"] else "")
        for n, r in result["recorders"].items()
    )
    meta = (
        f"{result['date']}, `{result['command']}`, {len(result['simulator']['pairs'])} pairs "
        f"({', '.join(result['simulator']['pairs'])}) at ~{result['simulator']['trade_rate']:g} fills/s each, "
        f"seed {result['simulator']['seed']}, {result['span']['fills']:,} fills scored; {versions}; "
        f"load average {result['load_average'][0]:.1f}"
    )
    return meta + "\n\n" + "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s stall and 8 s windows (about 2 minutes)")
    parser.add_argument("--stall", type=float, help="stall length in seconds (default 100, quick 10)")
    parser.add_argument("--window", type=float, help="seconds after each fault (default 20, quick 8)")
    args = parser.parse_args(argv)
    stall_s = args.stall if args.stall is not None else (10.0 if args.quick else 100.0)
    window_s = args.window if args.window is not None else (8.0 if args.quick else 20.0)
    try:
        result = asyncio.run(Bench(stall_s=stall_s, window_s=window_s, quick=args.quick).execute())
    except asyncio.CancelledError:
        print(
            "bench-peers: stopped by a signal; the simulator and the recorders were stopped", file=sys.stderr
        )
        return 130
    stem = "peers-quick" if args.quick else "peers"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = markdown(result)
    (RESULTS / f"{stem}.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"written: {RESULTS / stem}.json, .md; logs and recordings in {PEERS_DIR / 'run'}")
    return 0
