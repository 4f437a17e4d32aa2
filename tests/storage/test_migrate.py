"""Schema migrations at the storage boundary: no SQLAlchemy or Alembic error escapes, only StorageError."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.errors import StorageError, is_retryable
from collectors.storage.engine import make_engine
from collectors.storage.migrate import current_revision, head_revision, upgrade


def test_an_unreachable_database_is_a_transient_storage_error() -> None:
    down = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    for call in (upgrade, current_revision):
        with pytest.raises(StorageError, match="Connection refused") as raised:
            call(down)
        assert raised.value.transient and is_retryable(raised.value)
    down.dispose()


def test_an_unopenable_sqlite_file_is_a_storage_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
    (tmp_path / "gone").rmdir()
    (tmp_path / "gone").write_text("")  # a file where the folder was
    with pytest.raises(StorageError, match="unable to open database file"):
        upgrade(engine)
    engine.dispose()


def test_an_unknown_revision_is_a_fatal_storage_error(engine: Engine) -> None:
    with pytest.raises(StorageError, match="no-such-revision") as raised:
        upgrade(engine, "no-such-revision")
    assert not raised.value.transient and not is_retryable(raised.value)
    assert current_revision(engine) == head_revision()


def test_a_database_behind_or_without_the_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    from collectors.storage.migrate import require_current_schema

    engine = make_engine(f"sqlite:///{tmp_path / 'behind.db'}")
    try:
        with pytest.raises(StorageError, match=r"has no schema.*okx-collector db upgrade"):
            require_current_schema(engine, shown_url="sqlite:///behind.db")
        upgrade(engine, "0001")
        with pytest.raises(StorageError, match=f"is at revision 0001, not {head_revision()}") as caught:
            require_current_schema(engine, shown_url="sqlite:///behind.db")
        assert not is_retryable(caught.value) and "sqlite:///behind.db" in str(caught.value)
        upgrade(engine)
        require_current_schema(engine, shown_url="sqlite:///behind.db")  # at head: no error
    finally:
        engine.dispose()
