"""The domain model: exact, keyword-only, UTC-aligned."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from collectors.errors import ApiError, ConfigError, RateLimited, StorageError, TransportError, is_retryable
from collectors.exchanges.okx.spec import OKX, OKX_BARS
from collectors.exchanges.registry import ExchangeRegistry, ExchangeSpec, default_registry
from collectors.model import SUPPORTED_TIMEFRAMES, Side, Timeframe, Trade, format_decimal, validate_inst_id
from tests.builders import DOGE


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("name", "ts", "expected_open"),
    [
        ("1m", "2026-08-13T09:26:14.874", "2026-08-13T09:26:00"),
        ("5m", "2026-08-13T09:26:14.874", "2026-08-13T09:25:00"),
        ("4h", "2026-08-13T09:26:14.874", "2026-08-13T08:00:00"),
        ("1d", "2026-08-13T23:59:59.999", "2026-08-13T00:00:00"),
        ("1d", "2026-08-14T00:00:00", "2026-08-14T00:00:00"),
        ("1w", "2026-08-13T09:26:14.874", "2026-08-10T00:00:00"),  # Thursday -> Monday
        ("1w", "2026-08-10T00:00:00", "2026-08-10T00:00:00"),
        ("1w", "2026-08-09T23:59:59.999", "2026-08-03T00:00:00"),  # Sunday
        ("1s", "2026-08-13T09:26:14.874", "2026-08-13T09:26:14"),
    ],
)
def test_buckets_are_utc_aligned(name: str, ts: str, expected_open: str) -> None:
    assert Timeframe.parse(name).bucket_start_ms(_ms(ts)) == _ms(expected_open)


def test_timeframe_geometry_lives_on_timeframe() -> None:
    minute, five, three, day, week = (Timeframe.parse(n) for n in ("1m", "5m", "3m", "1d", "1w"))
    assert [tf.offset_ms for tf in (minute, day, week)] == [0, 0, 4 * 86_400_000]
    assert week.bucket_start_ms(_ms("2026-08-13T09:26:14.874")) == _ms("2026-08-10T00:00:00")  # Monday
    assert week.bucket_end_ms(_ms("2026-08-13T09:26:14.874")) == _ms("2026-08-17T00:00:00")
    assert five.bucket_end_ms(_ms("2026-08-13T09:25:00")) == _ms("2026-08-13T09:30:00")
    assert minute.nests_in(five) and minute.nests_in(three) and five.nests_in(day) and day.nests_in(week)
    assert not five.nests_in(three) and not three.nests_in(five) and not week.nests_in(day)
    assert minute.nests_in(minute)


def test_timeframes() -> None:
    assert [Timeframe.parse(n).duration_ms for n in ("1s", "1m", "1h", "1d", "1w")] == [
        1_000, 60_000, 3_600_000, 86_400_000, 604_800_000,
    ]  # fmt: skip
    assert set(OKX_BARS) == set(SUPPORTED_TIMEFRAMES)
    assert OKX_BARS["1d"] == "1Dutc" and OKX_BARS["4h"] == "4H"
    with pytest.raises(ValueError, match="unknown timeframe '2d'"):
        Timeframe.parse("2d")


def test_types_are_frozen_and_keyword_only() -> None:
    t = Trade(exchange="okx", inst_id="BTC-USDT", trade_id=1, ts_ms=0, price=Decimal("1"), size=Decimal("2"),
              side=Side.BUY)  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.price = Decimal("3")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Trade("okx", "BTC-USDT", 1, 0, Decimal("1"), Decimal("2"), Side.BUY)  # type: ignore[misc]


def test_instrument_grid() -> None:
    assert (DOGE.tick_size, DOGE.lot_size) == (Decimal("0.000001"), Decimal("0.000001"))  # the real OKX row
    assert DOGE.price_ticks(Decimal("0.081234")) == 81234
    assert DOGE.size_lots(Decimal("1500")) == 1_500_000_000
    with pytest.raises(ValueError, match="not a multiple"):
        DOGE.price_ticks(Decimal("0.0812345"))
    assert format_decimal(Decimal("1E-8")) == "0.00000001"
    assert format_decimal(Decimal("43210.50")) == "43210.50"


def test_registry_takes_a_second_exchange_without_touching_the_core() -> None:
    other = ExchangeSpec(name="binance", channels=frozenset({"trades"}), validate_symbol=str.upper)
    registry = ExchangeRegistry([OKX, other])
    assert registry.names() == ["binance", "okx"]
    assert registry.get("binance").validate_symbol("btcusdt") == "BTCUSDT"
    with pytest.raises(ConfigError, match="unknown exchange 'kraken'; known: binance, okx"):
        registry.get("kraken")
    with pytest.raises(ValueError, match="twice"):
        registry.register(OKX)
    assert default_registry().names() == ["okx"]


def test_retryable_is_decided_in_one_place() -> None:
    assert is_retryable(TransportError("reset"))
    assert is_retryable(RateLimited("429", retry_after_s=2.0))
    assert is_retryable(ApiError("busy", code="50013", transient=True))
    assert not is_retryable(ApiError("bad instId", code="51001"))
    assert is_retryable(StorageError("conn", transient=True))
    assert not is_retryable(StorageError("constraint", transient=False, bad_data=True))
    assert not is_retryable(ValueError("bug"))


def test_new_trade_builds_the_same_frozen_trade_as_keywords() -> None:
    from collectors.model import new_trade

    fields = tuple(f.name for f in dataclasses.fields(Trade))
    assert Trade.__slots__ == fields  # type: ignore[attr-defined]  # new_trade fills exactly these, in order
    values = ("okx", "BTC-USDT", 7, 1_786_538_760_257, Decimal("64000.10"), Decimal("0.5"), Side.SELL, 3, "0")
    built, keyword = new_trade(*values), Trade(**dict(zip(fields, values, strict=True)))
    assert type(built) is Trade and built == keyword and hash(built) == hash(keyword)
    assert str(built.price) == "64000.10"  # the exact object passed in
    assert dataclasses.replace(built, trade_id=8) == dataclasses.replace(keyword, trade_id=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.size = Decimal("1")  # type: ignore[misc]


def test_new_trades_push_builds_the_same_frozen_push_as_keywords() -> None:
    from collectors.exchanges.okx.events import TradesPush, new_trades_push

    fields = tuple(f.name for f in dataclasses.fields(TradesPush))
    assert TradesPush.__slots__ == fields  # type: ignore[attr-defined]
    t = Trade(exchange="okx", inst_id="BTC-USDT", trade_id=1, ts_ms=0, price=Decimal("1"), size=Decimal("2"),
              side=Side.BUY)  # fmt: skip
    values = ("trades", "BTC-USDT", (t,), (2,), 5, ())
    built = new_trades_push(*values)  # type: ignore[arg-type]
    assert type(built) is TradesPush and built == TradesPush(**dict(zip(fields, values, strict=True)))
    assert built.id_spans() == ((0, 1),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.recv_ms = 6  # type: ignore[misc]


@pytest.mark.parametrize("name", ["BTC-USDT\n", "BTC-USDT\r\n", "\nBTC-USDT"])
def test_a_pair_name_with_a_line_break_is_refused(name: str) -> None:
    # `$` also matches before a final newline: "BTC-USDT\n" passed the rule and reached SQL and file names
    with pytest.raises(ValueError, match="unknown pair format"):
        validate_inst_id(name)
