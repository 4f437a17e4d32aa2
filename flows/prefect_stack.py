"""A local Prefect stack for ``okx-collector prefect up|down`` (``make prefect-up`` / ``make prefect-down``).

``up`` starts ``prefect server start`` in the background, waits until its API answers, creates the work pools
prefect.yaml names (process pools; the batch pool's concurrency limit), the global concurrency limit the flows
share OKX's REST budget through (:mod:`tasks.rest_budget`), the automations of ``config/prefect/automations``
(replacing ones of the same name), runs ``prefect --no-prompt deploy --all`` in the repository and starts one
worker per pool. Every process gets its own session (process group), a pid file and a log under the state
directory; PREFECT_HOME (the server's SQLite database) is there too, and analytics are off. ``down`` sends
SIGTERM to exactly those process groups (workers first), waits, and removes the pid files. A failed ``up``
stops what it had started. An ``up`` or ``down`` holds the state directory's lock (``.lock``) throughout: a
second one at the same time refuses instead of racing for the port and the pid files.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from collectors.errors import ConfigError
from flows.prefect_yaml import load_specs

__all__ = ["AUTOMATIONS_DIR", "Stack"]

AUTOMATIONS_DIR: Final = Path(__file__).resolve().parents[1] / "config" / "prefect" / "automations"
_PREFECT: Final = (sys.executable, "-m", "prefect")
_STOP_WAIT_S: Final = 30.0
_HEALTHY_WAIT_S: Final = 180.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Stack:
    state_dir: Path
    host: str
    port: int
    root: Path

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of every process of the stack (and of the flow runs its workers start)."""
        return {
            **os.environ,
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str((self.state_dir / "home").resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PWD": str(self.root),  # prefect.yaml's pull step: `set_working_directory: {{ $PWD }}`
        }

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The state directory's lock for the whole of an ``up`` or ``down``: two of them at once would pass the
        'already running' check together and race for the port and the pid files. The other one refuses."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"another `prefect up` or `prefect down` is running on {self.state_dir}; wait for it"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def up(self, *, live_slots: int, batch_slots: int, workers: bool = True) -> None:
        with self._exclusive():
            self._up(live_slots=live_slots, batch_slots=batch_slots, workers=workers)

    def _up(self, *, live_slots: int, batch_slots: int, workers: bool) -> None:
        running = self.running()
        if running:
            raise ConfigError(
                f"already running under {self.state_dir}: {', '.join(running)}; run `prefect down`"
            )
        self._check_port_free()
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        pools = sorted({s.work_pool for s in load_specs(self.root / "prefect.yaml") if s.work_pool})
        started: list[subprocess.Popen[bytes]] = []
        try:
            started.append(
                self._spawn("server", "server", "start", "--host", self.host, "--port", str(self.port))
            )
            self._wait_healthy(started[0])
            for pool in pools:
                self._run("work-pool", "create", pool, "--type", "process", "--overwrite")
            if "batch" in pools:
                self._run("work-pool", "set-concurrency-limit", "batch", str(batch_slots))
            asyncio.run(self._limits_and_automations())
            self._run("--no-prompt", "deploy", "--all")
            if workers:
                for pool in pools:
                    limit = live_slots if pool == "collectors" else batch_slots
                    name = f"okx-{pool}-{socket.gethostname()}"
                    args = ("worker", "start", "--pool", pool, "--name", name, "--limit", str(limit))
                    started.append(self._spawn(f"worker-{pool}", *args))
        except BaseException:
            for process in reversed(started):  # by handle: a process may not have exec'd prefect yet
                _stop_group(process.pid, alive=functools.partial(_running, process))
            self._down()
            raise

    def down(self) -> list[str]:
        """Stop every process with a pid file here (workers before the server); the names stopped."""
        with self._exclusive():
            return self._down()

    def _down(self) -> list[str]:
        stopped: list[str] = []
        files = sorted(self.state_dir.glob("*.pid"), key=lambda p: p.stem == "server")
        for pid_file in files:
            pid = _read_pid(pid_file)
            if pid is not None and _is_ours(pid):
                _stop_group(pid)
                stopped.append(pid_file.stem)
            pid_file.unlink(missing_ok=True)
        return stopped

    def running(self) -> list[str]:
        return [p.stem for p in sorted(self.state_dir.glob("*.pid")) if _is_ours(_read_pid(p))]

    def _check_port_free(self) -> None:
        with socket.socket() as sock:
            if sock.connect_ex((self.host, self.port)) == 0:
                raise ConfigError(f"{self.host}:{self.port} is taken; pass --port")

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.state_dir / "logs" / f"{name}.log").open("ab")
        with log:
            process = subprocess.Popen(
                [*_PREFECT, *args],
                cwd=self.root,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: down stops it and what it started
            )
        (self.state_dir / f"{name}.pid").write_text(f"{process.pid}\n")
        return process

    def _run(self, *args: str) -> None:
        log = self.state_dir / "logs" / "setup.log"
        with log.open("ab") as out:
            out.write(f"$ prefect {' '.join(args)}\n".encode())
            out.flush()
            done = subprocess.run(
                [*_PREFECT, *args],
                cwd=self.root,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            raise ConfigError(f"`prefect {' '.join(args)}` failed (exit {done.returncode}); see {log}")

    def _wait_healthy(self, server: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _HEALTHY_WAIT_S
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise ConfigError(f"the Prefect server exited; see {self.state_dir / 'logs' / 'server.log'}")
            with contextlib.suppress(urllib.error.URLError, OSError):
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            time.sleep(0.5)
        raise ConfigError(f"the Prefect server did not answer within {_HEALTHY_WAIT_S:.0f} s")

    async def _limits_and_automations(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.events.schemas.automations import AutomationCore
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from tasks.rest_budget import ensure_budget_limit

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            await ensure_budget_limit()
            async with get_client() as client:
                for path in sorted(AUTOMATIONS_DIR.glob("*.yaml")):
                    automation = AutomationCore.model_validate(
                        yaml.safe_load(path.read_text(encoding="utf-8"))
                    )
                    for old in await client.read_automations_by_name(automation.name):
                        await client.delete_automation(old.id)
                    await client.create_automation(automation)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_ours(pid: int | None) -> bool:
    """A live process leading its own group whose command line runs prefect (not a recycled pid)."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return os.getpgid(pid) == pid and b"prefect" in cmdline
    except (OSError, ProcessLookupError):
        return False


def _running(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


def _stop_group(pid: int, alive: Callable[[], bool] | None = None) -> None:
    """SIGTERM to the process group ``pid`` leads; SIGKILL after ``_STOP_WAIT_S`` if ``alive()`` still."""
    still = alive if alive is not None else (lambda: _is_ours(pid))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_WAIT_S
    while time.monotonic() < deadline and still():
        time.sleep(0.2)
    if still():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
