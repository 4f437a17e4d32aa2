"""collectors.validation: the one domain check every outside-data path shares."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.errors import InvalidRecord, ParseError
from collectors.model import BookLevel, BookSnapshot, Side, Ticker, Trade
from collectors.validation import (
    TS_MAX_MS,
    TS_MIN_MS,
    _refuse_trade,
    check_book_snapshot,
    check_ticker,
    check_trade,
    check_ts_ms,
)
from tests.builders import BASE_TS, load_fixture, trade


def test_a_trade_from_real_okx_values_passes_unchanged() -> None:
    row = load_fixture("http_get_trades.json")["data"][0]
    good = trade(
        int(row["tradeId"]),
        ts_ms=int(row["ts"]),
        price=row["px"],
        size=row["sz"],
        side=Side(row["side"]),
        source=row.get("source") or None,
    )
    assert check_trade(good) is good


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"price": Decimal("0")}, "price", "finite number > 0"),
        ({"price": Decimal("-63707.3")}, "price", "finite number > 0"),
        ({"size": Decimal("0")}, "size", "finite number > 0"),
        ({"size": Decimal("-1")}, "size", "finite number > 0"),
        ({"price": Decimal("Infinity")}, "price", "finite number > 0"),
        ({"price": Decimal("NaN")}, "price", "finite number > 0"),
        ({"price": 63707.3}, "price", "must be a Decimal"),
        ({"size": "0.1"}, "size", "must be a Decimal"),
        ({"side": "buy"}, "side", "as a Side"),
        ({"side": "long"}, "side", "as a Side"),
        ({"ts_ms": float(BASE_TS)}, "ts_ms", "int epoch milliseconds"),
        ({"ts_ms": True}, "ts_ms", "int epoch milliseconds"),
        ({"ts_ms": BASE_TS // 1000}, "ts_ms", "outside 2000-01-01..2100-01-01"),
        ({"ts_ms": 10**16}, "ts_ms", "outside 2000-01-01..2100-01-01"),
        ({"recv_ms": 1.5}, "recv_ms", "int epoch milliseconds"),
        ({"trade_id": -1}, "trade_id", "int in 0..2**63-1"),
        ({"trade_id": "12"}, "trade_id", "int in 0..2**63-1"),
        ({"trade_id": 2**63}, "trade_id", "int in 0..2**63-1"),
        ({"trade_id": 2**70}, "trade_id", "int in 0..2**63-1"),
        ({"inst_id": "X" * 100}, "inst_id", "longer than 64"),
        ({"inst_id": "BTC\x00USDT"}, "inst_id", "NUL"),
        ({"inst_id": ""}, "inst_id", "non-empty str"),
    ],
)
def test_a_bad_trade_is_refused_naming_the_field(changes: dict[str, Any], field: str, reason: str) -> None:
    bad = dataclasses.replace(trade(5), **changes)
    with pytest.raises(InvalidRecord) as caught:
        check_trade(bad)
    assert caught.value.field == field
    assert reason in str(caught.value)
    assert caught.value.value == repr(changes[field])
    assert isinstance(caught.value, ParseError)


def test_the_timestamp_window_is_half_open() -> None:
    assert check_ts_ms(TS_MIN_MS) == TS_MIN_MS == 946_684_800_000  # 2000-01-01T00:00:00Z
    assert check_ts_ms(TS_MAX_MS - 1) == 4_102_444_799_999
    for value in (TS_MIN_MS - 1, TS_MAX_MS):
        with pytest.raises(InvalidRecord):
            check_ts_ms(value)


def _book(**changes: Any) -> BookSnapshot:
    # The first levels of the real 2026 books5 recording's shape: bids best (highest) first, asks best (lowest) first.
    base = BookSnapshot(
        exchange="okx",
        inst_id="BTC-USDT",
        ts_ms=BASE_TS,
        bids=(BookLevel(price=Decimal("63707.3"), size=Decimal("0.5"), orders=3),
              BookLevel(price=Decimal("63707.2"), size=Decimal("0.01"), orders=1)),
        asks=(BookLevel(price=Decimal("63707.4"), size=Decimal("1.2"), orders=2),),
        seq_id=123,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_a_valid_book_passes_and_bad_books_name_the_level() -> None:
    assert check_book_snapshot(_book()) == _book()
    assert check_book_snapshot(_book(bids=(), asks=())).bids == ()
    cases = [
        (_book(bids=tuple(reversed(_book().bids))), "bids[1].price", "strictly descending"),
        (_book(asks=(BookLevel(price=Decimal("63707.3"), size=Decimal("1")),)), "bids[0].price", "crosses"),
        (_book(asks=(BookLevel(price=Decimal("63708"), size=Decimal("-1")),)), "asks[0].size", ">= 0"),
        (_book(asks=(BookLevel(price=Decimal("0"), size=Decimal("1")),)), "asks[0].price", "> 0"),
        (_book(bids=[_book().bids[0]]), "bids", "tuple of BookLevel"),
        (_book(seq_id="123"), "seq_id", "must be a 64-bit int"),
        (_book(seq_id=2**64), "seq_id", "must be a 64-bit int"),
    ]
    for book, field, reason in cases:
        with pytest.raises(InvalidRecord) as caught:
            check_book_snapshot(book)
        assert (caught.value.field, reason in str(caught.value)) == (field, True)


def test_tickers_need_a_positive_last_and_sane_optional_fields() -> None:
    ticker = Ticker(
        exchange="okx", inst_id="BTC-USDT", ts_ms=BASE_TS, last=Decimal("63707.3"), last_size=Decimal("0"),
        bid_price=Decimal("63707.3"), ask_price=Decimal("63707.4"), volume_24h=Decimal("9321.5"),
    )  # fmt: skip
    assert check_ticker(ticker) is ticker
    for changes, field in (
        ({"last": Decimal("0")}, "last"),
        ({"last": None}, "last"),
        ({"bid_price": Decimal("-1")}, "bid_price"),
        ({"volume_24h": Decimal("-0.1")}, "volume_24h"),
        ({"ask_size": 1}, "ask_size"),
    ):
        with pytest.raises(InvalidRecord) as caught:
            check_ticker(dataclasses.replace(ticker, **changes))
        assert caught.value.field == field


_ODD_VALUES = st.sampled_from(
    [None, True, 0, -1, 2**63, 1.5, "", "x", "\x00", "X" * 65, "okx", "BTC-USDT", Decimal("0"), Decimal("-1"),
     Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("1.5"), Side.BUY, "buy", TS_MIN_MS - 1,
     TS_MIN_MS, TS_MAX_MS - 1, TS_MAX_MS]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([f.name for f in dataclasses.fields(Trade)]), _ODD_VALUES), max_size=3)
)
def test_check_trades_quick_verdict_is_the_detailed_walks(changes: list[tuple[str, Any]]) -> None:
    bad = dataclasses.replace(trade(5), **dict(changes))
    try:
        _refuse_trade(bad)
    except InvalidRecord as walk:
        with pytest.raises(InvalidRecord) as caught:
            check_trade(bad)
        assert (caught.value.field, str(caught.value)) == (walk.field, str(walk))
    else:
        assert check_trade(bad) is bad
