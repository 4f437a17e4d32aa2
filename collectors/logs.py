"""The process's logging, set up in one place (``okx-collector``'s ``main()`` calls :func:`configure_logging`).

Formats (``--log-format``, ``COLLECTOR_LOG_FORMAT``, the config's ``ops.log_format``; docs/observability.md):

* ``text``: ``2026-11-26T17:16:18.836Z WARNING collectors.live.core: BTC-USDT: trade ids 5-7 unrecoverable: ...``
* ``json``: one object a line: ``{"ts": "...Z", "level": "WARNING", "logger": "...", "msg": "...", "exc": "..."}``
* ``kv``: ``ts=...Z level=WARNING logger=collectors.live.core msg="BTC-USDT: trade ids ..."``

Timestamps are UTC with milliseconds. Every configured secret (the OKX API key, secret and passphrase) is
replaced by ``***`` in every formatted line, whatever put it there (a message, an argument, a traceback, a stack),
also as it looks URL-encoded, inside a ``repr`` or escaped as JSON (a passphrase may hold quotes, backslashes,
``+`` or ``%``): the message and the traceback are masked before json or kv escape them. The library never logs
the secrets; this is the net under that rule. A process whose handlers are not ours (a Prefect worker's flow
run) gets the same net from :func:`install_mask`: a filter on each of its handlers, their formats untouched.
The collectors log events worth a human's attention (a connection lost or refused, a hole REST could not fill,
a stop waiting for the database), never a line per message.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Literal, TextIO
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from collectors.settings import Settings

__all__ = [
    "LOG_FORMATS",
    "LogFormat",
    "SecretMask",
    "configure_logging",
    "formatter",
    "install_mask",
    "printable",
    "settings_secrets",
]

LogFormat = Literal["text", "json", "kv"]
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json", "kv")
_MASK: Final = "***"
_QUIET: Final = ("alembic", "httpx", "httpcore", "websockets", "aiohttp.access")  # INFO per request/frame


def _utc(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _disguises(secret: str) -> set[str]:
    """``secret`` as it can appear in a line: itself, URL-encoded (a query or a form), inside a ``repr`` and
    escaped as JSON (ASCII-only or not)."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def _message(record: logging.LogRecord) -> str:
    """The record's message; when its arguments do not fit its format (a bug at the call), the format and the
    arguments' repr, to be masked like any text (logging's own error path would print them raw to stderr)."""
    try:
        return record.getMessage()
    except (TypeError, ValueError, KeyError) as exc:
        return (
            f"{record.msg} (arguments not matching the format: {type(exc).__name__}: {exc}; "
            f"arguments: {record.args!r})"
        )


class _Masker:
    """Replaces every disguise of the secrets by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first: a secret containing another (or a disguise longer than another's) is masked whole
        self.secrets = sorted({d for s in secrets if s for d in _disguises(s)}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _MASK)
        return text


class _Base(logging.Formatter, _Masker):
    def __init__(self, secrets: Iterable[str]) -> None:
        logging.Formatter.__init__(self)
        _Masker.__init__(self, secrets)

    def format(self, record: logging.LogRecord) -> str:
        exc = self._exception(record)
        stack = record.stack_info or None
        # masked before rendering: json and kv escape quotes and backslashes, which would hide a secret from
        # a mask of the finished line; the finished line is masked too (the net under the net)
        line = self.render(
            record,
            self.mask(_message(record)),
            None if exc is None else self.mask(exc),
            None if stack is None else self.mask(stack),
        )
        return self.mask(line)

    def _exception(self, record: logging.LogRecord) -> str | None:
        if record.exc_info:
            return self.formatException(record.exc_info)
        return record.exc_text or None

    def render(self, record: logging.LogRecord, message: str, exc: str | None, stack: str | None) -> str:
        raise NotImplementedError


def printable(text: str, keep: str = "") -> str:
    """``text`` with every unprintable character (ESC, NUL, DEL, C1 controls...; those in ``keep`` excepted)
    as a JSON ``\\uXXXX`` escape: text from the wire cannot drive a terminal or cut a line."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in keep else json.dumps(c, ensure_ascii=True)[1:-1] for c in text
    )


