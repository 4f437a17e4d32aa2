"""Collect BTC-USDT and ETH-USDT for a few seconds from the local OKX simulator into a new SQLite file, then
query the trades and 1m candles back with exact decimals and compare the trades with the simulator's truth.

Run from the repository root: ``.venv/bin/python examples/collect_and_query.py [--seconds 12] [--db FILE]``.
Exit 0 when every stored trade equals the simulator's tape over the collected ids (none missing, none wrong).
The same against the real OKX: drop the simulator and pass ``Endpoints.from_settings(load_settings())``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import text

from collectors.config import parse_config
from collectors.live.app import Endpoints, run_collectors
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from okx_simulator import SimulatorConfig, SimulatorServer

PAIRS = ("BTC-USDT", "ETH-USDT")


async def collect(db_file: Path, seconds: float) -> dict[str, list[dict[str, str]]]:
    """Run the collectors against a fresh simulator; returns the simulator's true tape per pair afterwards."""
    engine = make_engine(f"sqlite:///{db_file}")
    upgrade(engine)  # what `okx-collector db upgrade` does
    config = parse_config({"exchanges": {"okx": {"pairs": list(PAIRS), "channels": ["trades", "candles"]}}})
    sim_config = SimulatorConfig(seed=7, pairs=PAIRS, trade_rate=4.0, history_hours=0.1, quiet_prob=0.0)
    async with SimulatorServer(sim_config) as sim:
        endpoints = Endpoints(
            rest_url=sim.rest_url, ws_public_url=sim.ws_public_url, ws_business_url=sim.ws_business_url
        )
        result = await run_collectors(config=config, db=engine, endpoints=endpoints, duration_s=seconds)
        print(f"collector {result.collector_id}: {result.written_rows} rows written")
        tape = {pair: await _tape(sim.control_url, pair) for pair in PAIRS}
    engine.dispose()
    return tape


async def _tape(control_url: str, pair: str) -> list[dict[str, str]]:
    """The simulator's true trades of ``pair`` (GET /sim/tape: JSON lines, history-trades rows)."""
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(f"{control_url}/tape", params={"instId": pair})
        answer.raise_for_status()
        return [json.loads(line) for line in answer.text.splitlines() if line]


def report(db_file: Path, tape: dict[str, list[dict[str, str]]]) -> bool:
    engine = make_engine(f"sqlite:///{db_file}")
    ok = True
    with engine.connect() as conn:
        for pair in PAIRS:
            rows = conn.execute(
                text(
                    "SELECT trade_id, ts, price, size, side FROM trades WHERE inst_id = :p ORDER BY trade_id"
                ),
                {"p": pair},
            ).all()
            stored = {
                r.trade_id: (Decimal(r.price), Decimal(r.size), r.side, r.ts) for r in rows
            }  # text -> exact
            first, last = min(stored), max(stored)
            truth = {
                int(t["tradeId"]): (Decimal(t["px"]), Decimal(t["sz"]), t["side"], int(t["ts"]))
                for t in tape[pair]
                if first <= int(t["tradeId"]) <= last
            }
            missing = len(truth.keys() - stored.keys())
            wrong = sum(1 for i in truth.keys() & stored.keys() if truth[i] != stored[i])
            notional = sum(price * size for price, size, _, _ in stored.values())
            print(
                f"{pair}: trades {len(stored)} (ids {first}-{last}), truth {len(truth)}, missing {missing}, "
                f"wrong {wrong}, notional {notional}"
            )
            ok = ok and missing == 0 and wrong == 0 and len(stored) == len(truth) > 0
            candles = conn.execute(
                text(
                    "SELECT datetime(open_time / 1000, 'unixepoch') AS open_utc, open, high, low, close, volume, "
                    "trade_count FROM candles WHERE inst_id = :p AND timeframe = '1m' ORDER BY open_time"
                ),
                {"p": pair},
            ).all()
            for c in candles:
                print(
                    f"  1m {c.open_utc}Z o={c.open} h={c.high} l={c.low} c={c.close} v={c.volume} n={c.trade_count}"
                )
            in_candles = sum(c.trade_count for c in candles)
            print(f"  candles count {in_candles} trades of {len(stored)}")
            ok = ok and in_candles == len(stored)
    engine.dispose()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a new temporary one)")
    args = parser.parse_args()
    db_file = args.db or Path(tempfile.mkdtemp(prefix="okx-example-")) / "collect.db"
    tape = asyncio.run(collect(db_file, args.seconds))
    ok = report(db_file, tape)
    print(f"database: {db_file}")
    print("result: every stored trade equals the simulator's tape" if ok else "result: MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
