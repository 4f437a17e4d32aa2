"""prefect.yaml: every deployment loads, validates and deploys; ``prefect up``/``down`` start and stop the stack.

The first tests need no server: each entrypoint imports, its parameters validate against the flow's
signature, its schedules parse the way ``prefect deploy`` parses them, and ``serve`` builds the same
deployments. The last one runs ``okx-collector prefect up`` (a real ``prefect server start`` on a free port,
PREFECT_HOME in a temp dir, analytics off, pools, limits, automations, ``prefect --no-prompt deploy --all``,
workers), reads the server's deployments back, and ``prefect down`` stops every process it started. It starts
its own server on purpose: ``prefect deploy`` is a separate process, which cannot use the in-process harness.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.prefect_yaml import PREFECT_YAML, DeploymentSpec, load_specs, runner_deployment, schedule_of

ROOT = Path(__file__).resolve().parents[2]
SPECS = load_specs()
FLOWS = {"live-collection", "backfill", "reaggregate", "validate", "retention"}


def test_every_flow_has_a_deployment_and_the_pools_are_split() -> None:
    from prefect.flows import load_flow_from_entrypoint

    names = {load_flow_from_entrypoint(str(ROOT / s.entrypoint)).name: s.work_pool for s in SPECS}
    assert set(names) == FLOWS
    assert {s.name: s.work_pool for s in SPECS} == {
        "live-okx": "collectors",
        "backfill-gaps": "batch",
        "backfill-adhoc": "batch",
        "validate-hourly": "batch",
        "reaggregate-adhoc": "batch",
        "reaggregate-daily": "batch",
        "retention-daily": "batch",
    }


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_entrypoint_imports_and_parameters_validate_against_the_signature(spec: DeploymentSpec) -> None:
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(ROOT / spec.entrypoint))
    validated = flow.validate_parameters(dict(spec.parameters))  # raises on a wrong name or type
    assert {k: validated[k] for k in spec.parameters} == dict(spec.parameters)
    schema = flow.parameters.model_dump()
    assert set(spec.parameters) <= set(schema["properties"])
    for name, prop in schema["properties"].items():  # the UI's form: every parameter is described
        assert prop.get("description"), f"{spec.name}: parameter {name} has no description"


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_schedules_parse_as_prefect_deploy_parses_them(spec: DeploymentSpec) -> None:
    from prefect.cli.deploy._models import RawScheduleConfig

    for raw in spec.schedules:
        RawScheduleConfig.model_validate(raw)  # the model `prefect deploy` validates with (extra="forbid")
        schedule = schedule_of(raw)
        assert schedule.slug == raw["slug"] and schedule.timezone == "UTC"


def test_schedules_are_the_ones_the_issue_asks_for() -> None:
    by_name = {s.name: [(r.get("cron"), r.get("interval"), r["slug"]) for r in s.schedules] for s in SPECS}
    assert by_name == {
        "live-okx": [],
        "backfill-gaps": [(None, 900, "every-15-min")],
        "backfill-adhoc": [],
        "validate-hourly": [("5 * * * *", None, "hourly")],
        "reaggregate-adhoc": [],
        "reaggregate-daily": [("20 0 * * *", None, "daily")],
        "retention-daily": [("30 3 * * *", None, "daily")],
    }


async def test_serve_builds_the_deployments_of_prefect_yaml() -> None:
    for spec in SPECS:
        deployment = await runner_deployment(spec, ROOT)
        assert deployment.name == spec.name
        assert deployment.parameters == dict(spec.parameters)
        assert [s.slug for s in deployment.schedules or []] == [r["slug"] for r in spec.schedules]
        limit = spec.concurrency_limit
        assert isinstance(limit, dict) and deployment.concurrency_limit == limit["limit"]
        assert deployment.concurrency_options is not None
        assert deployment.concurrency_options.collision_strategy.value == limit["collision_strategy"]


def test_a_key_serve_does_not_understand_is_refused(tmp_path: Path) -> None:
    from collectors.errors import ConfigError

    data = yaml.safe_load(PREFECT_YAML.read_text())
    data["deployments"][0]["triggers"] = []
    changed = tmp_path / "prefect.yaml"
    changed.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="deployments\\[0\\]: keys serve does not understand: triggers"):
        load_specs(changed)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _api(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "flows.cli", *args]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.timeout(900)  # a server start, deploy and workers on a busy 2-core machine took 3-4 min here
def test_prefect_up_deploys_everything_to_a_real_server_and_down_stops_it(tmp_path: Path) -> None:
    state, port = tmp_path / "stack", _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        # nothing the workers might start may touch a real database or OKX
        "DATABASE_URL": f"sqlite:///{tmp_path / 'never.db'}",
        "OKX_REST_URL": "http://127.0.0.1:9",
        "OKX_WS_PUBLIC_URL": "ws://127.0.0.1:9",
        "OKX_WS_BUSINESS_URL": "ws://127.0.0.1:9",
    }
    where = ["--state-dir", str(state), "--port", str(port)]
    up = _cli("prefect", "up", *where, env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        api = f"http://127.0.0.1:{port}/api"
        deployments = {d["name"]: d for d in _api(api, "/deployments/filter", {})}
        assert set(deployments) == {s.name for s in SPECS}
        for spec in SPECS:
            stored = deployments[spec.name]
            assert stored["work_pool_name"] == spec.work_pool
            assert stored["parameters"] == dict(spec.parameters)
            assert [s["slug"] for s in stored["schedules"]] == [r["slug"] for r in spec.schedules]
            assert stored["pull_steps"] == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
            ]
            assert stored["global_concurrency_limit"]["limit"] == spec.concurrency_limit["limit"]  # type: ignore[index]
        cron = {d["name"]: [s["schedule"].get("cron") for s in d["schedules"]] for d in deployments.values()}
        assert cron["validate-hourly"] == ["5 * * * *"] and cron["retention-daily"] == ["30 3 * * *"]
        assert deployments["backfill-gaps"]["schedules"][0]["schedule"]["interval"] == 900.0
        automations = {a["name"] for a in _api(api, "/automations/filter", {})}
        assert automations == {"restart crashed live collectors", "crash zombie flow runs"}
        assert _api(api, "/v2/concurrency_limits/okx-rest-members")["limit"] >= 1
        pids = {p.stem: int(p.read_text()) for p in state.glob("*.pid")}
        assert set(pids) == {"server", "worker-collectors", "worker-batch"}
        assert all(Path(f"/proc/{pid}").exists() for pid in pids.values())
        again = _cli("prefect", "up", *where, env=env)  # a second up refuses instead of doubling
        assert again.returncode == 2 and "already running" in again.stderr
        _serve_registers(api, {**env, "PREFECT_API_URL": api, "PREFECT_HOME": str(state / "home")})
    finally:
        down = _cli("prefect", "down", *where, env=env)
    assert down.returncode == 0, down.stderr
    assert "worker-batch, worker-collectors, server" in down.stdout
    assert not list(state.glob("*.pid"))
    assert not any(Path(f"/proc/{pid}").exists() and _zombie_free(pid) for pid in pids.values())


def _serve_registers(api: str, env: dict[str, str]) -> None:
    """``okx-collector serve --deployment retention-daily`` re-registers that deployment as prefect.yaml has it."""
    before = _api(api, "/deployments/name/retention/retention-daily")
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--deployment", "retention-daily"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert serve.stdout is not None
        lines = []
        for line in serve.stdout:  # until serve says it serves (it registered the deployment first)
            lines.append(line)
            if "being served" in line:
                break
        assert any("serving 1 deployments" in line and "at most 4 runs" in line for line in lines), lines
        after = _api(api, "/deployments/name/retention/retention-daily")
        assert after["updated"] > before["updated"]
        assert after["entrypoint"] == "flows/retention.py:retention"
        assert after["parameters"] == {"batch_rows": 10000}
        assert [(s["slug"], s["schedule"]["cron"]) for s in after["schedules"]] == [("daily", "30 3 * * *")]
    finally:
        serve.terminate()
        serve.wait(60)


def _zombie_free(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie already exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_second_prefect_up_while_one_is_starting_refuses_and_starts_nothing(tmp_path: Path) -> None:
    """Two `prefect up` on one state directory at once: before either wrote a pid file, both passed the
    'already running' check and raced for the port and the pid files (a loser's cleanup could stop the winner's
    processes, or leave one nobody can stop). An `up` or `down` in progress holds the state directory's lock;
    the other refuses at once (exit 2), starts nothing and leaves the pid files alone."""
    import fcntl

    state = tmp_path / "stack"
    state.mkdir()
    with (state / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # an `up` in progress
        for command in (["up", "--no-workers"], ["down"]):
            done = subprocess.run(
                [sys.executable, "-m", "flows.cli", "prefect", *command, "--state-dir", str(state),
                 "--port", str(_free_port())],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 2, (command, done.stdout, done.stderr)
            assert "another `prefect up` or `prefect down` is running" in done.stderr, done.stderr
    assert sorted(p.name for p in state.iterdir()) == [".lock"]
