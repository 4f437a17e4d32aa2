"""Prefect tests: one ``prefect_test_harness`` for the whole session (it costs about 10 s to start).

Every test that runs a flow through Prefect's engine lives under tests/flows/ and asks for ``prefect_harness``.
Nesting a second harness would kill the shared server on exit, so no test creates its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("prefect-home")
    saved = {key: os.environ.get(key) for key in _ENV}
    os.environ.update(_ENV)
    os.environ["PREFECT_HOME"] = str(Path(home))
    from prefect.testing.utilities import prefect_test_harness

    try:
        with prefect_test_harness(server_startup_timeout=90):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.pop("PREFECT_HOME", None)


_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
}
