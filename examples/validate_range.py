"""Validate a range, as an operator does: collect BTC-USDT from the local OKX simulator with `okx-collector
collect`, cut a hole of 5 trades out of the database, run `okx-collector validate --json` over the collected
range (it reports the hole by trade id), fill it with `okx-collector backfill --gaps`, and validate again.

Run from the repository root: ``.venv/bin/python examples/validate_range.py [--seconds 10]``. Exit 0 when the
first check finds exactly the cut ids and the second finds nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = "BTC-USDT"
CUT = 5


def okx_collector() -> list[str]:
    """The console script beside this interpreter (a venv), else the module."""
    script = Path(sys.executable).with_name("okx-collector")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    print("$ okx-collector " + " ".join(args))
    return subprocess.run(
        [*okx_collector(), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def validate(env: dict[str, str], start_ms: int, end_ms: int) -> tuple[int, list[dict[str, str]]]:
    done = run(env, "validate", "--pairs", PAIR, "--from", iso(start_ms), "--to", iso(end_ms), "--json")
    if done.returncode not in (0, 1):
        raise SystemExit(f"validate failed ({done.returncode}): {done.stderr}")
    findings = json.loads(done.stdout)["findings"]
    for finding in findings:
        print(f"  {finding['kind']:<16} {finding['start']} .. {finding['end']}  {finding['detail']}")
    print(f"  exit {done.returncode}, {len(findings)} findings")
    return done.returncode, findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    db_file = Path(tempfile.mkdtemp(prefix="okx-example-")) / "validate.db"
    sim = subprocess.Popen(  # a steady 5 fills/s (--firehose-rate): no quiet minute in the short run
        [sys.executable, "-m", "okx_simulator", "--seed", "11", "--pairs", PAIR, "--firehose-rate", "5",
         "--history-hours", "0.2"],
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
            "OKX_WS_PUBLIC_URL": urls["ws_public"],
            "OKX_WS_BUSINESS_URL": urls["ws_business"],
        }
        for step in (("db", "upgrade"), ("collect", "--pairs", PAIR, "--duration", f"{args.seconds:g}")):
            done = run(env, *step)
            if done.returncode != 0:
                raise SystemExit(f"{step[0]} failed: {done.stderr}")
        with sqlite3.connect(db_file) as db:
            (start_ms,) = db.execute(
                "SELECT min(start_time) FROM coverage WHERE inst_id = ? AND status = 'collected'", (PAIR,)
            ).fetchone()
            (last_ms,) = db.execute("SELECT max(ts) FROM trades WHERE inst_id = ?", (PAIR,)).fetchone()
            end_ms = last_ms - 3_000  # leave the minutes the live engine may not have closed yet
            ids = [  # the cut lies inside the checked range, away from its edges
                row[0]
                for row in db.execute(
                    "SELECT trade_id FROM trades WHERE inst_id = ? AND ts > ? AND ts < ? ORDER BY trade_id",
                    (PAIR, start_ms, end_ms),
                )
            ]
            if len(ids) < CUT + 2:
                raise SystemExit(f"only {len(ids)} trades inside the checked range; run longer (--seconds)")
            middle = (len(ids) - CUT) // 2
            first, last = ids[middle], ids[middle + CUT - 1]
            db.execute(
                "DELETE FROM trades WHERE inst_id = ? AND trade_id BETWEEN ? AND ?", (PAIR, first, last)
            )
        print(f"{len(ids)} trades inside the range; cut ids {first}-{last} ({CUT})")
        code, findings = validate(env, start_ms, end_ms)
        gaps = [f["detail"] for f in findings if f["kind"] == "trade_gap"]
        expected = f"trade ids {first}-{last} missing ({CUT})"
        print(f"trade_gap found: {gaps == [expected]} ({expected})")
        done = run(env, "backfill", "--pairs", PAIR, "--gaps")
        print("\n".join(line for line in done.stdout.splitlines() if line.strip()))
        code_after, after = validate(env, start_ms, end_ms)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    ok = code == 1 and gaps == [expected] and code_after == 0 and after == []
    print("result: the hole was found, filled and is gone" if ok else "result: UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
