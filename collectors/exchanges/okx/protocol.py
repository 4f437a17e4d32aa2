"""What we send to OKX's WebSocket, pure: request texts, the signed login, and which endpoint a channel needs.

* Subscribe / unsubscribe: many args per request, one ack per arg; OKX caps the total length of one request's
  channels at 64 KB (shared/okx/API.md 1.2), so :func:`subscription_requests` splits the args into requests
  whose encoded text stays under :data:`MAX_REQUEST_BYTES`.
* Login: ``sign = base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify"))`` with ``timestamp``
  in epoch seconds (OKX docs, WebSocket login). The time is a parameter. The secret and passphrase live in
  :class:`Credentials` as ``SecretStr`` and the finished request is a ``SecretStr`` too, so neither shows in a
  repr, a log line or an exception (``str()`` of a SecretStr is ``**********``).
* Endpoints: :data:`CHANNEL_ENDPOINTS` is the one table (trades, books5, books, tickers on /public; trades-all
  and every candle<bar> on /business).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final, Literal

import orjson
from pydantic import SecretStr

__all__ = [
    "CHANNEL_ENDPOINTS",
    "MAX_REQUEST_BYTES",
    "PING",
    "ChannelArg",
    "Credentials",
    "Endpoint",
    "channel_args",
    "endpoint_for",
    "login_request",
    "login_signature",
    "subscription_requests",
]

PING: Final = "ping"  # plain text, not JSON: the JSON string "ping" gets 60012
# OKX: "The total length of multiple channels cannot exceed 64 KB" per request; we keep the whole text under it.
MAX_REQUEST_BYTES: Final = 64 * 1024 - 512
_VERIFY_PATH: Final = "/users/self/verify"


class Endpoint(str, Enum):
    PUBLIC = "public"  # spec.WS_PUBLIC_URL
    BUSINESS = "business"  # spec.WS_BUSINESS_URL


CHANNEL_ENDPOINTS: Final = MappingProxyType(
    {
        "trades": Endpoint.PUBLIC,
        "books5": Endpoint.PUBLIC,
        "books": Endpoint.PUBLIC,
        "bbo-tbt": Endpoint.PUBLIC,
        "tickers": Endpoint.PUBLIC,
        "trades-all": Endpoint.BUSINESS,
        "candle<bar>": Endpoint.BUSINESS,  # every candle<bar> channel (API.md 1.1; on /public: 60018)
    }
)


def endpoint_for(channel: str) -> Endpoint:
    """The endpoint serving ``channel`` ("candle1m" -> BUSINESS); ValueError for a channel we do not use."""
    key = "candle<bar>" if channel.startswith("candle") and len(channel) > 6 else channel
    try:
        return CHANNEL_ENDPOINTS[key]
    except KeyError:
        raise ValueError(f"no OKX endpoint known for channel {channel!r}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelArg:
    channel: str
    inst_id: str

    def wire(self) -> dict[str, str]:
        return {"channel": self.channel, "instId": self.inst_id}


def subscription_requests(
    args: Iterable[ChannelArg],
    *,
    op: Literal["subscribe", "unsubscribe"] = "subscribe",
    max_bytes: int = MAX_REQUEST_BYTES,
) -> list[str]:
    """Request texts carrying every arg once, in order, each at most ``max_bytes`` long (UTF-8)."""
    head, tail = f'{{"op":"{op}","args":['.encode(), b"]}"
    requests: list[str] = []
    batch: list[bytes] = []
    size = len(head) + len(tail)
    for arg in args:
        item = orjson.dumps(arg.wire())
        extra = len(item) + (1 if batch else 0)
        if len(head) + len(tail) + len(item) > max_bytes:
            raise ValueError(f"one arg is longer than max_bytes={max_bytes}: {arg}")
        if batch and size + extra > max_bytes:
            requests.append((head + b",".join(batch) + tail).decode())
            batch, size, extra = [], len(head) + len(tail), len(item)
        batch.append(item)
        size += extra
    if batch:
        requests.append((head + b",".join(batch) + tail).decode())
    return requests


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """OKX API credentials; ``secret`` and ``passphrase`` never appear in a repr (pydantic ``SecretStr``)."""

    api_key: str
    secret: SecretStr
    passphrase: SecretStr

    @classmethod
    def of(cls, *, api_key: str, secret: SecretStr | str, passphrase: SecretStr | str) -> Credentials:
        return cls(api_key=api_key, secret=_secret(secret), passphrase=_secret(passphrase))


def _secret(value: SecretStr | str) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value)


def login_signature(secret: SecretStr | str, *, timestamp_s: int) -> SecretStr:
    """OKX's WebSocket login ``sign`` for ``timestamp_s`` (epoch seconds), as a SecretStr."""
    key = _secret(secret).get_secret_value().encode()
    message = f"{timestamp_s}GET{_VERIFY_PATH}".encode()
    return SecretStr(base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode())


def login_request(credentials: Credentials, *, now_ms: int) -> SecretStr:
    """The ``login`` request text for ``now_ms``; send ``.get_secret_value()``, never log it."""
    timestamp_s = now_ms // 1000
    arg = {
        "apiKey": credentials.api_key,
        "passphrase": credentials.passphrase.get_secret_value(),
        "timestamp": str(timestamp_s),
        "sign": login_signature(credentials.secret, timestamp_s=timestamp_s).get_secret_value(),
    }
    return SecretStr(orjson.dumps({"op": "login", "args": [arg]}).decode())


def channel_args(channels: Sequence[str], inst_ids: Sequence[str]) -> list[ChannelArg]:
    """Every (channel, inst_id) pair, channels outer: the args of one connection's subscription."""
    return [ChannelArg(channel=c, inst_id=i) for c in channels for i in inst_ids]
