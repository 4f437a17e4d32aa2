"""OKX candle rows from outside: only OKX's wire form is taken, and a row that breaks a candle's rules is refused."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from collectors.errors import InvalidRecord, ParseError
from collectors.exchanges.okx.messages import OkxCandleRow

_ROW = (
    "1786538760000",
    "64040.2",
    "64040.2",
    "64025.7",
    "64033.5",
    "2.16787395",
    "138825.2",
    "138825.2",
    "1",
)
_FIELDS = ("ts", "o", "h", "l", "c", "vol", "volCcy", "volCcyQuote", "confirm")


def _with(field: str, value: object) -> list[object]:
    row: list[object] = list(_ROW)
    row[_FIELDS.index(field)] = value
    return row


@pytest.mark.parametrize(
    "ts",
    [
        "１７８６５３８７６００００",  # fullwidth digits: str.isdigit() is true, OKX never sends them
        "١٧٨٦٥٣٨٧٦٠٠٠٠",  # Arabic-Indic digits
        "¹",  # a superscript: isdigit() is true but int() raises ValueError
        "9" * 5000,  # int() refuses more than 4300 digits with ValueError
        "1.7e12",
        "+1786538760000",
        " 1786538760000",
        "",
    ],
)
def test_a_ts_that_is_not_ascii_integer_milliseconds_is_a_parse_error(ts: str) -> None:
    with pytest.raises(ParseError, match="OKX candle ts must be integer milliseconds") as info:
        OkxCandleRow.parse(_with("ts", ts))
    assert type(info.value) is ParseError


@pytest.mark.parametrize(
    "text",
    [
        " 64040.2",  # Decimal() strips whitespace
        "64040.2\n",
        "64_040.2",  # Decimal() takes underscores
        "６４０４０",  # and non-ASCII digits
        "1e5",
        "1E+5",
        "+64040.2",
        ".5",
        "5.",
        "NaN",
        "sNaN",
        "-Infinity",
        "1" * 65,
        "0." + "1" * 63,
        "",
    ],
)
def test_a_number_not_in_okx_plain_decimal_form_is_a_parse_error(text: str) -> None:
    for field in ("o", "vol", "volCcyQuote"):
        with pytest.raises(
            ParseError, match=re.escape(f"bad number {text!r} for {field} in OKX candle row")
        ) as info:
            OkxCandleRow.parse(_with(field, text))
        assert type(info.value) is ParseError


def test_the_longest_number_taken_has_64_characters() -> None:
    row = OkxCandleRow.parse(_with("volCcyQuote", "1" * 32 + "." + "2" * 31))
    assert row.vol_ccy_quote == Decimal("1" * 32 + "." + "2" * 31)


@pytest.mark.parametrize(
    ("field", "text", "reason"),
    [
        ("o", "0", "must be > 0"),
        ("c", "-5", "must be > 0"),
        ("l", "-0", "must be > 0"),
        ("vol", "-1", "must be >= 0"),
        ("volCcy", "-0", "must be >= 0"),
        ("volCcyQuote", "-0.0", "must be >= 0"),
        ("h", "64033", "below o/c/l"),  # high under the open
        ("l", "64040.3", "above o/c/h"),  # low over the open
    ],
)
def test_a_row_that_breaks_a_candle_rule_is_an_invalid_record(field: str, text: str, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason) as info:
        OkxCandleRow.parse(_with(field, text))
    assert (info.value.field, info.value.value) == (field, repr(text))


def test_zero_volume_and_a_flat_bar_are_valid() -> None:
    row = OkxCandleRow.parse(["1786538760000", "5", "5", "5", "5", "0", "0.0", "0", "0"])
    assert row == OkxCandleRow(
        ts_ms=1786538760000,
        open=Decimal(5),
        high=Decimal(5),
        low=Decimal(5),
        close=Decimal(5),
        vol=Decimal(0),
        vol_ccy=Decimal("0.0"),
        vol_ccy_quote=Decimal(0),
        confirmed=False,
    )
