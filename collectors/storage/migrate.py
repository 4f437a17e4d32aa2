"""Schema migrations (Alembic), run programmatically: ``okx-collector db upgrade`` calls :func:`upgrade`.

This is a storage boundary: SQLAlchemy and Alembic errors leave it only as :class:`StorageError`
(``transient`` when retrying later can help, e.g. the server is unreachable; not for an unknown revision).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors.errors import StorageError
from collectors.storage.engine import storage_error

__all__ = ["current_revision", "head_revision", "upgrade"]

_SCRIPTS = Path(__file__).with_name("migrations")
_T = TypeVar("_T")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="the schema", action=action) from exc
    except CommandError as exc:
        raise StorageError(f"{action} the schema: {exc}", transient=False) from exc


def _on_connection(engine: Engine, action: str, work: Callable[[Connection], _T]) -> _T:
    with _translated(action), engine.connect() as connection:
        return work(connection)


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to ``revision``; returns the revision it is at afterwards.

    Raises :class:`StorageError` (transient when the database cannot be reached).
    """
    config = _config()

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    _on_connection(engine, "migrating", run)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` before the first upgrade); raises :class:`StorageError`."""
    return _on_connection(
        engine, "reading", lambda connection: MigrationContext.configure(connection).get_current_revision()
    )


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def require_current_schema(engine: Engine, *, shown_url: str) -> None:
    """Refuse a database whose schema is missing or behind the code's, saying how to fix it (a collector or a
    job on such a database would fail later, mid-run, on a missing table or column). ``shown_url`` names the
    database in the message (masked: no password)."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no schema" if current is None else f"is at revision {current}, not {head}"
        raise StorageError(
            f"database {shown_url} is not migrated ({state}): run `okx-collector db upgrade` first",
            transient=False,
        )
