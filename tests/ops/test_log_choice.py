"""Which log format ``okx-collector`` uses: ``--log-format``, else ``COLLECTOR_LOG_FORMAT``, else the config
file's ``ops.log_format``, else text; the settings' OKX secrets are masked whichever it is."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.cli import _configure_logging


@pytest.fixture
def restored_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *, flag: str | None,
    env: str | None, file: str | None,
) -> str:  # fmt: skip
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"ops": {"log_format": file}} if file else {}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("COLLECTOR_CONFIG", str(config))
    monkeypatch.setenv("OKX_API_SECRET", "the-secret-42")
    if env is None:
        monkeypatch.delenv("COLLECTOR_LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("COLLECTOR_LOG_FORMAT", env)
    _configure_logging(argparse.Namespace(log_format=flag, verbose=False))
    capsys.readouterr()
    logging.getLogger("collectors.test").warning("login with %s refused", "the-secret-42")
    (line,) = capsys.readouterr().err.splitlines()
    return line


@pytest.mark.usefixtures("restored_root")
@pytest.mark.parametrize(
    ("flag", "env", "file", "shape"),
    [
        ("json", "kv", "kv", "json"),
        (None, "kv", "json", "kv"),
        (None, None, "json", "json"),
        (None, None, None, "text"),
    ],
)
def test_the_flag_wins_then_the_environment_then_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    flag: str | None, env: str | None, file: str | None, shape: str,
) -> None:  # fmt: skip
    line = _line(tmp_path, monkeypatch, capsys, flag=flag, env=env, file=file)
    if shape == "json":
        assert json.loads(line)["msg"] == "login with *** refused"
    elif shape == "kv":
        assert line.endswith('level=WARNING logger=collectors.test msg="login with *** refused"'), line
    else:
        assert line.endswith(" WARNING collectors.test: login with *** refused"), line
