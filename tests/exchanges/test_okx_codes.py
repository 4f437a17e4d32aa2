"""OKX envelope errors map to ours: rate limits, transient server trouble, permanent request errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors.errors import ApiError, RateLimited, is_retryable
from collectors.exchanges.okx.codes import RETRYABLE_CODES, Retry, error_from_envelope

FIXTURES = Path(__file__).parents[1] / "fixtures" / "okx"


def test_the_recorded_rate_limit_body_is_rate_limited() -> None:
    body = json.loads((FIXTURES / "http_error_rate_limit.json").read_text())
    exc = error_from_envelope(body["code"], body["msg"], endpoint="/api/v5/market/ticker", retry_after_s=1.0)
    assert type(exc) is RateLimited
    assert (str(exc), exc.endpoint, exc.retry_after_s, exc.retryable) == (
        "OKX 50011: Too Many Requests",
        "/api/v5/market/ticker",
        1.0,
        True,
    )


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        ("50001", "Service temporarily unavailable"),
        ("50004", "Endpoint request timeout"),
        ("50013", "Systems are busy"),
        ("50026", "System error"),
        ("64007", "Operation subscribe failed due to WebSocket internal error. Please try again later."),
    ],
)
def test_server_trouble_is_a_transient_api_error(code: str, msg: str) -> None:
    exc = error_from_envelope(code, msg, inst_id="BTC-USDT")
    assert type(exc) is ApiError
    assert (exc.code, exc.transient, exc.retryable, is_retryable(exc), exc.inst_id) == (
        code,
        True,
        True,
        True,
        "BTC-USDT",
    )
    assert str(exc) == f"OKX {code}: {msg}"


def test_websocket_requests_too_frequent_is_rate_limited() -> None:
    exc = error_from_envelope("60014", "Requests too frequent", channel="trades")
    assert type(exc) is RateLimited and exc.channel == "trades" and exc.retry_after_s is None


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        ("51001", "Instrument ID, Instrument ID code, or Spread ID doesn't exist."),
        ("51000", "Parameter bar error"),
        ("50014", "Parameter instType can not be empty"),
        ("60018", "Subscribe failed, wrong URL or channel:candle1m,instId:BTC-USDT doesn't exist."),
        ("60012", 'Illegal request: "ping"'),
    ],
)
def test_request_errors_are_permanent(code: str, msg: str) -> None:
    exc = error_from_envelope(code, msg)
    assert type(exc) is ApiError
    assert (exc.code, exc.transient, exc.retryable) == (code, False, False)


def test_the_gateway_404_body_with_a_numeric_code_is_a_permanent_error() -> None:
    body = json.loads((FIXTURES / "http_error_not_found.json").read_text())
    exc = error_from_envelope(body["code"], body["msg"], endpoint="/api/v5/market/nope")
    assert type(exc) is ApiError
    assert (exc.code, exc.retryable, str(exc)) == ("404", False, "OKX 404: Not Found")


def test_success_is_not_an_error() -> None:
    with pytest.raises(ValueError, match="code 0 is success"):
        error_from_envelope("0", "")


def test_the_table_lists_the_documented_retryable_codes() -> None:
    assert {code: kind for code, (kind, _source) in RETRYABLE_CODES.items()} == {
        "50001": Retry.TRANSIENT,
        "50004": Retry.TRANSIENT,
        "50011": Retry.RATE_LIMIT,
        "50013": Retry.TRANSIENT,
        "50026": Retry.TRANSIENT,
        "60014": Retry.RATE_LIMIT,
        "64007": Retry.TRANSIENT,
        "64008": Retry.TRANSIENT,
    }


@pytest.mark.parametrize(("code", "given"), [("50011", "50011"), ("50011", 50011), ("60014", "60014")])
def test_a_rate_limit_keeps_the_okx_code(code: str, given: str | int) -> None:
    exc = error_from_envelope(given, "Too Many Requests")
    assert type(exc) is RateLimited
    assert (exc.code, exc.retryable) == (code, True)


def test_the_service_upgrade_notice_is_transient() -> None:
    """64008 (API.md 1.4, sent as event "notice"): the server is about to close the connection; reconnecting helps."""
    exc = error_from_envelope(
        "64008", "The connection will soon be closed for a service upgrade. Please reconnect."
    )
    assert type(exc) is ApiError
    assert (exc.code, exc.transient, exc.retryable) == ("64008", True, True)
    assert RETRYABLE_CODES["64008"][0] is Retry.TRANSIENT
