"""Run a backfill: fetch three past minutes of BTC-USDT trades from the local OKX simulator's REST history into
an empty SQLite database with `okx-collector backfill --from ... --to ...`, then compare the stored trades with
the simulator's truth (GET /sim/tape) and show the 1m candles the backfill built from them, the range's last
minute included (the range ended in the past: every bucket ending by its end is closed).

Run from the repository root: ``.venv/bin/python examples/backfill_range.py``. Exit 0 when the stored trades
equal the truth over the range, and every minute with trades has a complete candle counting them (the
simulator, like OKX, has quiet minutes: no trade, so no candle under ``empty_intervals: skip``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = "BTC-USDT"
MINUTE_MS = 60_000


def okx_collector() -> list[str]:
    """The console script beside this interpreter (a venv), else the module."""
    script = Path(sys.executable).with_name("okx-collector")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main() -> int:
    db_file = Path(tempfile.mkdtemp(prefix="okx-example-")) / "backfill.db"
    sim = subprocess.Popen(
        [sys.executable, "-m", "okx_simulator", "--seed", "5", "--pairs", PAIR, "--history-hours", "0.5"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        urls = json.loads(sim.stdout.readline())
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{db_file}",
            "COLLECTOR_CONFIG": str(ROOT / "config" / "collectors.yaml"),
            "OKX_REST_URL": urls["rest"],
        }
        now_ms = int(time.time() * 1000)
        start = now_ms - now_ms % MINUTE_MS - 10 * MINUTE_MS  # three whole minutes, ten minutes ago
        end = start + 3 * MINUTE_MS
        steps = (
            ("db", "upgrade"),
            ("backfill", "--pairs", PAIR, "--from", iso(start), "--to", iso(end)),
        )
        for step in steps:
            print("$ okx-collector " + " ".join(step))
            done = subprocess.run(
                [*okx_collector(), *step], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
            )
            print("\n".join(line for line in done.stdout.splitlines() if line.strip()))
            if done.returncode != 0:
                raise SystemExit(f"{step[0]} failed ({done.returncode}): {done.stderr}")
        with urllib.request.urlopen(
            f"{urls['control']}/tape?instId={PAIR}&from={start}&to={end}", timeout=30
        ) as r:
            truth = {int(t["tradeId"]): (Decimal(t["px"]), Decimal(t["sz"]), t["side"], int(t["ts"]))
                     for t in map(json.loads, r.read().decode().splitlines())}  # fmt: skip
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    with sqlite3.connect(db_file) as db:
        rows = db.execute(
            "SELECT trade_id, price, size, side, ts FROM trades WHERE inst_id = ? AND ts >= ? AND ts < ?",
            (PAIR, start, end),
        ).fetchall()
        stored = {tid: (Decimal(px), Decimal(sz), side, ts) for tid, px, sz, side, ts in rows}
        candles = db.execute(
            "SELECT open_time, open, high, low, close, volume, trade_count, is_complete, source FROM candles "
            "WHERE inst_id = ? AND timeframe = '1m' AND open_time >= ? AND open_time < ? ORDER BY open_time",
            (PAIR, start, end),
        ).fetchall()
        spans = db.execute(
            "SELECT status, count(*) FROM coverage WHERE inst_id = ? AND data_type = 'trades' GROUP BY status",
            (PAIR,),
        ).fetchall()
    missing = len(truth.keys() - stored.keys())
    extra = len(stored.keys() - truth.keys())
    wrong = sum(1 for i in truth.keys() & stored.keys() if truth[i] != stored[i])
    print(f"range {iso(start)} .. {iso(end)}: stored {len(stored)}, truth {len(truth)}, missing {missing}, "
          f"extra {extra}, wrong {wrong}")  # fmt: skip
    for open_ms, o, h, low, c, v, n, complete, source in candles:
        print(
            f"  1m {iso(open_ms)} o={o} h={h} l={low} c={c} v={v} n={n} complete={bool(complete)} source={source}"
        )
    print(f"coverage: {dict(spans)}")
    per_minute: dict[int, int] = {}  # the trades of each minute; a quiet minute has none and no candle
    for _, _, _, ts in stored.values():
        per_minute[ts - ts % MINUTE_MS] = per_minute.get(ts - ts % MINUTE_MS, 0) + 1
    quiet = [iso(start + k * MINUTE_MS) for k in range(3) if start + k * MINUTE_MS not in per_minute]
    print(f"quiet minutes (no trade, no candle): {', '.join(quiet) or 'none'}")
    ok = (
        missing == extra == wrong == 0
        and len(stored) > 0
        and {row[0]: row[6] for row in candles} == per_minute
        and all(row[7] for row in candles)
    )
    print("result: the backfilled range equals the simulator's tape" if ok else "result: MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
