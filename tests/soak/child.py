"""The collector process under soak: ``python -m tests.soak.child SPEC_JSON``.

SPEC_JSON: ``{"runs": [{"name", "db_url", "config", "endpoints": {"rest", "ws_public", "ws_business"}}]}``. Each
run is one ``run_collectors`` (production timings) in this one process, so its RSS is the whole collector's.
Every status report (``on_status``: every second, and a last one when the run ends) becomes one JSON line on
stdout: ``{"run", "t_ms", "pairs": [...]}``. SIGTERM or
SIGINT cancels the runs (each flushes everything first); the exit status is 0 after a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import Any

from collectors.config import parse_config
from collectors.live.app import Endpoints, RunResult, run_collectors
from collectors.live.health import PairHealth
from collectors.storage.engine import make_engine


def pair_json(h: PairHealth) -> dict[str, Any]:
    return {
        "inst": h.inst_id,
        "state": h.state,
        "frontier": h.frontier_id,
        "gaps_open": h.gaps_open,
        "gaps_found": h.gaps_found,
        "gaps_filled": h.gaps_filled,
        "gaps_unrecoverable": h.gaps_unrecoverable,
        "messages": sum(c.messages for c in h.channels),
        "trades_stored": h.trades_stored,
        "rest_trades": h.rest_trades,
        "duplicates": h.duplicates,
        "rejected": h.rejected,
        "reconnects": h.reconnects,
        "lag_ms": h.writer_lag_ms,
    }


def _emit(name: str, items: list[PairHealth]) -> None:
    line = {"run": name, "t_ms": time.time_ns() // 1_000_000, "pairs": [pair_json(h) for h in items]}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


async def _one(run: dict[str, Any]) -> RunResult:
    urls = run["endpoints"]
    engine = make_engine(run["db_url"])
    try:
        result = await run_collectors(
            config=parse_config(run["config"]),
            db=engine,
            endpoints=Endpoints(
                rest_url=urls["rest"], ws_public_url=urls["ws_public"], ws_business_url=urls["ws_business"]
            ),
            collector_id=f"soak-{run['name']}",
            on_status=lambda items: _emit(run["name"], items),
        )
        return result
    finally:
        engine.dispose()


async def main(spec: dict[str, Any]) -> None:
    tasks = [asyncio.create_task(_one(run), name=run["name"]) for run in spec["runs"]]
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if (
            not stopping
        ):  # once: a second cancel would interrupt a run's final flush (its rows go to the spill)
            stopping = True
            for task in tasks:
                task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    # a run that ends on its own (a permanent error) ends the soak's collector: the driver sees the exit
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.wait(tasks)
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            task.result()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
