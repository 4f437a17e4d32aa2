"""The soak (``make soak``; issue 11): one collector process against two simulator processes for a long time,
under random faults from the whole catalogue and a PostgreSQL restart, then checked against the truth.

* Simulators (separate processes, ``python -m okx_simulator``): ``main`` serves the nine default pairs at the
  default market (2 fills/s per pair, quiet and burst minutes); ``firehose`` serves one pair (BTC-USDT) as a steady
  firehose of ``SOAK_FIREHOSE_RATE`` fills/s. Both keep OKX's REST rate limits.
* Collector (a separate process, ``tests/soak/child.py``): the shipped ``config/collectors.yaml`` (all channels
  and timeframes, raw archive ``all``) with the full-depth book on (so ``book_gap``/``seq_reset`` hit something),
  production timings; the firehose pair runs trades only. Each simulator's pairs go to their own database (both
  simulators model BTC-USDT) of a PRIVATE PostgreSQL cluster (``pgcluster.py``): the shared server is never
  touched.
* Faults: every 2-6 s a fault drawn from the simulator's whole catalogue (``analysis.GENERATORS``) with seeded
  parameters, on a seeded simulator; the seed is printed and recorded. Midway PostgreSQL is stopped (fast
  shutdown) for ``SOAK_PG_DOWN_S`` and started again.
* Samples every ``SOAK_SAMPLE_S``: messages received (rate), trades committed (``count(*)``), writer lag, the
  collector's RSS, faults injected, the load average.
* At the end: faults cleared, the collector catches up and is stopped with SIGTERM (it flushes); then per pair,
  from the trade stored before the start to the last one: trades equal ``/sim/tape`` (missing, duplicated,
  extra, wrong = 0), 1m candles equal the candle engine on the true tape, ``rejected_messages`` holds exactly the
  malformed frames of ``/sim/faults/log``, and RSS and writer lag are flat (``analysis.flatness``).

Environment: ``SOAK_MINUTES`` (30), ``SOAK_SEED`` (random, printed), ``SOAK_FIREHOSE_RATE`` (500),
``SOAK_PG_DOWN_S`` (15), ``SOAK_SAMPLE_S`` (5), ``SOAK_OUT`` (``data/soak/<UTC timestamp>``).
``python -m tests.soak.driver`` runs it outside pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.config import parse_config
from collectors.exchanges.okx.rows import build_trade
from collectors.exchanges.okx.spec import DEFAULT_PAIRS
from collectors.model import Trade
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.schema import TradeRow
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter
from tests.live.sim_run import rejected_payloads, stored_minutes, true_minutes, values
from tests.soak.analysis import (
    FaultPlan,
    Flatness,
    RejectedVerdict,
    Row,
    TapeVerdict,
    compare_rejected,
    fault_bodies,
    flatness,
    recovery_s,
)
from tests.soak.pgcluster import PrivateCluster

ROOT = Path(__file__).resolve().parents[2]
MINUTE_MS = 60_000
WINDOW_MS = 5 * MINUTE_MS  # tape and candles are compared in 5-minute windows (the firehose tape is large)
FIREHOSE_PAIR = "BTC-USDT"
RESUME_AGO_MS = 90_000  # the trade stored before the start: the collector's REST catch-up starts there
HISTORY_HOURS = "0.1"
CATCHUP_S = 300.0  # after the faults: every pair caught up within this, or the soak fails


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def time_budget_s() -> float:
    """What a whole soak may take: the fault phase (``SOAK_MINUTES``), the catch-up limit and 20 minutes for
    setup, the stop and the checks (pytest-timeout's default of 300 s would end it early)."""
    return float(os.environ.get("SOAK_MINUTES", "30")) * 60 + CATCHUP_S + 1_200


@dataclass(frozen=True, slots=True)
class Settings:
    minutes: float
    seed: int
    firehose_rate: float
    pg_down_s: float
    sample_s: float
    out: Path
    fault_every_s: tuple[float, float] = (2.0, 6.0)
    catchup_s: float = CATCHUP_S

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return cls(
            minutes=float(env.get("SOAK_MINUTES", "30")),
            seed=int(env["SOAK_SEED"]) if env.get("SOAK_SEED") else random.SystemRandom().randrange(1, 2**31),
            firehose_rate=float(env.get("SOAK_FIREHOSE_RATE", "500")),
            pg_down_s=float(env.get("SOAK_PG_DOWN_S", "15")),
            sample_s=float(env.get("SOAK_SAMPLE_S", "5")),
            out=Path(env.get("SOAK_OUT") or ROOT / "data" / "soak" / stamp),
        )


@dataclass(slots=True)
class Sample:
    t_ms: int
    messages: int | None
    trades_stored: int | None
    committed: int | None
    lag_ms: int | None
    rss_mb: float | None
    faults: int
    load1: float


@dataclass(slots=True)
class PairCheck:
    run: str
    inst_id: str
    tape: TapeVerdict
    candles_compared: int = 0
    candles_wrong: int = 0
    candles_missing: int = 0
    candles_extra: int = 0
    candle_examples: list[str] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def candles_exact(self) -> bool:
        return (
            self.candles_compared > 0
            and self.candles_wrong == self.candles_missing == self.candles_extra == 0
        )


@dataclass(slots=True)
class Result:
    settings: Settings
    started_ms: int = 0
    faults_end_ms: int = 0
    caught_up_ms: int | None = None
    stopped_ms: int = 0
    collector_exit: int | None = None
    pg_outage: tuple[int, int] | None = None
    samples: list[Sample] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[PairCheck] = field(default_factory=list)
    rejected: dict[str, RejectedVerdict] = field(default_factory=dict)
    flat: Flatness | None = None
    sim_stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def checks(self) -> dict[str, bool]:
        """Every pass/fail verdict of the soak, by name."""
        out = {
            "the checks ran to the end": self.error is None,
            "collector ran to the end and stopped cleanly (exit 0)": self.collector_exit == 0,
            "caught up after the faults (every pair live, no open gap, past the tape's end)": self.caught_up_ms
            is not None,
            "PostgreSQL restarted midway": self.pg_outage is not None,
            "trades equal /sim/tape (missing = duplicated = extra = wrong = 0)": bool(self.pairs)
            and all(p.tape.exact for p in self.pairs),
            "1m candles equal the candle engine on the true tape": bool(self.pairs)
            and all(p.candles_exact for p in self.pairs),
            "no unrecoverable gap": bool(self.pairs)
            and all(p.health.get("gaps_unrecoverable", 1) == 0 for p in self.pairs),
            "rejected_messages = the malformed frames of /sim/faults/log that reached the collector": bool(
                self.rejected
            )
            and any(v.stored for v in self.rejected.values())  # at least one malformed frame was met
            and all(v.ok for v in self.rejected.values()),
            "RSS flat": self.flat is not None and self.flat.rss_flat,
            "writer lag flat": self.flat is not None and self.flat.lag_flat,
        }
        return out


# ------------------------------------------------------------------------------------------------ processes


async def _spawn(*args: str, stderr: Path) -> asyncio.subprocess.Process:
    with stderr.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )


