"""Crash restart, end to end: a worker's live run killed with SIGKILL is restarted by the automation and catches up.

The run is a Custom one (parameters other than the deployment's); the restart runs with the same parameters.
``okx-collector prefect up`` starts a real server, the pools, the automations, the deployments and the workers
(its own stack: a worker is a separate process, which the in-process harness cannot serve). The test starts
``live-okx`` against the simulator, kills the run's process with SIGKILL (the worker reports it ``Crashed``),
and waits for "restart crashed live collectors" to start the deployment again. The new run resumes from the
database and fills the hole from REST; then it is cancelled through the API. Afterwards ``trades`` equals
``/sim/tape`` from the first stored trade to the last: the crash lost nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine

from tests.live.sim_run import PAIRS, simulator, stored, true_tape, values

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flows.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 900)
    return int(process.returncode or 0), out.decode()


async def _runs(http: httpx.AsyncClient, deployment_id: str) -> list[dict[str, Any]]:
    body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    response = await http.post("/flow_runs/filter", json=body)
    runs: list[dict[str, Any]] = response.json()
    return runs


async def _until(check: Any, wait_s: float, step_s: float = 1.0) -> Any:
    for _ in range(int(wait_s / step_s)):
        value = await check()
        if value:
            return value
        await asyncio.sleep(step_s)
    raise AssertionError(f"not reached within {wait_s} s")


@pytest.mark.timeout(1500)  # a whole stack on a busy 2-core machine: `up` alone took 2-4 min here
async def test_a_killed_live_run_is_restarted_by_the_automation_and_loses_nothing(
    pg_engine: Engine, tmp_path: Path
) -> None:
    config = tmp_path / "collectors.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "exchanges": {"okx": {"channels": ["trades"], "timeframes": ["1m"], "pairs": list(PAIRS)}},
                "live": {"raw_archive": "none"},
                "batching": {"flush_interval_s": 0.2, "max_batch_rows": 500, "max_pending_rows": 10_000},
            }
        )
    )
    port = _free_port()
    state = tmp_path / "stack"
    where = ["--state-dir", str(state), "--port", str(port)]
    async with simulator(trade_rate=10.0) as sim:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COLLECTOR_CONFIG": str(config),
            "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
            "OKX_REST_URL": sim.rest_url,
            "OKX_WS_PUBLIC_URL": sim.ws_public_url,
            "OKX_WS_BUSINESS_URL": sim.ws_business_url,
        }
        code, out = await _cli("prefect", "up", *where, env=env)
        try:
            assert code == 0, out
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api", timeout=30) as http:
                found = await http.get("/deployments/name/live-collection/live-okx")
                assert found.status_code == 200, found.text
                deployment = found.json()
                # a Custom run (as from the UI's form): the restart must run with these, not the defaults
                custom = {"pairs": list(PAIRS), "summary_interval_s": 7.5}
                for _ in range(5):  # a busy server's SQLite can answer 5xx (locked); the create is retried
                    created = await http.post(
                        f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": custom}
                    )
                    if created.status_code < 500:
                        break
                    await asyncio.sleep(2)
                assert created.status_code == 201, created.text
                first = created.json()

                async def running(run_id: str) -> bool:
                    run = (await http.get(f"/flow_runs/{run_id}")).json()
                    return bool(run["state_type"] == "RUNNING")

                await _until(lambda: running(first["id"]), 180)
                await _until(lambda: _stored_all(pg_engine), 90)
                worker = int((state / "worker-collectors.pid").read_text())
                victims = _children(worker)
                assert len(victims) == 1, victims
                os.kill(victims[0], signal.SIGKILL)
                killed_at = {p: stored(pg_engine, p)[-1][0] for p in PAIRS}

                async def restarted() -> dict[str, Any] | None:
                    runs = await _runs(http, deployment["id"])
                    later = [r for r in runs if r["id"] != first["id"] and r["state_type"] == "RUNNING"]
                    return later[0] if later else None

                second = await _until(restarted, 240)
                crashed = (await http.get(f"/flow_runs/{first['id']}")).json()
                tapes = {p: await true_tape(sim, p) for p in PAIRS}

                async def caught_up() -> bool:
                    # past the tape as it was at the restart AND the kill's hole filled (ids contiguous): live
                    # pushes reach the tape's end before REST has filled the hole behind them (the restarted
                    # run joins the REST budget first), and a cancel then would leave the hole to a backfill
                    for p in PAIRS:
                        ids = [row[0] for row in stored(pg_engine, p)]
                        if ids[-1] < tapes[p][-1].trade_id or len(ids) != ids[-1] - ids[0] + 1:
                            return False
                    return True

                await _until(caught_up, 180)
                await http.post(
                    f"/flow_runs/{second['id']}/set_state",
                    json={"state": {"type": "CANCELLING", "message": "test"}, "force": True},
                )

                async def cancelled() -> bool:
                    run = (await http.get(f"/flow_runs/{second['id']}")).json()
                    return bool(run["state_type"] == "CANCELLED")

                await _until(cancelled, 120)
            tapes = {p: await true_tape(sim, p) for p in PAIRS}
        finally:
            await _cli("prefect", "down", *where, env=env)
    assert crashed["state_type"] == "CRASHED"
    assert second["created_by"] is not None and second["created_by"]["type"] == "AUTOMATION"
    assert first["parameters"] == custom and second["parameters"] == custom  # the crashed run's parameters
    for inst_id in PAIRS:
        rows = stored(pg_engine, inst_id)
        assert rows[-1][0] > killed_at[inst_id]
        first_id, last_id = rows[0][0], rows[-1][0]
        assert rows == [values(t) for t in tapes[inst_id] if first_id <= t.trade_id <= last_id], inst_id


async def _stored_all(db: Engine) -> bool:
    return all(stored(db, p) for p in PAIRS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
