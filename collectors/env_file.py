"""A ``.env`` file that holds OKX API secrets must be private to its owner, as ssh keys and ``.pgpass`` must.

:func:`check_env_file` refuses (``ConfigError``) such a file when its group or other users have any access to
it (mode bits ``0o077``): the message names the file, the secrets it holds (names only) and the ``chmod`` fix.
Setting ``COLLECTOR_ALLOW_READABLE_SECRETS=1`` accepts it with a warning instead. Secrets given in the real
environment are not touched by this check, nor is a ``.env`` without secrets. Not checked where the OS has no
POSIX permission bits (Windows).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final

from dotenv import dotenv_values

from collectors.errors import ConfigError

__all__ = [
    "OVERRIDE_VARIABLE",
    "SECRET_VARIABLES",
    "check_env_file",
    "ensure_readable",
    "exposure",
    "foreign_owner",
]

log = logging.getLogger(__name__)

SECRET_VARIABLES: Final = ("OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE")
OVERRIDE_VARIABLE: Final = "COLLECTOR_ALLOW_READABLE_SECRETS"
_NOT_OWNER: Final = 0o077  # any permission for the group or for others


def exposure(path: Path, held: list[str], mode: int) -> str | None:
    """What is wrong with a secrets file of permission ``mode`` holding the variables ``held`` (None: nothing)."""
    if not held or not mode & _NOT_OWNER:
        return None
    who = " and ".join(w for w, bits in (("its group", 0o070), ("other users", 0o007)) if mode & bits)
    return (
        f"{path} holds {', '.join(held)} and is open to {who} (mode {mode:04o}; it must be 0600 or stricter): "
        f"run `chmod 600 {path}`"
    )


def foreign_owner(path: Path, held: list[str], owner: int, user: int) -> str | None:
    """What is wrong with a secrets file holding ``held`` owned by uid ``owner`` when this process runs as uid
    ``user`` (None: its own, or root's)."""
    if not held or owner in (user, 0):
        return None
    return (
        f"{path} holds {', '.join(held)} and is owned by uid {owner}, not by this process's user (uid {user}) "
        f"or root: run `chown {user} {path}`"
    )


_SPECIAL: Final = (
    (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)  # fmt: skip


def ensure_readable(path: Path) -> None:
    """ConfigError naming ``path`` when it exists but cannot be read (permissions, I/O) or is a FIFO, socket or
    device (reading a FIFO would block every command at start); a missing file or a directory (a virtualenv
    named ``.env``) passes."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:  # no file, or a dangling symlink: nothing to read
        return
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for test, kind in _SPECIAL:
        if test(mode):
            raise ConfigError(f"{path} is not a regular file ({kind}): remove it or make it a file")
    if not stat.S_ISREG(mode):
        return
    try:
        with path.open("rb") as file:
            file.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def check_env_file(path: Path, *, allow_readable: bool) -> None:
    """Refuse ``path`` when it holds a non-empty OKX secret and its group or others may access it, or another
    user owns it; with ``allow_readable`` log a warning instead. A missing file, or one without secrets,
    passes."""
    if os.name != "posix" or not path.is_file():
        return
    ensure_readable(path)
    held = [
        name.upper()
        for name, value in dotenv_values(path).items()
        if name.upper() in SECRET_VARIABLES and value
    ]
    status = path.stat()  # follows a symlink: the file holding the secrets is what must be private
    problem = exposure(path, held, stat.S_IMODE(status.st_mode)) or foreign_owner(
        path, held, status.st_uid, os.geteuid()
    )
    if problem is None:
        return
    if allow_readable:
        log.warning("%s (accepted: %s is set)", problem, OVERRIDE_VARIABLE)
        return
    raise ConfigError(f"{problem}, or set {OVERRIDE_VARIABLE}=1 to accept it")
