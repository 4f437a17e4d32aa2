"""Database engines: URL normalisation, SQLite pragmas, and error classification at the boundary."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from collectors.errors import ConfigError, StorageError

__all__ = ["CONNECT_TIMEOUT_S", "make_engine", "missing_sqlite_file", "normalize_url", "storage_error"]

# Seconds psycopg waits for a PostgreSQL server to complete a connection (a host that accepts TCP and never
# answers would hang the attempt for ever); a ``connect_timeout`` in the URL's query wins.
CONNECT_TIMEOUT_S = 10


def normalize_url(url: str) -> URL:
    """Parse a database URL; ``postgresql://`` and ``postgres://`` use psycopg 3.

    Raises :class:`ConfigError` for anything that is not SQLite or PostgreSQL.
    """
    try:
        parsed = make_url(
            url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
        )
    except ArgumentError as exc:
        raise ConfigError(f"DATABASE_URL: cannot parse {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    raise ConfigError(
        f"DATABASE_URL: unsupported database {backend!r} in {parsed!r}; use sqlite or postgresql"
    )


def missing_sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names when it does not exist (SQLite would create an empty database there, and
    :func:`make_engine` its folder); ``None`` for any other URL."""
    parsed = normalize_url(url) if isinstance(url, str) else url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # a URI: its own mode= says whether it may create
    return None if Path(database).exists() else Path(database)


def make_engine(url: str | URL, *, create: bool = True, **kwargs: Any) -> Engine:
    """Create an engine. A SQLite file's folder is created; SQLite runs in WAL mode with foreign keys on.
    PostgreSQL connections give up after :data:`CONNECT_TIMEOUT_S` unless the URL sets ``connect_timeout``.

    ``create=False``: a SQLite file that does not exist is a :class:`StorageError` naming it (a mistyped path),
    not a new empty database; for everything that needs a migrated database (only ``db upgrade`` creates)."""
    parsed = normalize_url(url) if isinstance(url, str) else url
    if not create and (missing := missing_sqlite_file(parsed)) is not None:
        raise StorageError(
            f"no SQLite database at {missing}: check the path, or create it with `okx-collector db upgrade`",
            transient=False,
        )
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "connect_timeout" not in parsed.query:  # connect_args override the URL's query: only when it is silent
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
    return create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Errors that a later retry can cure: lost connections, a server restarting, lock contention.
_TRANSIENT_PG = (psycopg.OperationalError, psycopg.InterfaceError)
_TRANSIENT_SQLITE_TEXT = (
    "database is locked",
    "database is busy",
    "disk i/o error",
    "database or disk is full",
    "unable to open database file",  # a missing mount or folder can come back
    "attempt to write a readonly database",
)
# Errors caused by the values of some row: the rest of its batch can still be written.
_BAD_DATA = (psycopg.DataError, psycopg.IntegrityError, sqlite3.IntegrityError, sqlite3.DataError)


def storage_error(exc: BaseException, *, table: str, action: str = "writing") -> StorageError:
    """Translate a driver error into :class:`StorageError`, deciding once whether it is transient."""
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    if isinstance(original, BaseException) and original is not exc:
        return storage_error(original, table=table, action=action)
    transient = isinstance(exc, _TRANSIENT_PG)
    if isinstance(exc, sqlite3.OperationalError):
        transient = any(text in str(exc).lower() for text in _TRANSIENT_SQLITE_TEXT)
    bad_data = isinstance(exc, _BAD_DATA)
    return StorageError(
        f"{action} {table}: {type(exc).__name__}: {exc}".strip(), transient=transient, bad_data=bad_data
    )