class _Text(_Base):
    def render(self, record: logging.LogRecord, message: str, exc: str | None, stack: str | None) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {message}"
        return printable("\n".join(part for part in (line, exc, stack) if part is not None), keep="\n\t")


class _Json(_Base):
    def render(self, record: logging.LogRecord, message: str, exc: str | None, stack: str | None) -> str:
        body = {"ts": _utc(record), "level": record.levelname, "logger": record.name, "msg": message}
        if exc is not None:
            body["exc"] = exc
        if stack is not None:
            body["stack"] = stack
        return printable(json.dumps(body, ensure_ascii=False))


def _kv_value(text: str) -> str:
    if text and text.isprintable() and not any(c.isspace() or c in '"=' for c in text):
        return text
    return printable(json.dumps(text, ensure_ascii=False))  # quoted, controls escaped: one event, one line


class _KeyValue(_Base):
    def render(self, record: logging.LogRecord, message: str, exc: str | None, stack: str | None) -> str:
        pairs = [("ts", _utc(record)), ("level", record.levelname), ("logger", record.name), ("msg", message)]
        if exc is not None:
            pairs.append(("exc", exc))
        if stack is not None:
            pairs.append(("stack", stack))
        return " ".join(f"{k}={_kv_value(v)}" for k, v in pairs)


_FORMATTERS: Final[dict[str, type[_Base]]] = {"text": _Text, "json": _Json, "kv": _KeyValue}


def formatter(log_format: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    """The formatter of ``log_format`` masking ``secrets``; ValueError for an unknown format."""
    if log_format not in _FORMATTERS:
        raise ValueError(f"unknown log format {log_format!r}; use one of {', '.join(LOG_FORMATS)}")
    return _FORMATTERS[log_format](secrets)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to ``sys.stderr`` as it is at each record, not as it was at setup: a test harness or a
    daemon may swap ``sys.stderr``, and a handler holding the old (closed) one loses every later line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # always the current sys.stderr


def configure_logging(
    log_format: str,
    *,
    verbose: bool = False,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every log record of the process to ``stream`` (stderr) in ``log_format``; INFO and up (DEBUG with
    ``verbose``), the per-request INFO of HTTP and migration libraries only with ``verbose``. Replaces the root
    logger's handlers (called once, at the edge). Returns the handler."""
    handler: logging.StreamHandler = logging.StreamHandler(stream) if stream is not None else _Stderr()  # type: ignore[type-arg]
    handler.setFormatter(formatter(log_format, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    return handler


def settings_secrets(settings: Settings) -> list[str]:
    """The secrets of ``settings`` that no log line may show (the OKX API key, secret and passphrase)."""
    values = (settings.okx_api_key, settings.okx_api_secret, settings.okx_api_passphrase)
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


class SecretMask(logging.Filter):
    """A handler filter masking the secrets in a record before the handler formats it, whatever its format
    (Prefect's handlers keep theirs): the message is rendered and masked (``args`` cleared), the traceback and
    the stack masked as text."""

    def __init__(self) -> None:
        super().__init__()
        self._masker = _Masker(())
        self._given: set[str] = set()

    def add(self, secrets: Iterable[str]) -> None:
        self._given |= {s for s in secrets if s}
        self._masker = _Masker(self._given)

    def filter(self, record: logging.LogRecord) -> bool:
        masker = self._masker
        if not masker.secrets:
            return True
        record.msg, record.args = masker.mask(_message(record)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = masker.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = masker.mask(record.stack_info)
        return True


_PROCESS_MASK: Final = SecretMask()
_INSTALL_LOCK: Final = threading.Lock()


def install_mask(secrets: Iterable[str]) -> SecretMask:
    """Mask ``secrets`` in every record any handler of the process handles: the process's one
    :class:`SecretMask` learns them and is added to every handler of every logger that lacks it (Prefect's
    console and API handlers included). Idempotent: calling it again adds no second filter and no handler;
    call it again after handlers were added. Returns the filter."""
    with _INSTALL_LOCK:
        _PROCESS_MASK.add(secrets)
        loggers = [logging.getLogger()]
        loggers += [
            lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
        ]
        for logger in loggers:
            for handler in list(logger.handlers):
                if _PROCESS_MASK not in handler.filters:
                    handler.addFilter(_PROCESS_MASK)
    return _PROCESS_MASK
