"""A .env file holding OKX secrets must be private to its owner (real files, real modes); secrets from the real
environment keep working; COLLECTOR_ALLOW_READABLE_SECRETS=1 accepts an open file with a warning."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.errors import ConfigError
from collectors.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-value-never-shown"
_VARIABLES = ("OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE", "COLLECTOR_ALLOW_READABLE_SECRETS")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (where .env is read) and an environment without OKX secrets."""
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _env_file(
    directory: Path, mode: int, text: str = f"OKX_API_KEY=key-1\nOKX_API_SECRET={SECRET}\n"
) -> Path:
    path = directory / ".env"
    path.write_text(text)
    path.chmod(mode)
    assert path.stat().st_mode & 0o777 == mode
    return path


@pytest.mark.parametrize(
    ("mode", "who"),
    [
        (0o644, "its group and other users"),
        (0o604, "other users"),
        (0o640, "its group"),
        (0o660, "its group"),
    ],
)
def test_a_env_file_with_secrets_open_to_others_is_refused_naming_the_file_and_the_fix(
    workdir: Path, mode: int, who: str
) -> None:
    _env_file(workdir, mode)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message == (
        f".env holds OKX_API_KEY, OKX_API_SECRET and is open to {who} (mode {mode:04o}; it must be 0600 or "
        "stricter): run `chmod 600 .env`, or set COLLECTOR_ALLOW_READABLE_SECRETS=1 to accept it"
    )
    assert SECRET not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_env_file_gives_its_secrets(workdir: Path, mode: int) -> None:
    _env_file(workdir, mode)
    settings = load_settings()
    assert settings.okx_api_key is not None and settings.okx_api_key.get_secret_value() == "key-1"
    assert settings.okx_api_secret is not None and settings.okx_api_secret.get_secret_value() == SECRET


def test_an_open_env_file_without_secrets_is_fine(workdir: Path) -> None:
    _env_file(workdir, 0o644, "DATABASE_URL=sqlite:///x.db\nOKX_API_KEY=\n")  # an empty value holds nothing
    settings = load_settings()
    assert settings.database_url == "sqlite:///x.db"
    assert settings.okx_api_key is not None and settings.okx_api_key.get_secret_value() == ""


def test_secrets_from_the_environment_keep_working_beside_an_open_env_file(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env_file(workdir, 0o644, "DATABASE_URL=sqlite:///y.db\n")
    monkeypatch.setenv("OKX_API_SECRET", SECRET)
    monkeypatch.setenv("OKX_API_PASSPHRASE", "pass-1")
    settings = load_settings()
    assert settings.okx_api_secret is not None and settings.okx_api_secret.get_secret_value() == SECRET
    assert (
        settings.okx_api_passphrase is not None and settings.okx_api_passphrase.get_secret_value() == "pass-1"
    )
    assert settings.database_url == "sqlite:///y.db"


def test_the_override_accepts_an_open_file_with_a_warning(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _env_file(workdir, 0o644)
    monkeypatch.setenv("COLLECTOR_ALLOW_READABLE_SECRETS", "1")
    with caplog.at_level(logging.WARNING, logger="collectors.env_file"):
        settings = load_settings()
    assert settings.okx_api_secret is not None and settings.okx_api_secret.get_secret_value() == SECRET
    assert [r.getMessage() for r in caplog.records] == [
        ".env holds OKX_API_KEY, OKX_API_SECRET and is open to its group and other users (mode 0644; it must be "
        "0600 or stricter): run `chmod 600 .env` (accepted: COLLECTOR_ALLOW_READABLE_SECRETS is set)"
    ]


def test_config_check_exits_2_with_the_fix_and_passes_after_chmod(workdir: Path) -> None:
    path = _env_file(workdir, 0o644)
    env = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    env["PYTHONPATH"] = str(REPO)
    check = [
        sys.executable,
        "-m",
        "flows.cli",
        "config",
        "check",
        "--file",
        str(REPO / "config" / "collectors.yaml"),
    ]
    refused = subprocess.run(check, capture_output=True, text=True, cwd=workdir, env=env, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "run `chmod 600 .env`" in refused.stderr and SECRET not in refused.stderr + refused.stdout
    path.chmod(0o600)
    accepted = subprocess.run(check, capture_output=True, text=True, cwd=workdir, env=env, timeout=120)
    assert accepted.returncode == 0, accepted.stderr
    assert "OKX_API_SECRET" in accepted.stdout and SECRET not in accepted.stdout


def test_a_symlinked_env_file_is_judged_by_the_file_it_points_at(workdir: Path) -> None:
    target = workdir / "secrets" / "okx.env"
    target.parent.mkdir()
    target.write_text(f"OKX_API_SECRET={SECRET}\n")
    target.chmod(0o644)
    (workdir / ".env").symlink_to(target)  # the link's own mode (0777) is not what protects the secret
    with pytest.raises(
        ConfigError, match=r"^\.env holds OKX_API_SECRET and is open to its group and other users"
    ):
        load_settings()
    target.chmod(0o600)
    settings = load_settings()
    assert settings.okx_api_secret is not None and settings.okx_api_secret.get_secret_value() == SECRET


_NOBODY = 65_534


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_env_file_with_secrets_owned_by_another_user_is_refused(workdir: Path) -> None:
    """As ssh does for its keys: a private file another user owns is one that user can rewrite (or read)."""
    path = _env_file(workdir, 0o600)
    os.chown(path, _NOBODY, -1)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value) == (
        f".env holds OKX_API_KEY, OKX_API_SECRET and is owned by uid {_NOBODY}, not by this process's user "
        f"(uid {os.geteuid()}) or root: run `chown {os.geteuid()} .env`, or set COLLECTOR_ALLOW_READABLE_SECRETS=1 "
        "to accept it"
    )
    os.chown(path, os.geteuid(), -1)
    assert load_settings().okx_api_secret is not None


def test_an_unreadable_env_file_is_a_configuration_error_naming_it(workdir: Path) -> None:
    """A .env that cannot be read (here: a link to a file whose read fails with EIO, which works even for root;
    EACCES for a non-root user goes the same way) stops with the file's name, not a traceback."""
    (workdir / ".env").symlink_to("/proc/self/mem")
    with pytest.raises(ConfigError, match=r"^cannot read \.env: Input/output error$"):
        load_settings()


def test_a_secret_in_the_config_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """Secrets are read from the environment or .env only; a config file naming one is refused, unshown."""
    from collectors.config import load_config

    path = tmp_path / "collectors.yaml"
    path.write_text(
        f"exchanges:\n  okx:\n    pairs: [BTC-USDT]\n    api_secret: {SECRET}\nokx_api_passphrase: {SECRET}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "exchanges.okx.api_secret: unknown field" in message
    assert "okx_api_passphrase: unknown field" in message
    assert SECRET not in message


def test_a_env_that_is_a_fifo_is_refused_rather_than_read_forever(workdir: Path) -> None:
    """Reading a FIFO blocks until someone writes to it: every command would hang at start, silently."""
    os.mkfifo(workdir / ".env")
    with pytest.raises(
        ConfigError, match=r"^\.env is not a regular file \(a FIFO\): remove it or make it a file$"
    ):
        load_settings()


def test_a_env_directory_is_left_alone(workdir: Path) -> None:
    """A virtualenv named .env is common: a directory is not a settings file and is ignored, as before."""
    (workdir / ".env").mkdir()
    assert load_settings().okx_api_secret is None
