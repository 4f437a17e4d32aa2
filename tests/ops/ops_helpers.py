"""Helpers of the ops tests: a PostgreSQL database of the test's own (so it can be dropped), a free port, a
scrape parsed into values."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator

import httpx
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from sqlalchemy import Engine

from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
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
