"""The error tree: every instance answers ``retryable`` truthfully, and ``is_retryable`` only reads it."""

from __future__ import annotations

import copy
import pickle

import pytest

from collectors.errors import (
    ApiError,
    BookIntegrityError,
    CollectorError,
    ConfigError,
    ExchangeError,
    InvalidRecord,
    ParseError,
    QueryError,
    RateLimited,
    StorageError,
    SubscriptionRejected,
    TransportError,
    is_retryable,
)


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (CollectorError("base"), False),
        (ConfigError("pairs[0]: bad"), False),
        (ExchangeError("exchange said no", endpoint="/api/v5/market/candles"), False),
        (TransportError("connection reset"), True),
        (RateLimited("Too Many Requests", retry_after_s=2.0), True),
        (ApiError("Systems are busy", code="50013", transient=True), True),
        (ApiError("Instrument ID doesn't exist.", code="51001"), False),
        (SubscriptionRejected("wrong URL or channel", channel="candle1m"), False),
        (BookIntegrityError("prevSeqId 5 after seqId 3"), False),
        (ParseError("not a candle row"), False),
        (InvalidRecord("price=Decimal('0'): must be > 0", field="price", value="Decimal('0')"), False),
        (QueryError("limit 301 > 300"), False),
        (StorageError("connection refused", transient=True), True),
        (StorageError("check constraint", transient=False, bad_data=True), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_instance_says_whether_a_retry_can_help(exc: CollectorError, retryable: bool) -> None:
    assert exc.retryable is retryable
    assert is_retryable(exc) is retryable


def test_transient_instances_differ_from_their_class_siblings() -> None:
    busy = ApiError("Systems are busy", code="50013", transient=True)
    bad = ApiError("Parameter bar error", code="51000")
    assert (busy.retryable, bad.retryable) == (True, False)
    assert (busy.transient, bad.transient) == (True, False)
    assert not hasattr(busy, "is_transient")  # one attribute: transient, read by retryable
    lost = StorageError("server closed the connection", transient=True)
    refused = StorageError("value too long", transient=False, bad_data=True)
    assert (lost.retryable, refused.retryable) == (True, False)
    assert (lost.bad_data, refused.bad_data) == (False, True)


def test_context_is_kept() -> None:
    exc = RateLimited(
        "Too Many Requests", retry_after_s=2.0, endpoint="/api/v5/market/ticker", inst_id="BTC-USDT"
    )
    assert (exc.retry_after_s, exc.endpoint, exc.inst_id, exc.channel) == (
        2.0,
        "/api/v5/market/ticker",
        "BTC-USDT",
        None,
    )
    api = ApiError("Parameter bar error", code="51000", endpoint="/api/v5/market/history-candles")
    assert (api.code, api.endpoint, str(api)) == (
        "51000",
        "/api/v5/market/history-candles",
        "Parameter bar error",
    )


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("x"), OSError(28, "No space left on device")])
def test_foreign_exceptions_are_not_retryable(exc: BaseException) -> None:
    assert is_retryable(exc) is False


@pytest.mark.parametrize(
    "exc",
    [
        ApiError("Systems are busy", code="50013", transient=True, endpoint="/api/v5/market/candles"),
        RateLimited("Too Many Requests", retry_after_s=2.0, inst_id="BTC-USDT"),
        InvalidRecord("price=Decimal('0'): must be > 0", field="price", value="Decimal('0')"),
        StorageError("server closed the connection", transient=True, bad_data=False),
        TransportError("connection reset", channel="trades"),
        ConfigError("pairs[0]: bad"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_error_survives_pickle_and_copy(exc: CollectorError) -> None:
    """Errors cross process boundaries (a process pool, multiprocessing) and get copied: nothing is lost."""
    for clone in (pickle.loads(pickle.dumps(exc)), copy.copy(exc), copy.deepcopy(exc)):
        assert type(clone) is type(exc)
        assert (str(clone), clone.args, vars(clone), clone.retryable) == (
            str(exc),
            exc.args,
            vars(exc),
            exc.retryable,
        )
