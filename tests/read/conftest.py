"""The read tests' databases: the same rows in a SQLite file and in the session's PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.read import MarketData
from tests.read.fill import everything, sqlite_engine, write


@pytest.fixture
def both(tmp_path: Path, pg_engine: Engine) -> Iterator[tuple[MarketData, MarketData]]:
    """Readers of PostgreSQL and of SQLite, both filled with :func:`tests.read.fill.everything`."""
    lite = sqlite_engine(tmp_path)
    rows = everything()
    write(lite, rows)
    write(pg_engine, rows)
    yield MarketData(pg_engine), MarketData(lite)
    lite.dispose()
