"""The one exception tree of the library.

::

    CollectorError
      ConfigError                 a settings or config file value is invalid     fatal
      ExchangeError               anything exchange-side; carries context        (see subclasses)
        TransportError            network, WebSocket closed, timeout             retryable
        RateLimited               HTTP 429 or an exchange rate-limit code        retryable
        ApiError                  error code in an exchange envelope             retryable iff transient
        SubscriptionRejected      WebSocket {"event": "error"} for a subscribe   fatal for that channel
      BookIntegrityError          seqId gap or checksum mismatch                 resubscribe, never patched
      ParseError                  payload does not match the wire format         fatal (a bug or a bad frame)
        InvalidRecord             a parsed record breaks a domain rule (price<=0) fatal for that record
      QueryError                  bad request arguments caught before sending    fatal
      StorageError                database failure at the storage boundary       retryable iff transient

Every instance says whether retrying can help: ``exc.retryable`` reads ``exc.transient``, which is fixed per
class (``TransportError``, ``RateLimited``: true; the others false) except for ``ApiError`` and ``StorageError``,
whose constructor decides it per instance (``transient=``). :func:`is_retryable` is the same answer for any
exception (false for foreign ones). Which OKX codes are transient is decided in one table,
``collectors/exchanges/okx/codes.py``.

Library code raises only these for failures of the outside world and of the data it sends us; third-party
errors are translated at the boundary with ``raise Ours(...) from exc``. A caller's misuse of an API (a wrong
argument type, an impossible option, a call out of order) stays ``ValueError`` / ``TypeError``: that is a bug
in the calling code, not a condition to handle (docs/architecture.md, rule 4).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "BookIntegrityError",
    "CollectorError",
    "ConfigError",
    "ExchangeError",
    "InvalidRecord",
    "ParseError",
    "QueryError",
    "RateLimited",
    "StorageError",
    "SubscriptionRejected",
    "TransportError",
    "is_retryable",
]


class CollectorError(Exception):
    """Base of every error the library raises on purpose."""

    # whether the condition can pass by itself; classes fix it, ApiError and StorageError set it per instance
    transient: bool = False

    @property
    def retryable(self) -> bool:
        """Whether retrying the operation that raised this error can succeed."""
        return self.transient

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt without calling __init__ (several subclasses take required keyword arguments, which the
        # default BaseException.__reduce__ cannot pass), so every error survives pickle and copy whole
        return _rebuild, (type(self), self.args), self.__dict__


class ConfigError(CollectorError):
    """A setting or a config-file value is invalid; the message names the field and the value."""


class ExchangeError(CollectorError):
    """Something went wrong talking to an exchange."""

    def __init__(
        self,
        message: str,
        *,
        inst_id: str | None = None,
        channel: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.inst_id = inst_id
        self.channel = channel
        self.endpoint = endpoint


class TransportError(ExchangeError):
    """Network failure, closed WebSocket or timeout."""

    transient = True


class RateLimited(ExchangeError):
    """The exchange refused the request for rate reasons; ``retry_after_s`` when the exchange said so, ``code``
    the exchange's error code when there was one (None for a bare HTTP 429)."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        code: str | None = None,
        **context: str | None,
    ) -> None:
        super().__init__(message, **context)
        self.retry_after_s = retry_after_s
        self.code = code


class ApiError(ExchangeError):
    """The exchange answered with an error code in its envelope; ``transient`` when that code can pass."""

    def __init__(self, message: str, *, code: str, transient: bool = False, **context: str | None) -> None:
        super().__init__(message, **context)
        self.code = code
        self.transient = transient


class SubscriptionRejected(ExchangeError):
    """The exchange rejected a subscription; retrying the same request will not help."""


class BookIntegrityError(CollectorError):
    """An order-book stream lost continuity; the book must be resubscribed, never patched."""


class ParseError(CollectorError):
    """A payload does not match the expected wire format."""


class InvalidRecord(ParseError):
    """A record built from outside data breaks a domain rule (``collectors.validation``).

    ``field`` names the offending field (``"price"``, ``"bids[2].size"``) and ``value`` is its ``repr``.
    """

    def __init__(self, message: str, *, field: str, value: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class QueryError(CollectorError):
    """Request arguments are invalid; caught before anything is sent."""


class StorageError(CollectorError):
    """A database operation failed.

    ``transient``: retrying later can succeed (connection lost, server restarting, lock timeout).
    ``bad_data``: the database refused some row's values (constraint, type, range); other rows may be fine.
    """

    def __init__(self, message: str, *, transient: bool, bad_data: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.bad_data = bad_data


def _rebuild(cls: type[CollectorError], args: tuple[Any, ...]) -> CollectorError:
    exc = cls.__new__(cls)
    exc.args = args
    return exc


def is_retryable(exc: BaseException) -> bool:
    """Whether retrying the operation that raised ``exc`` can succeed."""
    return isinstance(exc, CollectorError) and exc.retryable
