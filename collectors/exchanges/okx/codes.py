"""Which OKX error codes can pass by themselves: the one table, and the mapping of an envelope error to ours.

OKX reports failures as a non-zero ``code`` in the REST envelope (``{"code": "50011", "msg": ..., "data": []}``,
often with HTTP 200) and in WebSocket ``{"event": "error", "code": ..., "msg": ...}`` frames. Every code in
:data:`RETRYABLE_CODES` is retryable (a rate limit becomes :class:`RateLimited`, the rest a transient
:class:`ApiError`); every other code is a permanent :class:`ApiError` (a bad parameter such as 51000, an
unknown instrument 51001, a wrong URL or channel 60018: sending the same request again cannot help).

Sources, all in shared/okx/API.md: section 2.1 (REST codes, from the OKX docs' error table "D2" and live
answers "T1"/"D5") and section 1.4 (WebSocket codes, OKX docs "D1").
"""

from __future__ import annotations

from enum import Enum
from types import MappingProxyType
from typing import Final

from collectors.errors import ApiError, RateLimited

__all__ = ["RETRYABLE_CODES", "Retry", "error_from_envelope"]


class Retry(str, Enum):
    RATE_LIMIT = "rate_limit"  # back off (RateLimited), do not retry in a tight loop
    TRANSIENT = "transient"  # server-side trouble; retry with backoff (ApiError, transient)


# code -> (kind, where OKX says so). HTTP status as the docs give it; REST codes usually arrive with HTTP 200.
RETRYABLE_CODES: Final = MappingProxyType(
    {
        # REST, API.md 2.1
        "50001": (Retry.TRANSIENT, "HTTP 503 Service temporarily unavailable (D2)"),
        "50004": (Retry.TRANSIENT, "HTTP 400 Endpoint request timeout (D2)"),
        "50011": (
            Retry.RATE_LIMIT,
            "HTTP 429 or 200 Too Many Requests / Rate limit reached (D2, D5, T1 live)",
        ),
        "50013": (Retry.TRANSIENT, "HTTP 429 Systems are busy (D2)"),
        "50026": (Retry.TRANSIENT, "HTTP 500 System error (D2)"),
        # WebSocket, API.md 1.4
        "60014": (Retry.RATE_LIMIT, "Requests too frequent (D1)"),
        "64007": (
            Retry.TRANSIENT,
            "Operation failed due to WebSocket internal error. Please try again later (D1)",
        ),
        # sent as event "notice" before the server closes the connection: reconnecting is the documented answer
        "64008": (
            Retry.TRANSIENT,
            "The connection will soon be closed for a service upgrade. Please reconnect. (D1)",
        ),
    }
)


def error_from_envelope(
    code: str | int,
    msg: str,
    *,
    endpoint: str | None = None,
    inst_id: str | None = None,
    channel: str | None = None,
    retry_after_s: float | None = None,
) -> ApiError | RateLimited:
    """Our error for an OKX error ``code`` (a string in envelopes; the gateway's 404 body has a number).

    ``retry_after_s`` is the caller's reading of a ``Retry-After`` header, if any (OKX sending one is
    unverified). Raises ``ValueError`` for ``code`` "0", which is success (a caller's mistake).
    """
    text = str(code)
    if text == "0":
        raise ValueError("code 0 is success, not an error")
    message = f"OKX {text}: {msg}" if msg else f"OKX {text}"
    kind = RETRYABLE_CODES.get(text, (None, ""))[0]
    if kind is Retry.RATE_LIMIT:
        return RateLimited(
            message,
            retry_after_s=retry_after_s,
            code=text,
            endpoint=endpoint,
            inst_id=inst_id,
            channel=channel,
        )
    return ApiError(
        message,
        code=text,
        transient=kind is Retry.TRANSIENT,
        endpoint=endpoint,
        inst_id=inst_id,
        channel=channel,
    )