async def _end(proc: asyncio.subprocess.Process, timeout_s: float = 120.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout_s``; its exit status."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# ------------------------------------------------------------------------------------------------ the truth


async def _tape(http: httpx.AsyncClient, control: str, inst_id: str, t0: int, t1: int) -> list[Trade]:
    response = await http.get(f"{control}/tape", params={"instId": inst_id, "from": t0, "to": t1})
    response.raise_for_status()
    rows = [json.loads(line) for line in response.text.splitlines() if line]
    return [build_trade(row, inst_id, int(row["ts"]), 1)[0] for row in rows]


async def _last_true(
    http: httpx.AsyncClient, control: str, inst_id: str, now: int, back_ms: int
) -> Trade | None:
    tape = await _tape(http, control, inst_id, now - back_ms, now + 1)
    return tape[-1] if tape else None


def _stored_rows(db: Engine, inst_id: str, first_id: int, t0: int, t1: int) -> list[Row]:
    with Session(db) as session:
        query = (
            select(TradeRow.trade_id, TradeRow.ts, TradeRow.price, TradeRow.size, TradeRow.side)
            .where(TradeRow.inst_id == inst_id, TradeRow.trade_id >= first_id)
            .where(TradeRow.ts >= t0, TradeRow.ts < t1)
            .order_by(TradeRow.trade_id)
        )
        return [(i, ts, str(px), str(sz), side) for i, ts, px, sz, side in session.execute(query)]


def _stored_span(db: Engine, inst_id: str, first_id: int) -> tuple[int, int, int]:
    """(rows, last id, last ts) stored from ``first_id`` on."""
    with Session(db) as session:
        count, last_id = session.execute(
            select(func.count(), func.max(TradeRow.trade_id)).where(
                TradeRow.inst_id == inst_id, TradeRow.trade_id >= first_id
            )
        ).one()
        last_ts = session.scalar(
            select(TradeRow.ts).where(TradeRow.inst_id == inst_id, TradeRow.trade_id == last_id)
        )
    return int(count), int(last_id), int(last_ts)


# ------------------------------------------------------------------------------------------------ the soak


@dataclass(slots=True)
class _Sim:
    name: str
    proc: asyncio.subprocess.Process
    urls: dict[str, str]
    pairs: tuple[str, ...]
    db_name: str
    engine: Engine | None = None
    resume: dict[str, Trade] = field(default_factory=dict)


class Soak:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.result = Result(settings=settings)
        self.cluster = PrivateCluster()
        self.sims: dict[str, _Sim] = {}
        self.child: asyncio.subprocess.Process | None = None
        self.status: dict[str, dict[str, Any]] = {}
        self.targets: dict[tuple[str, str], int] = {}  # (run, pair): the tape's last id when the faults ended
        self.faults_done = 0
        self.shipped = yaml.safe_load((ROOT / "config" / "collectors.yaml").read_text())
        self.lateness_ms = parse_config(self.shipped).candles.allowed_lateness_ms

    def log(self, text: str) -> None:
        line = f"{datetime.now(UTC):%H:%M:%S} soak: {text}"
        print(line, flush=True)
        with (self.s.out / "soak.log").open("a") as f:
            f.write(line + "\n")

    # --- setup

    async def _start_sim(self, name: str, pairs: tuple[str, ...], extra: list[str]) -> None:
        args = ["-m", "okx_simulator", "--seed", str(self.s.seed), "--history-hours", HISTORY_HOURS]
        proc = await _spawn(*args, "--pairs", ",".join(pairs), *extra, stderr=self.s.out / f"sim-{name}.log")
        assert proc.stdout is not None
        urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        self.sims[name] = _Sim(name=name, proc=proc, urls=urls, pairs=pairs, db_name=f"soak_{name}")

    def _config(self, sim: _Sim) -> dict[str, Any]:
        config = json.loads(json.dumps(self.shipped))
        okx = config["exchanges"]["okx"]
        okx["pairs"] = list(sim.pairs)
        if sim.name == "firehose":
            okx["channels"] = ["trades"]
        config["live"]["full_depth_book"] = True
        config["batching"]["spill_dir"] = str(self.s.out / f"spill-{sim.name}")
        return config

    async def _store_resume_points(self, http: httpx.AsyncClient, sim: _Sim) -> None:
        """Per pair, the last true trade at least RESUME_AGO_MS old (within the visible history): stored first,
        so the collector's start catches up from REST and the comparison has a fixed first id."""
        assert sim.engine is not None
        now = _now_ms()
        for inst_id in sim.pairs:
            tape = await _tape(http, sim.urls["control"], inst_id, now - 6 * MINUTE_MS, now - RESUME_AGO_MS)
            assert tape, f"{sim.name} {inst_id}: no trade in the visible history to resume from"
            sim.resume[inst_id] = tape[-1]
        async with BatchWriter(open_sink(sim.engine)) as writer:
            await writer.put_many(sim.resume.values())

    async def setup(self) -> None:
        self.s.out.mkdir(parents=True, exist_ok=True)
        self.log(
            f"seed {self.s.seed}, {self.s.minutes} min, firehose {self.s.firehose_rate:g} fills/s, out {self.s.out}"
        )
        await asyncio.to_thread(self.cluster.start)
        await self._start_sim("main", tuple(DEFAULT_PAIRS), [])
        await self._start_sim("firehose", (FIREHOSE_PAIR,), ["--firehose-rate", str(self.s.firehose_rate)])
        async with httpx.AsyncClient(timeout=60) as http:
            for sim in self.sims.values():
                await asyncio.to_thread(self.cluster.create_database, sim.db_name)
                sim.engine = make_engine(self.cluster.url(sim.db_name))
                await asyncio.to_thread(upgrade, sim.engine)
                await self._store_resume_points(http, sim)
        spec = {
            "runs": [
                {"name": sim.name, "db_url": self.cluster.url(sim.db_name), "config": self._config(sim),
                 "endpoints": sim.urls}
                for sim in self.sims.values()
            ]
        }  # fmt: skip
        (self.s.out / "collector-spec.json").write_text(json.dumps(spec, indent=1))  # the configs as run
        self.child = await _spawn(
            "-m", "tests.soak.child", json.dumps(spec), stderr=self.s.out / "collector.log"
        )
        self.log(f"collector pid {self.child.pid}, PostgreSQL port {self.cluster.port}")

    # --- the running soak

    async def _read_status(self) -> None:
        assert self.child is not None and self.child.stdout is not None
        while line := await self.child.stdout.readline():
            report = json.loads(line)
            self.status[report["run"]] = report

    def _pairs_status(self) -> list[dict[str, Any]]:
        return [p for report in self.status.values() for p in report["pairs"]]

    def _committed(self) -> int | None:
        total = 0
        for sim in self.sims.values():
            try:
                with psycopg.connect(self.cluster.dsn(sim.db_name), connect_timeout=2) as conn:
                    row = conn.execute("SELECT count(*) FROM trades").fetchone()
            except psycopg.OperationalError:
                return None  # the server is down (the restart): no figure for this sample
            assert row is not None
            total += int(row[0])
        return total

    async def _sample_loop(self, until_ms: int) -> None:
        assert self.child is not None
        while _now_ms() < until_ms:
            pairs = self._pairs_status()
            lags = [p["lag_ms"] for p in pairs if p["lag_ms"] is not None]
            self.result.samples.append(
                Sample(
                    t_ms=_now_ms(),
                    messages=sum(p["messages"] for p in pairs) if pairs else None,
                    trades_stored=sum(p["trades_stored"] for p in pairs) if pairs else None,
                    committed=await asyncio.to_thread(self._committed),
                    lag_ms=max(lags) if lags else None,
                    rss_mb=_rss_mb(self.child.pid),
                    faults=self.faults_done,
                    load1=_load1(),
                )
            )
            await asyncio.sleep(self.s.sample_s)

    async def _fault_loop(self, http: httpx.AsyncClient, until_ms: int) -> None:
        rng = random.Random(self.s.seed)
        targets = {name: sim.pairs for name, sim in self.sims.items()}
        while True:
            plan: FaultPlan = fault_bodies(rng, targets, every_s=self.s.fault_every_s)
            await asyncio.sleep(plan.delay_s)
            if _now_ms() >= until_ms:
                return
            control = self.sims[plan.target].urls["control"]
            for body in plan.bodies:
                response = await http.post(f"{control}/faults", json=body)
                assert response.status_code == 200, (body, response.text)
            self.faults_done += 1
            self.result.faults.append(
                {"t_ms": _now_ms(), "target": plan.target, "kind": plan.kind, "bodies": plan.bodies}
            )

    async def _pg_restart(self, at_ms: int) -> None:
        await asyncio.sleep(max(0.0, (at_ms - _now_ms()) / 1000))
        self.log("stopping PostgreSQL (fast shutdown)")
        await asyncio.to_thread(self.cluster.stop)
        stopped = _now_ms()
        await asyncio.sleep(self.s.pg_down_s)
        await asyncio.to_thread(self.cluster.start)
        self.result.pg_outage = (stopped, _now_ms())
        self.log(f"PostgreSQL started again after {(_now_ms() - stopped) / 1000:.1f} s")

    async def _wait_caught_up(self, http: httpx.AsyncClient) -> None:
        """Until every pair is live with no open gap and its frontier past the tape's last trade at the call."""
        now = _now_ms()
        targets = self.targets
        for sim in self.sims.values():
            back = 30_000 if sim.name == "firehose" else 10 * MINUTE_MS
            for inst_id in sim.pairs:
                last = await _last_true(http, sim.urls["control"], inst_id, now, back)
                targets[(sim.name, inst_id)] = last.trade_id if last else sim.resume[inst_id].trade_id
        deadline = now + int(self.s.catchup_s * 1000)
        while _now_ms() < deadline:
            ok = [
                p["state"] == "live"
                and p["gaps_open"] == 0
                and (p["frontier"] or 0) >= targets[(run, p["inst"])]
                for run, report in self.status.items()
                for p in report["pairs"]
            ]
            if len(ok) == len(targets) and all(ok):
                self.result.caught_up_ms = _now_ms()
                self.log(f"caught up {(self.result.caught_up_ms - now) / 1000:.1f} s after the faults ended")
                return
            await asyncio.sleep(1.0)
        self.log("NOT caught up within the catch-up limit")

    async def run(self) -> Result:
        assert self.child is not None
        r = self.result
        r.started_ms = _now_ms()
        r.faults_end_ms = r.started_ms + int(self.s.minutes * MINUTE_MS)
        reader = asyncio.create_task(self._read_status())
        async with httpx.AsyncClient(timeout=60) as http:
            sampler = asyncio.create_task(self._sample_loop(r.faults_end_ms + int(self.s.catchup_s * 1000)))
            restart = asyncio.create_task(self._pg_restart((r.started_ms + r.faults_end_ms) // 2))
            await self._fault_loop(http, r.faults_end_ms)
            await restart
            for sim in self.sims.values():
                (await http.delete(f"{sim.urls['control']}/faults")).raise_for_status()
            self.log(f"{self.faults_done} faults injected; waiting for the catch-up")
            await self._wait_caught_up(http)
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            r.collector_exit = await _end(self.child)
            r.stopped_ms = _now_ms()
            await reader
            self.log(f"collector exited with {r.collector_exit}")
            for sim in self.sims.values():
                r.sim_stats[sim.name] = (await http.get(f"{sim.urls['control']}/stats")).json()
            try:
                await self.check(http)
            except (
                Exception
            ) as exc:  # recorded (the soak fails on it) so the report of a long run is still written
                r.error = f"the checks raised {type(exc).__name__}: {exc}"
                self.log(r.error)
        half = (r.started_ms + r.faults_end_ms) // 2
        r.flat = flatness(
            [(x.t_ms, x.rss_mb) for x in r.samples if x.rss_mb is not None],
            [(x.t_ms, float(x.lag_ms)) for x in r.samples if x.lag_ms is not None],
            window=(half, r.faults_end_ms),
            outage=r.pg_outage,
            recovery_s=recovery_s(self.s.minutes * 60),
        )
        return r

    # --- the checks

    async def _check_pair(self, http: httpx.AsyncClient, sim: _Sim, inst_id: str) -> PairCheck:
        assert sim.engine is not None
        resume = sim.resume[inst_id]
        count, last_id, last_ts = await asyncio.to_thread(_stored_span, sim.engine, inst_id, resume.trade_id)
        target = max(last_id, self.targets.get((sim.name, inst_id), resume.trade_id))
        check = PairCheck(run=sim.name, inst_id=inst_id, tape=TapeVerdict())
        first_minute = resume.ts_ms // MINUTE_MS * MINUTE_MS + MINUTE_MS
        end_minute = (last_ts - self.lateness_ms) // MINUTE_MS * MINUTE_MS
        end_ms = max(last_ts, self.result.stopped_ms) + 1
        seen = 0
        t0 = resume.ts_ms // WINDOW_MS * WINDOW_MS
        while t0 < end_ms:
            t1 = t0 + WINDOW_MS
            tape = await _tape(http, sim.urls["control"], inst_id, t0, t1)
            truth = [values(t) for t in tape if resume.trade_id <= t.trade_id <= target]
            got = await asyncio.to_thread(_stored_rows, sim.engine, inst_id, resume.trade_id, t0, t1)
            seen += len(got)
            check.tape.add(truth, got)
            lo, hi = max(t0, first_minute), min(t1, end_minute)
            if lo < hi:
                ours = {m[0]: m for m in await asyncio.to_thread(stored_minutes, sim.engine, inst_id, lo, hi)}
                in_range = [t for t in tape if lo <= t.ts_ms < hi]  # none: quiet minutes, no candle expected
                true = {m[0]: m for m in true_minutes(in_range, inst_id, lo, hi)} if in_range else {}
                check.candles_compared += len(true)
                for minute, row in true.items():
                    if minute not in ours:
                        check.candles_missing += 1
                        check.candle_examples.append(f"missing {row}")
                    elif ours[minute] != row:
                        check.candles_wrong += 1
                        check.candle_examples.append(f"wrong {ours[minute]} != {row}")
                check.candles_extra += len(set(ours) - set(true))
            t0 = t1
        check.tape.extra += count - seen  # stored rows outside every window (a wrong timestamp)
        del check.candle_examples[10:]
        return check

    async def check(self, http: httpx.AsyncClient) -> None:
        final = {(run, p["inst"]): p for run, report in self.status.items() for p in report["pairs"]}
        for sim in self.sims.values():
            assert sim.engine is not None
            for inst_id in sim.pairs:
                pair = await self._check_pair(http, sim, inst_id)
                pair.health = final.get((sim.name, inst_id), {})
                self.result.pairs.append(pair)
                self.log(
                    f"{sim.name} {inst_id}: trades {pair.tape.compared} missing {pair.tape.missing} dup "
                    f"{pair.tape.duplicated} extra {pair.tape.extra} wrong {pair.tape.wrong}; candles "
                    f"{pair.candles_compared} wrong {pair.candles_wrong} missing {pair.candles_missing} "
                    f"extra {pair.candles_extra}"
                )
            log = (await http.get(f"{sim.urls['control']}/faults/log")).json()
            rejected = await asyncio.to_thread(rejected_payloads, sim.engine)
            with (self.s.out / f"sim-{sim.name}-faults-log.jsonl").open("w") as f:
                f.writelines(json.dumps(entry) + "\n" for entry in log)
            posted = [(f["t_ms"], f["kind"]) for f in self.result.faults if f["target"] == sim.name]
            self.result.rejected[sim.name] = compare_rejected(rejected, log, posted)

    async def teardown(self) -> None:
        if self.child is not None:
            await _end(self.child)
        for sim in self.sims.values():
            await _end(sim.proc, 30)
            if sim.engine is not None:
                sim.engine.dispose()
        await asyncio.to_thread(self.cluster.destroy)


async def soak(settings: Settings) -> Result:
    """Set up, run, check and tear down; the report (``report.py``) is written by the caller."""
    runner = Soak(settings)
    try:
        await runner.setup()
        return await runner.run()
    finally:
        await runner.teardown()


def fault_counts(result: Result) -> Counter[tuple[str, str]]:
    return Counter((f["target"], f["kind"]) for f in result.faults)


def main() -> int:
    from tests.soak.report import write_report

    settings = Settings.from_env()
    result = asyncio.run(soak(settings))
    path = write_report(result)
    print(f"report: {path}")
    return 0 if all(result.checks().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
