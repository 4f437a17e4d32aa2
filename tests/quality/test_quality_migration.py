"""Migration 0002 (validation_runs, validation_findings): up, down and up again on SQLite and PostgreSQL, and the
migrated schema equals the models (autogenerate finds nothing to do)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import collectors.storage.migrate
from collectors.storage.migrate import current_revision, head_revision, upgrade
from collectors.storage.schema import Base

_NEW = {"validation_runs", "validation_findings"}


def test_head_is_the_validation_migration() -> None:
    assert head_revision() == "0002"


def test_the_migrated_schema_equals_the_models(engine: Engine) -> None:
    assert current_revision(engine) == "0002"
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    names = set(inspect(engine).get_table_names())
    assert _NEW <= names
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("validation_findings")}
    assert indexes == {"ix_validation_findings_pair"}


def test_downgrade_to_0001_removes_only_the_new_tables_and_upgrade_restores_them(engine: Engine) -> None:
    _downgrade(engine, "0001")
    after_down = set(inspect(engine).get_table_names())
    assert not (_NEW & after_down)
    assert {"trades", "candles", "coverage", "exchange_candles"} <= after_down
    assert upgrade(engine) == "0002"
    assert _NEW <= set(inspect(engine).get_table_names())


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(collectors.storage.migrate.__file__).with_name("migrations"))
    )
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
