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
