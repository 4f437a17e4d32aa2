"""A mistyped SQLite path: every command but ``db upgrade`` says there is no database there and creates nothing
(SQLite would create an empty file, and the engine its folder, on the first connection)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import _cli

COMMANDS = [
    ("status",),
    ("validate",),
    ("db", "current"),
    ("db", "purge"),
    ("collect", "--duration", "1"),
    ("backfill", "--pairs", "BTC-USDT", "--since", "1d"),
    ("reaggregate", "--pairs", "BTC-USDT", "--from", "2026-01-01", "--to", "2026-01-02"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_a_command_on_a_missing_sqlite_file_says_so_and_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "typo" / "marketdata.db"
    done = _cli(*command, env={"DATABASE_URL": f"sqlite:///{path}"})
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert (
        f"no SQLite database at {path}: check the path, or create it with `okx-collector db upgrade`"
        in done.stderr
    ), done.stderr
    assert "Traceback" not in done.stderr
    assert not path.parent.exists()


def test_db_upgrade_still_creates_the_file_and_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "marketdata.db"
    done = _cli("db", "upgrade", env={"DATABASE_URL": f"sqlite:///{path}"})
    assert done.returncode == 0, done.stderr
    assert path.is_file()


def test_make_engine_without_create_refuses_a_missing_sqlite_file_and_accepts_an_existing_one(
    tmp_path: Path,
) -> None:
    from collectors.errors import StorageError
    from collectors.storage.engine import make_engine

    path = tmp_path / "typo" / "x.db"
    with pytest.raises(StorageError, match=f"no SQLite database at {path}: check the path") as info:
        make_engine(f"sqlite:///{path}", create=False)
    assert info.value.transient is False and not path.parent.exists()
    make_engine(f"sqlite:///{path}").dispose()  # the default creates the folder (the file on first connect)
    path.touch()
    make_engine(f"sqlite:///{path}", create=False).dispose()
    make_engine("sqlite://", create=False).dispose()  # in memory: nothing to miss
