"""Pure pieces checked against real data and OKX rules: the legacy checksum, bar alignment, malformed frames."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sim_helpers import FIXED_NOW_MS, FIXTURES, load_fixture

from okx_simulator.book import crc32_checksum
from okx_simulator.candles import bar_for
from okx_simulator.faults import malform
from okx_simulator.instruments import SPECS
from okx_simulator.tape import Fill
from okx_simulator.wire import TradesAllEncoder, trades_all_row


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_crc32_reproduces_real_2022_checksums() -> None:
    books: dict[str, dict[str, dict[str, str]]] = {}
    checked = 0
    for line in (FIXTURES / "cryptofeed_OKX.ws.1.0").read_text().splitlines():
        if " <-" in line or "{" not in line:
            continue
        frame = json.loads(line.split(": ", 1)[1])
        if frame.get("arg", {}).get("channel") != "books" or "data" not in frame:
            continue
        inst_id, data = frame["arg"]["instId"], frame["data"][0]
        if frame["action"] == "snapshot":
            books[inst_id] = {"asks": {}, "bids": {}}
        book = books[inst_id]
        for side in ("asks", "bids"):
            for px, sz, *_ in data[side]:
                if sz == "0":
                    book[side].pop(px, None)
                else:
                    book[side][px] = sz
        bids = sorted(book["bids"].items(), key=lambda kv: -Decimal(kv[0]))[:25]
        asks = sorted(book["asks"].items(), key=lambda kv: Decimal(kv[0]))[:25]
        assert crc32_checksum(bids, asks) == data["checksum"]
        checked += 1
    assert checked == 290


@pytest.mark.parametrize(
    ("bar", "ts", "expected_open"),
    [
        ("1m", "2026-08-12T16:06:30.123", "2026-08-12T16:06:00"),
        ("4H", "2026-08-12T16:06:30", "2026-08-12T16:00:00"),
        ("6H", "2026-08-12T16:06:30", "2026-08-12T16:00:00"),
        ("6H", "2026-08-12T15:59:59", "2026-08-12T10:00:00"),
        ("6Hutc", "2026-08-12T16:06:30", "2026-08-12T12:00:00"),
        ("1D", "2026-08-12T15:00:00", "2026-08-11T16:00:00"),
        ("1D", "2026-08-12T16:00:00", "2026-08-12T16:00:00"),
        ("1Dutc", "2026-08-12T15:00:00", "2026-08-12T00:00:00"),
        ("1W", "2026-08-12T15:00:00", "2026-08-09T16:00:00"),  # Monday 00:00 in Hong Kong
        ("1Wutc", "2026-08-12T15:00:00", "2026-08-10T00:00:00"),
        ("1M", "2026-08-12T15:00:00", "2026-07-31T16:00:00"),
        ("1Mutc", "2026-08-12T15:00:00", "2026-08-01T00:00:00"),
        ("3Mutc", "2026-08-12T15:00:00", "2026-07-01T00:00:00"),
    ],
)
def test_bar_open_times(bar: str, ts: str, expected_open: str) -> None:
    spec = bar_for(bar)
    assert spec is not None
    assert spec.open_of(_ms(ts)) == _ms(expected_open)


def test_bar_names_are_case_sensitive() -> None:
    assert bar_for("1h") is None and bar_for("1d") is None and bar_for("1H") is not None
    month, minute = bar_for("1M"), bar_for("1m")
    assert month is not None and minute is not None and month.months == 1 and minute.duration_ms == 60_000


def test_malformed_variants_change_only_what_they_say() -> None:
    frame = load_fixture("ws_trades.json")
    text, variant = malform(frame, "bad_json")
    assert variant == "bad_json"
    with pytest.raises(ValueError):
        json.loads(text)
    side = json.loads(malform(frame, "unknown_side")[0])
    assert side["data"][0]["side"] == "hold" and frame["data"][0]["side"] == "buy"
    book = load_fixture("ws_bbo_tbt.json")
    text, variant = malform(book, "unknown_side")
    assert variant == "missing_field" and "asks" not in json.loads(text)["data"][0]
    negative = json.loads(malform(book, "negative_price")[0])
    assert negative["data"][0]["asks"][0][0] == "-8476.98"
    candle = json.loads(malform(load_fixture("ws_candle.json"), "wrong_type")[0])
    assert candle["data"][0][0] == 1597026383085


@pytest.mark.parametrize("inst_id", list(SPECS))
def test_pre_encoded_trades_all_equals_the_json_of_its_row(inst_id: str) -> None:
    """The firehose's template text is byte for byte the compact JSON of the documented row, for every
    instrument's precision, both sides and sources, tiny and huge prices and sizes, with and without seqId."""
    spec = SPECS[inst_id]
    encoder = TradesAllEncoder(spec)
    values = [0, 1, 9, 10, 11, 100, 123_456, 10**9, 10**12 + 7, 987_654_321_012_345]
    for i, (px, sz) in enumerate(itertools.product(values, values)):
        fill = Fill(5_127_429_298 + i, FIXED_NOW_MS + i, px, sz, i % 2 == 0, i % 3 % 2, 5_127_429_298)
        message = {"arg": {"channel": "trades-all", "instId": inst_id}, "data": [trades_all_row(spec, fill)]}
        assert encoder.frame(fill) == json.dumps(message, separators=(",", ":"))
        message["data"][0]["seqId"] = 333_793_118_093 + i
        assert encoder.frame(fill, 333_793_118_093 + i) == json.dumps(message, separators=(",", ":"))
