"""An upgrade keeps every row: a database created at the first revision (0001) and filled in every table is
upgraded to head, and every row reads back equal (exact decimals with their scale, UTC milliseconds, ids past
2**53); a downgrade to 0001 and a new upgrade keep them too. On a new SQLite file and a new PostgreSQL database.

Also: the guard that catches a schema.py change without its migration (compare_metadata, used by
tests/storage/test_tables.py) really reports a difference.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
)

import collectors.storage.migrate
from collectors.storage.engine import make_engine
from collectors.storage.migrate import current_revision, head_revision, upgrade
from collectors.storage.schema import Base
from collectors.storage.types import ExactDecimal, UtcMillis
from tests.conftest import ADMIN_URL

FIRST = "0001"
ROWS_PER_TABLE = 3
# exact values a float would break: scale kept (43210.50), 8 and 18 decimals, 30 significant digits
DECIMALS = (
    Decimal("63707.30000001"),
    Decimal("43210.50"),
    Decimal("0.000000000000000001"),
    Decimal("123456789012345678901.123456789"),
)
BASE_MS = 1_732_406_400_123  # 2024-11-24T00:00:00.123Z
BIG_ID = 2**53 + 1  # not representable as a float


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no schema at all."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield engine
        engine.dispose()
        return
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}")
    name = f"okxc_migrate_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    engine = make_engine(f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _value(column: Column[Any], k: int) -> Any:
    """Row k's value of ``column``: distinct per row (keys stay unique), None in row 2 where allowed."""
    if column.nullable and k == 2:
        return None
    kind = column.type
    if isinstance(kind, ExactDecimal):
        return DECIMALS[(k + len(column.name)) % len(DECIMALS)]
    if isinstance(kind, UtcMillis):
        return BASE_MS + k * 60_000 + len(column.name)
    if isinstance(kind, Boolean):
        return k % 2 == 0
    if isinstance(kind, BigInteger):
        return BIG_ID + k
    if isinstance(kind, Integer):
        return 1_000 + k
    if isinstance(kind, String) and kind.length is not None:
        return f"{column.name[:4]}-{k}"[: kind.length]
    return f'{{"{column.name}": "row {k}, € and ✓"}}'  # Text: unicode kept


def _fill(engine: Engine, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Insert ROWS_PER_TABLE rows into each table (columns as of now); returns what each table holds."""
    with engine.begin() as conn:
        for name in tables:
            table = Base.metadata.tables[name]
            columns = [c for c in table.columns if c.identity is None]
            rows = [{c.name: _value(c, k) for c in columns} for k in range(ROWS_PER_TABLE)]
            conn.execute(insert(table), rows)
    return _read(engine, tables)


def _read(engine: Engine, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            name: [tuple(r) for r in conn.execute(select(Base.metadata.tables[name]).order_by(*_key(name)))]
            for name in tables
        }


def _key(name: str) -> list[Column[Any]]:
    return list(Base.metadata.tables[name].primary_key.columns)


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(collectors.storage.migrate.__file__).with_name("migrations"))
    )
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _exact(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[list[str]]]:
    """Each value with its Python type and text form: 43210.50 and 43210.5 differ here."""
    return {name: [[f"{type(v).__name__}:{v}" for v in row] for row in table] for name, table in rows.items()}


def test_an_upgrade_from_the_first_revision_keeps_every_row_exactly(fresh_engine: Engine) -> None:
    assert upgrade(fresh_engine, FIRST) == FIRST
    tables = sorted(set(inspect(fresh_engine).get_table_names()) - {"alembic_version"})
    assert tables == sorted(
        ["book_snapshots", "candles", "coverage", "exchange_candles", "instruments", "raw_messages",
         "rejected_messages", "tickers", "trades"]
    )  # fmt: skip
    for name in tables:  # the rows are written in the 0001 shape: every 0001 column, nothing else
        at_first = {c["name"] for c in inspect(fresh_engine).get_columns(name)}
        assert at_first == {c.name for c in Base.metadata.tables[name].columns}, name
    before = _fill(fresh_engine, tables)
    trades = before["trades"]
    price = Base.metadata.tables["trades"].c.price
    assert [row[4] for row in trades] == [_value(price, k) for k in range(ROWS_PER_TABLE)]  # exact
    assert {v for table in before.values() for row in table for v in row if isinstance(v, Decimal)} == set(
        DECIMALS
    )
    assert [row[2] for row in trades] == [BIG_ID, BIG_ID + 1, BIG_ID + 2]
    assert [row[3] for row in trades] == [BASE_MS + 2, BASE_MS + 60_002, BASE_MS + 120_002]
    assert [row[0] for row in before["coverage"]] == [1, 2, 3]  # identity ids, kept below

    assert upgrade(fresh_engine) == head_revision()
    after = _read(fresh_engine, tables)
    assert after == before
    assert _exact(after) == _exact(before)

    _downgrade(fresh_engine, FIRST)
    assert current_revision(fresh_engine) == FIRST
    assert _exact(_read(fresh_engine, tables)) == _exact(before)
    assert upgrade(fresh_engine) == head_revision()
    assert _exact(_read(fresh_engine, tables)) == _exact(before)
    with fresh_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_the_schema_guard_reports_a_column_the_migrations_lack(fresh_engine: Engine) -> None:
    """What test_tables.py relies on: a model column without a migration is a difference, not silence."""
    upgrade(fresh_engine)
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    Table("trades", drifted, Column("fee", ExactDecimal()), extend_existing=True)
    with fresh_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), drifted)
    assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "trades", "fee")]
