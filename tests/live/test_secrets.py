"""The API secret never leaves the process: not in logs, not in the database, not in the raw archive.

Twice: a collector run in this process (every log record captured), and the ``collect`` command with DEBUG logs
in the JSON format and its metrics endpoint on (every line it wrote, every endpoint answer).

A collector logs in with the simulator's credentials (every WebSocket connection logs in before it subscribes),
archives every raw frame, goes through a disconnect (so it logs in again), and stops. Then every log record
(DEBUG and up, every logger) and every column of every table are searched for the secret, the passphrase and
the login signatures the simulator accepted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, MetaData, select

from collectors.config import parse_config
from collectors.exchanges.okx.protocol import Credentials
from collectors.live.app import Endpoints, run_collectors
from collectors.storage.schema import RawMessageRow
from okx_simulator import SimulatorServer
from okx_simulator.config import Credentials as SimCredentials
from tests.live.sim_run import FAST, PAIRS, add_fault, simulator, stored
from tests.ops.ops_helpers import collect_cli, free_port, own_database, write_config

SECRET = "sim-secret-key"  # the simulator's defaults (okx_simulator.config.Credentials)
PASSPHRASE = "sim-passphrase"


def _all_text(db: Engine) -> str:
    """Every value of every table, as text."""
    metadata = MetaData()
    metadata.reflect(db)
    parts: list[str] = []
    with db.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(repr(value) for value in row)
    return "\n".join(parts)


def _signatures_for(timestamps: range, secret: str = SECRET) -> set[str]:
    """OKX login signatures for every second of the run: a leaked signature would be one of these."""
    out = set()
    for ts in timestamps:
        message = f"{ts}GET/users/self/verify".encode()
        out.add(base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode())
    return out


async def test_the_secret_is_in_no_log_no_table_and_no_raw_frame(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = parse_config(
        {
            "exchanges": {
                "okx": {"channels": ["trades", "tickers"], "timeframes": ["1m"], "pairs": list(PAIRS)}
            },
            "live": {"raw_archive": "all"},
        }
    )
    wall_start_s = int(time.time())
    async with simulator() as sim:
        endpoints = Endpoints(
            rest_url=sim.rest_url,
            ws_public_url=sim.ws_public_url,
            ws_business_url=sim.ws_business_url,
            credentials=Credentials.of(api_key="sim-api-key", secret=SECRET, passphrase=PASSPHRASE),
        )
        task = asyncio.create_task(
            run_collectors(config=config, db=pg_engine, endpoints=endpoints, options=FAST, collector_id="s")
        )
        try:
            for _ in range(400):  # until both pairs store live trades (every connection logged in first)
                await asyncio.sleep(0.05)
                assert not task.done(), task
                if all(len(stored(pg_engine, p)) >= 5 for p in PAIRS):
                    break
            await add_fault(sim, {"kind": "drop"})  # a reconnect logs in again
            before = {p: len(stored(pg_engine, p)) for p in PAIRS}
            for _ in range(400):
                await asyncio.sleep(0.05)
                if all(len(stored(pg_engine, p)) > before[p] + 5 for p in PAIRS):
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    wall_end_s = int(time.time()) + 1
    assert all(len(stored(pg_engine, p)) > before[p] + 5 for p in PAIRS)  # trades flowed after the re-login
    with pg_engine.connect() as conn:
        assert (
            conn.execute(select(RawMessageRow.payload).limit(1)).first() is not None
        )  # the raw archive is on
    haystacks = {
        "logs": "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records),
        "db": _all_text(pg_engine),
    }
    needles = {SECRET, PASSPHRASE, *_signatures_for(range(wall_start_s - 1, wall_end_s + 1))}
    for name, text in haystacks.items():
        leaked = [n for n in needles if n in text]
        assert leaked == [], (name, leaked)


def _disguises(*secrets: str) -> set[str]:
    """Each secret as it could leak: itself, URL-encoded, JSON-escaped, inside a repr."""
    from urllib.parse import quote, quote_plus

    return {
        form
        for s in secrets
        for form in (s, quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1], repr(s)[1:-1])
    }


# a user-chosen passphrase with what escaping changes: quotes, a backslash, '+', '/', '%', a space, non-ASCII
AWKWARD_SECRET, AWKWARD_PASSPHRASE = "0F2A9C1B7D2E4F60A1B2C3D4E5F60718", 'my "pass"\\phrase+/%20 é'


@pytest.mark.parametrize(
    ("secret", "passphrase"),
    [(SECRET, PASSPHRASE), (AWKWARD_SECRET, AWKWARD_PASSPHRASE)],
    ids=["plain", "awkward-passphrase"],
)
async def test_the_collect_command_under_json_logs_leaks_no_secret_to_logs_tables_archive_or_endpoints(
    tmp_path: Path, secret: str, passphrase: str
) -> None:
    """``okx-collector -v collect`` with the credentials in the environment, DEBUG logs in JSON
    (``COLLECTOR_LOG_FORMAT``), the raw archive on, a drop (a second login) and the metrics endpoint on: the
    secret, the passphrase and every possible login signature are in no log line, no table (``raw_messages``
    included) and no endpoint answer."""
    port = free_port()
    config = write_config(tmp_path / "c.json", PAIRS, live={"raw_archive": "all"})
    env = {
        "OKX_API_KEY": "sim-api-key", "OKX_API_SECRET": secret, "OKX_API_PASSPHRASE": passphrase,
        "COLLECTOR_LOG_FORMAT": "json", "COLLECTOR_METRICS_PORT": str(port),
    }  # fmt: skip
    answers: list[str] = []

    async def watch(sim: SimulatorServer) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(200):
                await asyncio.sleep(0.1)
                with contextlib.suppress(httpx.TransportError):
                    status = await http.get(f"http://127.0.0.1:{port}/status")
                    if all(p["trades_stored"] > 0 for p in status.json()["pairs"]):
                        break
            await add_fault(sim, {"kind": "drop"})  # a reconnect logs in again
            # until every pair is live again on its new connection (a fixed 2 s, after a slow start, could leave
            # too little of the run's 8 s for the answers below)
            for _ in range(100):
                await asyncio.sleep(0.1)
                with contextlib.suppress(httpx.TransportError):
                    pairs = (await http.get(f"http://127.0.0.1:{port}/status")).json()["pairs"]
                    if all(p["reconnects"] >= 1 and p["state"] == "live" for p in pairs):
                        break
            for path in ("/metrics", "/status", "/health", "/ready"):
                answers.append((await http.get(f"http://127.0.0.1:{port}{path}")).text)

    wall_start_s = int(time.time())
    with own_database() as (_, db):
        url = db.url.render_as_string(hide_password=False)
        credentials = SimCredentials(secret_key=secret, passphrase=passphrase)
        async with simulator(credentials=credentials) as sim:
            watcher = asyncio.create_task(watch(sim))
            code, out, err = await collect_cli(
                sim, "-v", "collect", "--duration", "8", database_url=url, config=config, env=env
            )
            await watcher
        wall_end_s = int(time.time()) + 1
        assert code == 0, err
        with db.connect() as conn:
            raw = conn.execute(select(RawMessageRow.payload)).all()
        assert len(raw) > 10  # the raw archive is on
        haystacks = {"stderr": err, "stdout": out, "db": _all_text(db), "endpoints": "\n".join(answers)}
    lines = err.splitlines()
    assert len(lines) > 5 and all(json.loads(line)["level"] for line in lines)  # DEBUG lines, all JSON
    assert sum("login" in line for line in lines) >= 1, lines[:20]  # the logins were logged (masked or not)
    assert len(answers) == 4 and "okx_collector_trades_stored_total" in answers[0]
    needles = {
        *_disguises(secret, passphrase),
        *_signatures_for(range(wall_start_s - 1, wall_end_s + 1), secret),
    }
    for name, text in haystacks.items():
        leaked = [n for n in needles if n in text]
        assert leaked == [], (name, leaked)
