"""OKX candles: the wire row, its one conversion to the stored record, bar names, and reconciliation."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collectors.errors import InvalidRecord, ParseError
from collectors.exchanges.okx.messages import OkxCandleRow, parse_candles, to_exchange_candle
from collectors.exchanges.okx.reconcile import CandleDiff, DiffKind, reconcile
from collectors.exchanges.okx.spec import okx_bar
from collectors.model import SUPPORTED_TIMEFRAMES, Candle
from collectors.storage.records import ExchangeCandle

FIXTURES = Path(__file__).parents[1] / "fixtures" / "okx"


def _stored(*rows: list[str], bar: str = "1m") -> list[ExchangeCandle]:
    return parse_candles(rows, inst_id="BTC-USDT", bar=bar)


def _recorded_spot_row() -> list[str]:
    """The real 2026 candle1m push for BTC-USDT (spot, confirm "0") from the recorded session."""
    for line in (FIXTURES / "okx_ws_recorded_messages.jsonl").read_text().splitlines():
        session = json.loads(line)
        if session["description"] == "spot ohlcv 1m":
            pushes = [m for m in session["messages"] if "data" in m]
            return list(pushes[0]["data"][0])
    raise AssertionError("recorded spot candle session not found")


def _ours_from(row: list[str]) -> Candle:
    return Candle(
        exchange="okx",
        inst_id="BTC-USDT",
        timeframe="1m",
        open_time_ms=int(row[0]),
        open=Decimal(row[1]),
        high=Decimal(row[2]),
        low=Decimal(row[3]),
        close=Decimal(row[4]),
        volume=Decimal(row[5]),
        quote_volume=Decimal(row[6]),
        trade_count=10,
        buy_volume=Decimal(row[5]),
        sell_volume=Decimal(0),
        is_closed=True,
    )


def test_bar_names_keep_utc_alignment() -> None:
    assert {tf: okx_bar(tf) for tf in ("1m", "5m", "1h", "4h", "6h", "12h", "1d", "1w")} == {
        "1m": "1m",
        "5m": "5m",
        "1h": "1H",
        "4h": "4H",
        "6h": "6Hutc",
        "12h": "12Hutc",
        "1d": "1Dutc",
        "1w": "1Wutc",
    }
    assert all(okx_bar(tf) for tf in SUPPORTED_TIMEFRAMES)
    with pytest.raises(ValueError):
        okx_bar("1M")


def test_the_wire_row_and_the_stored_record_meet_in_one_conversion() -> None:
    row = _recorded_spot_row()
    parsed = OkxCandleRow.parse(row)
    assert parsed == OkxCandleRow(
        ts_ms=1786538760000,
        open=Decimal("64040.2"),
        high=Decimal("64040.2"),
        low=Decimal("64025.7"),
        close=Decimal("64033.5"),
        vol=Decimal("2.16787395"),
        vol_ccy=Decimal("138825.265446816"),
        vol_ccy_quote=Decimal("138825.265446816"),
        confirmed=False,
    )
    assert to_exchange_candle(parsed, inst_id="BTC-USDT", bar="1m") == ExchangeCandle(
        exchange="okx",
        inst_id="BTC-USDT",
        bar="1m",
        open_time_ms=1786538760000,
        open=Decimal("64040.2"),
        high=Decimal("64040.2"),
        low=Decimal("64025.7"),
        close=Decimal("64033.5"),
        volume=Decimal("2.16787395"),
        volume_ccy=Decimal("138825.265446816"),
        volume_ccy_quote=Decimal("138825.265446816"),
        confirmed=False,
    )
    assert _stored(row) == [to_exchange_candle(parsed, inst_id="BTC-USDT", bar="1m")]


def test_identical_candle_has_no_differences() -> None:
    row = _recorded_spot_row()
    ours = _ours_from(row)
    stored = _stored(row)
    assert reconcile([ours], stored, inst_id="BTC-USDT", timeframe="1m", include_unconfirmed=True) == []
    assert reconcile([ours], stored, inst_id="BTC-USDT", timeframe="1m") == []  # unconfirmed rows are skipped
    # another instrument's candles are not compared
    other = parse_candles([row], inst_id="ETH-USDT", bar="1m")
    assert reconcile([ours], other, inst_id="BTC-USDT", timeframe="1m", include_unconfirmed=True) == []


def test_field_differences_are_reported_per_okx_field() -> None:
    row = _recorded_spot_row()
    ours = dataclasses.replace(_ours_from(row), high=Decimal("64041"), quote_volume=Decimal("1"))
    diffs = reconcile([ours], _stored(row), inst_id="BTC-USDT", timeframe="1m", include_unconfirmed=True)
    ts = int(row[0])
    assert diffs == [
        CandleDiff(
            inst_id="BTC-USDT", timeframe="1m", open_time_ms=ts, kind=DiffKind.VALUE, field=f, ours=o, okx=k
        )
        for f, o, k in (
            ("high", Decimal("64041"), Decimal("64040.2")),
            ("volume_ccy", Decimal("1"), Decimal("138825.265446816")),
            ("volume_ccy_quote", Decimal("1"), Decimal("138825.265446816")),
        )
    ]


def test_missing_candles_and_empty_ones() -> None:
    rows = json.loads((FIXTURES / "http_get_candlesticks_full.json").read_text())[
        "data"
    ]  # newest first, confirmed
    older, newer = sorted(rows, key=lambda r: int(r[0]))
    ours_newer = dataclasses.replace(_ours_from(newer), volume=Decimal(newer[5]))
    diffs = reconcile([ours_newer], _stored(*rows), inst_id="BTC-USDT", timeframe="1m", inst_type="SWAP")
    assert [(d.kind, d.open_time_ms) for d in diffs] == [(DiffKind.MISSING_OURS, int(older[0]))]
    extra = dataclasses.replace(ours_newer, open_time_ms=int(older[0]))
    diffs = reconcile(
        [extra],
        _stored(newer, [str(int(older[0]) - 60_000), *older[1:5], "0", "0", "0", "1"]),
        inst_id="BTC-USDT",
        timeframe="1m",
    )
    # the empty OKX minute against nothing of ours is no difference
    assert [(d.kind, d.open_time_ms) for d in diffs] == [
        (DiffKind.MISSING_OKX, int(older[0])),
        (DiffKind.MISSING_OURS, int(newer[0])),
    ]


def test_utc8_daily_bar_is_reported_misaligned() -> None:
    day_at_16_utc = 1_704_124_800_000 - 8 * 3_600_000  # 2024-01-01 16:00 UTC = 2024-01-02 00:00 UTC+8
    row = [str(day_at_16_utc), "1", "1", "1", "1", "1", "1", "1", "1"]
    (diff,) = reconcile([], _stored(row, bar="1D"), inst_id="BTC-USDT", timeframe="1d")
    assert diff.kind is DiffKind.MISALIGNED


_TS = "1786538760000"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["1", "2"], "must be 9 strings"),
        ([_TS, "1", "1", "1", "1", "1", "1", "1", "2"], "ending in confirm 0/1"),
        ([_TS, 1, "1", "1", "1", "1", "1", "1", "1"], "must be 9 strings"),
        (["x", "1", "1", "1", "1", "1", "1", "1", "1"], "ts must be integer milliseconds"),
        (["1786538760000.0", "1", "1", "1", "1", "1", "1", "1", "1"], "ts must be integer milliseconds"),
        ([_TS, "1", "1", "1", "abc", "1", "1", "1", "1"], "bad number"),
        ([_TS, "1", "NaN", "1", "1", "1", "1", "1", "1"], "bad number .NaN. for h"),
        ([_TS, "1", "1", "1", "1", "Infinity", "1", "1", "1"], "bad number .Infinity. for vol"),
    ],
)
def test_malformed_rows_raise_parse_error(row: list[object], reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        OkxCandleRow.parse(row)


def test_a_timestamp_outside_2000_2100_is_an_invalid_record() -> None:
    with pytest.raises(InvalidRecord) as info:
        OkxCandleRow.parse(["1786538760", "1", "1", "1", "1", "1", "1", "1", "1"])  # seconds, not ms
    assert (info.value.field, info.value.value) == ("ts", "1786538760")


def test_the_highest_revision_of_each_candle_is_compared_whatever_the_input_order() -> None:
    row = _recorded_spot_row()
    row[-1] = "1"  # confirmed
    revised = dataclasses.replace(_ours_from(row), revision=1)
    stale = dataclasses.replace(revised, high=revised.high - 1, revision=0)
    for ours in ([stale, revised], [revised, stale]):
        assert reconcile(ours, _stored(row), inst_id="BTC-USDT", timeframe="1m") == []
    (diff,) = reconcile(
        [revised, dataclasses.replace(stale, revision=2)], _stored(row), inst_id="BTC-USDT", timeframe="1m"
    )
    assert (diff.field, diff.ours, diff.okx) == ("high", revised.high - 1, revised.high)


_MIDNIGHT = 1_786_492_800_000  # 2026-08-12 00:00 UTC: on the 1m, 5m and 1d grids at once


def _flat_row(ts_ms: int, vol: str, confirm: str = "1") -> list[str]:
    return [str(ts_ms), "1", "2", "1", "2", vol, "5", "5", confirm]


def _ours_flat(ts_ms: int, **changes: Any) -> Candle:
    candle = Candle(
        exchange="okx",
        inst_id="BTC-USDT",
        timeframe="1m",
        open_time_ms=ts_ms,
        open=Decimal(1),
        high=Decimal(2),
        low=Decimal(1),
        close=Decimal(2),
        volume=Decimal(3),
        quote_volume=Decimal(5),
        trade_count=2,
        buy_volume=Decimal(3),
        sell_volume=Decimal(0),
        is_closed=True,
    )
    return dataclasses.replace(candle, **changes)


def test_rows_of_another_bar_are_reported_not_compared() -> None:
    """Stored candles of one instrument hold every bar: a 5m or 1Dutc row is not a 1m candle."""
    one_minute = _stored(_flat_row(_MIDNIGHT, "3"), _flat_row(_MIDNIGHT + 60_000, "3"))
    five_minutes = _stored(_flat_row(_MIDNIGHT, "99"), bar="5m")
    day = _stored(_flat_row(_MIDNIGHT, "777"), bar="1Dutc")
    ours = [_ours_flat(_MIDNIGHT), _ours_flat(_MIDNIGHT + 60_000)]
    for okx_candles in (one_minute + five_minutes + day, day + five_minutes + one_minute):
        assert reconcile(ours, okx_candles, inst_id="BTC-USDT", timeframe="1m") == [
            CandleDiff(inst_id="BTC-USDT", timeframe="1m", open_time_ms=_MIDNIGHT, kind=DiffKind.MISALIGNED),
            CandleDiff(inst_id="BTC-USDT", timeframe="1m", open_time_ms=_MIDNIGHT, kind=DiffKind.MISALIGNED),
        ]
    # only rows of another bar: each is reported, nothing is compared
    assert [d.kind for d in reconcile(ours, five_minutes, inst_id="BTC-USDT", timeframe="1m")] == [
        DiffKind.MISALIGNED
    ]


def test_only_okx_candles_are_compared_on_both_sides() -> None:
    okx = _stored(_flat_row(_MIDNIGHT, "3"))
    elsewhere = [dataclasses.replace(okx[0], exchange="otherex", volume=Decimal(0))]
    assert reconcile([_ours_flat(_MIDNIGHT)], okx + elsewhere, inst_id="BTC-USDT", timeframe="1m") == []
    assert (
        reconcile(
            [_ours_flat(_MIDNIGHT), _ours_flat(_MIDNIGHT, exchange="otherex", high=Decimal(9))],
            okx,
            inst_id="BTC-USDT",
            timeframe="1m",
        )
        == []
    )


def test_a_confirmed_row_wins_over_a_forming_one_of_the_same_bar() -> None:
    confirmed, forming = _flat_row(_MIDNIGHT, "3"), _flat_row(_MIDNIGHT, "1", confirm="0")
    for rows in ((confirmed, forming), (forming, confirmed)):
        assert (
            reconcile(
                [_ours_flat(_MIDNIGHT)],
                _stored(*rows),
                inst_id="BTC-USDT",
                timeframe="1m",
                include_unconfirmed=True,
            )
            == []
        )


@pytest.mark.parametrize("inst_type", ["spot", "Spot", "PERP", ""])
def test_an_unknown_inst_type_is_refused(inst_type: str) -> None:
    with pytest.raises(ValueError, match=f"unknown inst_type {inst_type!r}"):
        reconcile([], [], inst_id="BTC-USDT", timeframe="1m", inst_type=inst_type)


@pytest.mark.parametrize(("inst_type", "compared"), [("SPOT", True), ("MARGIN", True), ("SWAP", False)])
def test_quote_volumes_are_compared_for_spot_instruments_only(inst_type: str, compared: bool) -> None:
    diffs = reconcile(
        [_ours_flat(_MIDNIGHT, quote_volume=Decimal(9))],
        _stored(_flat_row(_MIDNIGHT, "3")),
        inst_id="BTC-USDT",
        timeframe="1m",
        inst_type=inst_type,
    )
    assert [d.field for d in diffs] == (["volume_ccy", "volume_ccy_quote"] if compared else [])
