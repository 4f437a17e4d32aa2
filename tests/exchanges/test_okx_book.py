"""The full-depth order book against the real 2022 ``books`` frames (290 CRC32 checksums) and sequence rules."""

from __future__ import annotations

import dataclasses
import json
import zlib
from decimal import Decimal

import pytest

from collectors.errors import BookIntegrityError
from collectors.exchanges.okx.book import OrderBook, okx_checksum
from collectors.exchanges.okx.events import BooksPush
from collectors.exchanges.okx.messages import OkxBookLevel
from collectors.exchanges.okx.parse import parse_frame
from collectors.model import BookLevel
from tests.exchanges.okx_frames import RECV_2022_MS, compact, recorded_2022

R = RECV_2022_MS


def _pushes() -> list[BooksPush]:
    events = [
        parse_frame(t, recv_ms=R) for t in recorded_2022() if '"channel":"books"' in t and '"data"' in t
    ]
    assert all(isinstance(e, BooksPush) for e in events)
    return events  # type: ignore[return-value]


def test_every_real_2022_checksum_matches_after_each_frame() -> None:
    books: dict[str, OrderBook] = {}
    checked = 0
    for push in _pushes():
        book = books.setdefault(push.inst_id, OrderBook(inst_id=push.inst_id))
        book.apply(push)  # raises on a mismatch
        assert push.checksum
        bids, asks = book.top(25)
        assert okx_checksum(bids, asks) == push.checksum
        checked += 1
    assert checked == 290
    assert {k: b.depth() for k, b in books.items()} == {
        "BTC-USD-220527": (74, 62), "UNI-USD-SWAP": (125, 118), "BTC-USDT": (400, 400),
    }  # fmt: skip
    top = books["BTC-USDT"].snapshot(depth=2, recv_ms=R)
    assert (top.ts_ms, top.bids, top.asks) == (
        1652459236096,
        (
            BookLevel(price=Decimal("30236.1"), size=Decimal("0.18050747"), orders=8),
            BookLevel(price=Decimal("30234"), size=Decimal("0.052"), orders=1),
        ),
        (
            BookLevel(price=Decimal("30236.2"), size=Decimal("0.001"), orders=1),
            BookLevel(price=Decimal("30243.9"), size=Decimal("0.0002"), orders=1),
        ),
    )


def test_the_docs_checksum_string() -> None:
    bids = [OkxBookLevel("3366.1", "7", "1"), OkxBookLevel("3366", "6", "1")]
    asks = [OkxBookLevel("3366.8", "9", "1"), OkxBookLevel("3368", "8", "1")]
    crc = zlib.crc32(b"3366.1:7:3366.8:9:3366:6:3368:8")
    assert okx_checksum(bids, asks) == (crc - 2**32 if crc >= 2**31 else crc)


def test_a_corrupted_level_is_detected_and_the_book_refuses_frames_until_a_snapshot() -> None:
    pushes = [p for p in _pushes() if p.inst_id == "BTC-USDT"]
    book = OrderBook(inst_id="BTC-USDT")
    book.apply(pushes[0])
    level = pushes[1].asks[0] if pushes[1].asks else pushes[1].bids[0]
    bad_level = level._replace(sz=str(Decimal(level.sz) + Decimal("0.00000001")))
    if pushes[1].asks:
        corrupted = dataclasses.replace(pushes[1], asks=(bad_level, *pushes[1].asks[1:]))
    else:
        corrupted = dataclasses.replace(pushes[1], bids=(bad_level, *pushes[1].bids[1:]))
    with pytest.raises(BookIntegrityError, match="checksum"):
        book.apply(corrupted)
    assert not book.ready
    with pytest.raises(BookIntegrityError, match="before a snapshot"):
        book.apply(pushes[2])
    book.apply(pushes[0])  # a fresh snapshot heals it
    assert book.ready


def _frame(action: str, prev: int, seq: int, bids: list[list[str]], asks: list[list[str]]) -> BooksPush:
    text = compact(
        {
            "arg": {"channel": "books", "instId": "BTC-USDT"},
            "action": action,
            "data": [
                {
                    "asks": asks,
                    "bids": bids,
                    "ts": "1597026383085",
                    "checksum": 0,
                    "prevSeqId": prev,
                    "seqId": seq,
                }
            ],
        }
    )
    event = parse_frame(text, recv_ms=R)
    assert isinstance(event, BooksPush), event
    return event


def test_the_docs_sequence_snapshot_update_heartbeat_reset_update() -> None:
    book = OrderBook(inst_id="BTC-USDT")
    book.apply(_frame("snapshot", -1, 10, [["8476.97", "256", "0", "12"]], [["8476.98", "415", "0", "13"]]))
    book.apply(_frame("update", 10, 15, [["8476.96", "1", "0", "1"]], [["8476.98", "0", "0", "0"]]))
    book.apply(_frame("update", 15, 15, [], []))  # heartbeat
    book.apply(_frame("update", 15, 3, [], [["8477", "7", "0", "2"]]))  # reset after maintenance
    book.apply(_frame("update", 3, 5, [["8476.97", "0", "0", "0"]], []))
    snap = book.snapshot(depth=5)
    assert (snap.seq_id, snap.bids, snap.asks) == (
        5,
        (BookLevel(price=Decimal("8476.96"), size=Decimal("1"), orders=1),),
        (BookLevel(price=Decimal("8477"), size=Decimal("7"), orders=2),),
    )


def test_a_real_gap_raises_and_checksum_zero_is_ignored() -> None:
    book = OrderBook(inst_id="BTC-USDT")
    book.apply(_frame("snapshot", -1, 10, [["8476.97", "256", "0", "12"]], []))
    with pytest.raises(BookIntegrityError, match="prevSeqId 11 after seqId 10"):
        book.apply(_frame("update", 11, 12, [], []))
    assert not book.ready


def test_an_update_before_any_snapshot_is_a_book_integrity_error() -> None:
    with pytest.raises(BookIntegrityError):
        OrderBook(inst_id="BTC-USDT").apply(_frame("update", 1, 2, [], []))


def test_a_delete_of_an_unknown_price_changes_nothing() -> None:
    book = OrderBook(inst_id="BTC-USDT")
    book.apply(_frame("snapshot", -1, 1, [["10", "1", "0", "1"]], [["11", "1", "0", "1"]]))
    book.apply(_frame("update", 1, 2, [["9", "0", "0", "0"]], [["11.0", "2", "0", "3"]]))
    bids, asks = book.top(5)
    assert (bids, asks) == ([OkxBookLevel("10", "1", "1")], [OkxBookLevel("11.0", "2", "3")])
    assert json.dumps([bids, asks])  # raw strings stay serialisable
