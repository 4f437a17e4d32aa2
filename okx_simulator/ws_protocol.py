"""The WebSocket request side as a pure function: one client text frame in, replies and actions out.

Rules (API.md 1.3/1.4): text ``ping`` -> text ``pong``; anything that is not a JSON object with a known
``op`` -> 60012 "Illegal request: <echo>"; one ack per arg; an unknown channel/instId, or a channel of the
other endpoint, -> 60018; ``login`` checks OKX's HMAC-SHA256 signature (60009 when wrong).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final

from okx_simulator.candles import WS_BARS
from okx_simulator.config import Credentials
from okx_simulator.wire import ack, error_event

__all__ = ["BUSINESS_CHANNELS", "PUBLIC_CHANNELS", "Outcome", "handle_text", "login_sign"]

Json = dict[str, Any]
PUBLIC_CHANNELS: Final = frozenset({"trades", "tickers", "books5", "books", "bbo-tbt"})
BUSINESS_CHANNELS: Final = frozenset({"trades-all", *(f"candle{bar}" for bar in WS_BARS)})
_LOGIN_WINDOW_MS: Final = 30_000


@dataclass(slots=True)
class Outcome:
    """What the connection must do for one client frame."""

    replies: list[Json | str] = field(default_factory=list)
    subscribe: list[tuple[str, str, Json]] = field(default_factory=list)
    unsubscribe: list[tuple[str, str]] = field(default_factory=list)
    logged_in: bool = False
    login_failed: bool = False


def _channels(endpoint: str) -> frozenset[str]:
    return PUBLIC_CHANNELS if endpoint == "public" else BUSINESS_CHANNELS


def handle_text(
    text: str,
    *,
    endpoint: str,
    conn_id: str,
    inst_ids: Collection[str],
    credentials: Credentials,
    now_ms: int,
) -> Outcome:
    """Decide the answer to one text frame from the client."""
    out = Outcome()
    if text == "ping":
        out.replies.append("pong")
        return out
    try:
        request = json.loads(text)
    except ValueError:
        request = None
    op = request.get("op") if isinstance(request, dict) else None
    request_id = request.get("id") if isinstance(request, dict) else None
    request_id = str(request_id) if request_id is not None else None
    args = request.get("args") if isinstance(request, dict) else None
    if op not in ("subscribe", "unsubscribe", "login") or not isinstance(args, list) or not args:
        out.replies.append(error_event("60012", f"Illegal request: {text}", conn_id, request_id))
        return out
    if op == "login":
        _login(out, args[0], conn_id, credentials, now_ms)
        return out
    for arg in args:
        _one_arg(out, op, arg, endpoint=endpoint, conn_id=conn_id, inst_ids=inst_ids, request_id=request_id)
    return out


def _one_arg(
    out: Outcome,
    op: str,
    arg: Any,
    *,
    endpoint: str,
    conn_id: str,
    inst_ids: Collection[str],
    request_id: str | None,
) -> None:
    if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
        out.replies.append(error_event("60012", f"Illegal request: {json.dumps(arg)}", conn_id, request_id))
        return
    channel, inst_id = arg["channel"], str(arg.get("instId", ""))
    if channel not in _channels(endpoint) or inst_id not in inst_ids:
        msg = (
            f"Subscribe failed, wrong URL or channel:{channel},instId:{inst_id} doesn't exist. "
            "Please use the correct URL, channel and parameters referring to API document."
        )
        out.replies.append(error_event("60018", msg, conn_id, request_id))
        return
    echo = {"channel": channel, "instId": inst_id}
    out.replies.append(ack(op, echo, conn_id, request_id))
    if op == "subscribe":
        out.subscribe.append((channel, inst_id, echo))
    else:
        out.unsubscribe.append((channel, inst_id))


def login_sign(secret_key: str, timestamp: str) -> str:
    """OKX WebSocket login signature: base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify"))."""
    digest = hmac.new(secret_key.encode(), f"{timestamp}GET/users/self/verify".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def _login(out: Outcome, arg: Any, conn_id: str, credentials: Credentials, now_ms: int) -> None:
    if not isinstance(arg, dict):
        out.replies.append(error_event("60012", f"Illegal request: {json.dumps(arg)}", conn_id))
        return
    timestamp = str(arg.get("timestamp", ""))
    try:
        skew_ms = abs(now_ms - int(float(timestamp) * 1000))
    except ValueError:
        out.replies.append(error_event("60004", "Invalid timestamp", conn_id))
        return
    if skew_ms > _LOGIN_WINDOW_MS:
        out.replies.append(error_event("60006", "Timestamp request expired", conn_id))
        return
    expected = login_sign(credentials.secret_key, timestamp)
    valid = (
        arg.get("apiKey") == credentials.api_key
        and arg.get("passphrase") == credentials.passphrase
        and hmac.compare_digest(str(arg.get("sign", "")), expected)
    )
    if not valid:
        out.replies.append(error_event("60009", "Login failed.", conn_id))
        out.login_failed = True
        return
    out.logged_in = True
    out.replies.append({"event": "login", "code": "0", "msg": "", "connId": conn_id})
