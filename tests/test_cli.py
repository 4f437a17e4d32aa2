"""The console script, run as a user runs it (a subprocess) against real databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from collectors.storage.engine import make_engine
from collectors.storage.migrate import head_revision
from collectors.storage.schema import Base

REPO = Path(__file__).resolve().parents[1]
TABLES = {
    "instruments", "trades", "candles", "exchange_candles", "book_snapshots", "tickers", "raw_messages",
    "rejected_messages", "coverage",
}  # fmt: skip


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=full_env, cwd=cwd,
        timeout=120,
    )  # fmt: skip


def _assert_schema(url: str) -> None:
    engine = make_engine(url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_db_upgrade_creates_every_table_on_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'new.db'}"
    result = _cli("db", "upgrade", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert f"is at revision {head_revision()}" in result.stdout
    _assert_schema(url)
    again = _cli("db", "upgrade", env={"DATABASE_URL": url})  # idempotent
    assert again.returncode == 0, again.stderr
    assert _cli("db", "current", env={"DATABASE_URL": url}).returncode == 0


def test_db_upgrade_creates_every_table_on_an_empty_postgres_database(pg_database: str) -> None:
    import psycopg

    empty = pg_database + "_cli"
    admin = pg_database.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{empty.rsplit("/", 1)[1]}"')
    try:
        behind = _cli("db", "current", "--database-url", empty)
        assert behind.returncode == 1 and "run okx-collector db upgrade" in behind.stdout
        result = _cli("db", "upgrade", "--database-url", empty)
        assert result.returncode == 0, result.stderr
        assert "postgresql+psycopg://postgres@127.0.0.1:5432/" in result.stdout
        _assert_schema(empty)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{empty.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_db_upgrade_reports_an_unreachable_database() -> None:
    result = _cli("db", "upgrade", "--database-url", "postgresql://postgres@127.0.0.1:1/x")
    assert result.returncode == 1
    assert "okx-collector: StorageError: migrating the schema: OperationalError" in result.stderr
    assert "Connection refused" in result.stderr and "Traceback" not in result.stderr


def test_config_check_prints_effective_settings_with_secrets_masked() -> None:
    result = _cli("config", "check", env={"OKX_API_SECRET": "hunter2", "OKX_API_KEY": "k-1"})
    assert result.returncode == 0, result.stderr
    assert '"OKX_API_SECRET": "********"' in result.stdout
    assert "hunter2" not in result.stdout + result.stderr and "k-1" not in result.stdout
    assert '"inst_id": "PEPE-USDT"' in result.stdout
    assert "config OK: 9 pairs" in result.stderr


def test_config_check_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("exchanges:\n  okx:\n    pairs: [BTC-USDT, BTCUSDT]\n    timeframes: [1m, 7m]\n")
    result = _cli("config", "check", "--file", str(bad))
    assert result.returncode == 2
    assert "exchanges.okx.pairs[1].inst_id: unknown pair format 'BTCUSDT'" in result.stderr
    assert "exchanges.okx.timeframes: unknown timeframe '7m'" in result.stderr
    via_env = _cli("config", "check", env={"COLLECTOR_CONFIG": str(bad)})
    assert via_env.returncode == 2 and "BTCUSDT" in via_env.stderr


# the demo (collection, then the quality flow runs through Prefect) is tested in tests/flows/test_demo_flows.py


async def test_collect_stops_cleanly_on_sigterm_and_prints_a_summary(tmp_path: Path) -> None:
    """``collect`` against the simulator (endpoints and database from the environment) until SIGTERM: exit 0,
    a summary row per pair, and the trades it reported are in the database."""
    import asyncio
    import signal

    from okx_simulator import SimulatorConfig, SimulatorServer
    from tests.live.sim_run import PAIRS, SIM, stored

    url = f"sqlite:///{tmp_path / 'collect.db'}"
    assert _cli("db", "upgrade", "--database-url", url).returncode == 0
    config = tmp_path / "collectors.yaml"
    config.write_text(
        "exchanges:\n  okx:\n    channels: [trades]\n    timeframes: [1m]\n    pairs: [BTC-USDT, ETH-USDT]\n"
    )
    async with SimulatorServer(config=SimulatorConfig(seed=7, pairs=list(PAIRS), **SIM)) as sim:
        env = {
            **os.environ, "DATABASE_URL": url, "COLLECTOR_CONFIG": str(config), "OKX_REST_URL": sim.rest_url,
            "OKX_WS_PUBLIC_URL": sim.ws_public_url, "OKX_WS_BUSINESS_URL": sim.ws_business_url,
        }  # fmt: skip
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flows.cli", "collect", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        engine = make_engine(url)
        try:
            for _ in range(200):  # until both pairs have stored trades (at most 20 s)
                if all(stored(engine, p) for p in PAIRS):
                    break
                await asyncio.sleep(0.1)
        finally:
            child.send_signal(signal.SIGTERM)
            out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    text = out.decode()
    summary = {line.split()[0]: line.split() for line in text.splitlines()[-4:] if line.strip()}
    for pair in PAIRS:
        assert int(summary[pair][2]) == len(stored(engine, pair)) > 0, text
    engine.dispose()


def test_collect_refuses_a_pair_the_config_does_not_have() -> None:
    done = _cli("collect", "--pairs", "XRP-USDT", "--duration", "1")
    assert done.returncode == 2
    assert "--pairs: XRP-USDT not in the config" in done.stderr


def test_collect_on_a_database_without_the_schema_says_to_run_db_upgrade(tmp_path: Path) -> None:
    (tmp_path / "fresh.db").touch()  # an empty database (a missing file: tests/test_cli_missing_sqlite.py)
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    done = _cli("collect", "--duration", "1", env={"DATABASE_URL": url})
    assert done.returncode == 1
    assert "not migrated" in done.stderr and "okx-collector db upgrade" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
