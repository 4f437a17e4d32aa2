"""Simulator firehose: what one bare client receives from a steady ``--firehose-rate``, and what it costs.

The simulator runs as its own process (``python -m okx_simulator --firehose-rate R --pairs <nine pairs>``,
exactly what issue 9's end-to-end benchmark starts); this process is the bare client: one aiohttp
WebSocket on /ws/v5/business subscribed to ``trades-all`` for every pair, decoding every frame with
``json.loads`` and nothing else. After a warm-up it counts, over a window:

* the fills delivered per second (entry value; baseline = the rate offered, so ratio = delivered / offered),
* the simulator's CPU time per delivered fill (user + system, from /proc/<pid>/stat) and its CPU share,
* the client's own CPU share (near 1.0: the client, not the simulator, limits what is delivered),
* trade ids missed (gaps in each pair's contiguous ids) and whether the simulator closed the client (4005).

Entries ``simulator.firehose.<rate>``: 20 000 fills/s (issue 9's end-to-end rate) and 60 000 fills/s (the
rate one core must sustain). The client shares the machine, so on a small box the client, not the
simulator, can be what limits delivery: read the CPU per fill for the simulator's own cost
(1e6 / us_per_fill is the rate one simulator core could carry).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from okx_simulator.instruments import DEFAULT_PAIRS as PAIRS  # the simulator's nine pairs: one home

RATES = (20_000, 60_000)
ROOT = Path(__file__).resolve().parents[1]
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


class _Counts:
    """What the client saw: fills, frames, missed ids, close code."""

    def __init__(self) -> None:
        self.fills = 0
        self.frames = 0
        self.missed = 0
        self.last_id: dict[str, int] = {}
        self.close_code: int | None = None

    def take(self, text: str) -> None:
        message = json.loads(text)
        rows = message.get("data")
        if not rows:
            return
        self.frames += 1
        for row in rows:
            trade_id = int(row["tradeId"])
            last = self.last_id.get(row["instId"])
            if last is not None and trade_id > last + 1:
                self.missed += trade_id - last - 1
            self.last_id[row["instId"]] = max(trade_id, last or 0)
            self.fills += 1


async def _client(ws_url: str, pid: int, warmup_s: float, window_s: float) -> dict[str, Any]:
    counts = _Counts()
    args = [{"channel": "trades-all", "instId": p} for p in PAIRS]
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, max_msg_size=0, autoping=True) as ws,
    ):
        await ws.send_str(json.dumps({"op": "subscribe", "args": args}))
        started = time.perf_counter()
        marks: dict[str, Any] = {}
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            counts.take(msg.data)
            elapsed = time.perf_counter() - started
            if not marks and elapsed >= warmup_s:
                marks = {"t": time.perf_counter(), "cpu": _cpu_s(pid), "fills": counts.fills}
                marks["client_cpu"] = time.process_time()
                marks.update(frames=counts.frames, missed=counts.missed)
            if marks and elapsed >= warmup_s + window_s:
                break
        if ws.closed:
            counts.close_code = ws.close_code
        if not marks:
            return {"error": f"stream ended before the window (close code {ws.close_code})"}
        seconds = time.perf_counter() - marks["t"]
        cpu = _cpu_s(pid) - marks["cpu"]
        client_cpu = time.process_time() - marks["client_cpu"]
        fills = counts.fills - marks["fills"]
        await ws.send_str(json.dumps({"op": "unsubscribe", "args": args}))
    return {
        "fills_per_s": fills / seconds,
        "frames_per_s": (counts.frames - marks["frames"]) / seconds,
        "sim_cpu_us_per_fill": cpu / max(fills, 1) * 1e6,
        "sim_cpu_share": cpu / seconds,
        "client_cpu_share": client_cpu / seconds,
        "missed_ids": counts.missed - marks["missed"],
        "closed_4005": counts.close_code == 4005,
        "close_code": counts.close_code,
        "window_s": round(seconds, 2),
    }


def measure(rate: float, *, warmup_s: float, window_s: float) -> dict[str, Any]:
    """Start the simulator at ``rate`` fills/s over the nine pairs, read it with one bare client, stop it."""
    command = [sys.executable, "-m", "okx_simulator", "--firehose-rate", str(rate), "--history-hours", "0.1"]
    command += ["--pairs", ",".join(PAIRS), "--no-rate-limits"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        return asyncio.run(_client(urls["ws_business"], proc.pid, warmup_s, window_s))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _entry(rate: int, result: dict[str, Any]) -> dict[str, Any]:
    value = float(result.get("fills_per_s", 0.0))
    return {
        "name": f"simulator.firehose.{rate}",
        "metric": "fills delivered to one bare client",
        "value": round(value, 1),
        "unit": "fills/s",
        "baseline": "the rate offered (--firehose-rate)",
        "baseline_value": float(rate),
        "ratio": round(value / rate, 3),
        "params": {**{k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}},
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    warmup_s, window_s = (2.0, 3.0) if quick else (3.0, 20.0)
    return [_entry(rate, measure(rate, warmup_s=warmup_s, window_s=window_s)) for rate in RATES]


if __name__ == "__main__":
    for entry in run(quick="--quick" in sys.argv):
        print(json.dumps(entry))
