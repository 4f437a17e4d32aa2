"""Requests we send: batched subscriptions, the signed login (secret never shown), the endpoint table."""

from __future__ import annotations

import itertools
import json
import logging

import pytest
from pydantic import SecretStr

from collectors.exchanges.okx.protocol import (
    PING,
    ChannelArg,
    Credentials,
    Endpoint,
    channel_args,
    endpoint_for,
    login_request,
    login_signature,
    subscription_requests,
)
from collectors.exchanges.okx.spec import DEFAULT_PAIRS

SECRET = "22582BD0CFF14C41EDBF1AB98506286D"
PASSPHRASE = "pass-phrase-1"


def test_endpoints_one_table() -> None:
    assert [endpoint_for(c) for c in ("trades", "books5", "books", "tickers", "bbo-tbt")] == [
        Endpoint.PUBLIC
    ] * 5
    assert [endpoint_for(c) for c in ("trades-all", "candle1m", "candle1Dutc")] == [Endpoint.BUSINESS] * 3
    with pytest.raises(ValueError, match="'candle'"):
        endpoint_for("candle")
    with pytest.raises(ValueError, match="'orders'"):
        endpoint_for("orders")
    assert PING == "ping"


def test_one_request_holds_every_arg_when_it_fits() -> None:
    (request,) = subscription_requests(channel_args(["trades-all", "candle1m"], ["BTC-USDT", "ETH-USDT"]))
    assert request == (
        '{"op":"subscribe","args":[{"channel":"trades-all","instId":"BTC-USDT"},'
        '{"channel":"trades-all","instId":"ETH-USDT"},{"channel":"candle1m","instId":"BTC-USDT"},'
        '{"channel":"candle1m","instId":"ETH-USDT"}]}'
    )
    (unsub,) = subscription_requests([ChannelArg(channel="tickers", inst_id="BTC-USDT")], op="unsubscribe")
    assert unsub == '{"op":"unsubscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}'


def test_requests_are_split_under_the_size_limit_keeping_every_arg_once_in_order() -> None:
    args = channel_args(["trades", "books5", "tickers", "books"], list(DEFAULT_PAIRS) * 100)
    requests = subscription_requests(args, max_bytes=4096)
    assert all(len(r.encode()) <= 4096 for r in requests)
    sent = [a for r in requests for a in json.loads(r)["args"]]
    assert sent == [a.wire() for a in args]
    assert len(requests) == 37
    for request, following in itertools.pairwise(requests):  # greedy: the next arg did not fit
        first_next = json.dumps(json.loads(following)["args"][0], separators=(",", ":"))
        assert len(request) + 1 + len(first_next) > 4096
    with pytest.raises(ValueError, match="longer than max_bytes=40"):
        subscription_requests(args[:1], max_bytes=40)


def test_login_signature_matches_openssl() -> None:
    # printf '1538054050GET/users/self/verify' | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
    expected = "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M="
    assert login_signature(SECRET, timestamp_s=1538054050).get_secret_value() == expected
    assert login_signature(SecretStr(SECRET), timestamp_s=1538054050).get_secret_value() == expected


def test_login_request_and_the_secret_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    credentials = Credentials.of(api_key="my-key", secret=SECRET, passphrase=SecretStr(PASSPHRASE))
    request = login_request(credentials, now_ms=1538054050975)
    assert json.loads(request.get_secret_value()) == {
        "op": "login",
        "args": [
            {
                "apiKey": "my-key",
                "passphrase": PASSPHRASE,
                "timestamp": "1538054050",
                "sign": "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M=",
            }
        ],
    }
    logger = logging.getLogger("test.okx.login")
    with caplog.at_level(logging.DEBUG, logger="test.okx.login"):
        logger.info("credentials %s %r, request %s %r", credentials, credentials, request, request)
        try:
            raise RuntimeError(f"login failed for {credentials!r} with {request}")
        except RuntimeError as exc:
            logger.exception("boom: %s", exc)
    shown = caplog.text + repr(credentials) + str(credentials) + repr(request) + str(request)
    assert "my-key" in shown
    for secret in (SECRET, PASSPHRASE, "+LdIr8lkkvhr5hoA3g9TMC0"):
        assert secret not in shown
