"""Helpers of the ops tests: a PostgreSQL database of the test's own (so it can be dropped), a free port, a
scrape parsed into values."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from sqlalchemy import Engine

from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from okx_simulator import SimulatorServer
from tests.conftest import ADMIN_URL, _admin_connect

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def own_database() -> Iterator[tuple[str, Engine]]:
    """A fresh, migrated PostgreSQL database only this test uses; dropped (WITH FORCE) at the end."""
    name = f"okxc_ops_{uuid.uuid4().hex[:10]}"
    with _admin_connect() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    engine = make_engine(f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    try:
        upgrade(engine)
        yield name, engine
    finally:
        engine.dispose()
        drop_database(name)


def drop_database(name: str) -> None:
    with _admin_connect() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def scrape(port: int) -> Samples:
    """``/metrics`` as ``{(sample name, sorted labels): value}``."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, pairs: Sequence[str], **sections: Any) -> Path:
    """A collectors config file (JSON is YAML) with the pairs on trades only, its spill dir beside it."""
    body = {
        "exchanges": {"okx": {"channels": ["trades"], "timeframes": ["1m"], "pairs": list(pairs)}},
        "batching": {"spill_dir": str(path.with_name("spill"))},
        **sections,
    }
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


async def collect_cli(
    sim: SimulatorServer, *args: str, database_url: str, config: Path, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """``python -m flows.cli ARGS`` (a ``collect --duration``) with the simulator's endpoints; waits for its
    end and returns ``(exit code, stdout, stderr)``."""
    full_env = {
        **os.environ, "DATABASE_URL": database_url, "COLLECTOR_CONFIG": str(config),
        "OKX_REST_URL": sim.rest_url, "OKX_WS_PUBLIC_URL": sim.ws_public_url,
        "OKX_WS_BUSINESS_URL": sim.ws_business_url, **(env or {}),
    }  # fmt: skip
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flows.cli", *args, cwd=REPO, env=full_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(child.communicate(), timeout=120)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()
