"""Ranges, instants and per-pair checks from the config and the parameters (pure)."""

from __future__ import annotations

import pytest

from collectors.candles import EmptyPolicy
from collectors.config import parse_config
from collectors.errors import ConfigError
from collectors.model import DataType
from collectors.quality.plan import pair_checks, parse_instant, validation_range

NOW = parse_instant("2026-11-20T10:05:42.123Z")


def test_instants_are_utc_milliseconds_and_offsets_count() -> None:
    assert parse_instant("2026-11-20") == parse_instant("2026-11-20T00:00:00Z") == 1_795_132_800_000
    assert parse_instant("2026-11-20T08:00+08:00") == 1_795_132_800_000
    assert parse_instant("2026-11-20T00:00:00.007") == 1_795_132_800_007
    with pytest.raises(ConfigError, match="not an ISO 8601"):
        parse_instant("yesterday")


def test_the_default_range_ends_at_the_current_minute_and_starts_on_the_hour() -> None:
    assert validation_range(NOW) == (parse_instant("2026-11-20T09:00"), parse_instant("2026-11-20T10:05"))
    assert validation_range(NOW, lookback_ms=86_400_000)[0] == parse_instant("2026-11-19T10:00")
    assert validation_range(NOW, start_ms=5, end_ms=9) == (5, 9)
    with pytest.raises(ConfigError, match="empty or reversed"):
        validation_range(NOW, start_ms=9, end_ms=9)


def test_checks_take_timeframes_channels_and_empty_policy_from_the_config() -> None:
    config = parse_config({
        "exchanges": {"okx": {"channels": ["trades", "tickers"], "timeframes": ["1m", "1h"], "pairs": [
            "BTC-USDT", {"inst_id": "ETH-USDT", "channels": ["trades", "books5"], "timeframes": ["5m"]}]}},
        "candles": {"empty_intervals": "carry"},
    })  # fmt: skip
    checks = pair_checks(
        config, pairs=None, start_ms=1, end_ms=2, now_ms=3, freshness=True, max_staleness_s=1.5
    )
    assert [(c.inst_id, c.timeframes, c.streams, c.empty_policy, c.max_staleness_ms) for c in checks] == [
        ("BTC-USDT", ("1m", "1h"), (DataType.TRADES, DataType.TICKERS), EmptyPolicy.CARRY, 1500),
        ("ETH-USDT", ("5m",), (DataType.TRADES, DataType.BOOK), EmptyPolicy.CARRY, 1500),
    ]
    (other,) = pair_checks(config, pairs=["SOL-USDT"], start_ms=1, end_ms=2, now_ms=3, freshness=False)
    assert (other.inst_id, other.timeframes, other.streams) == ("SOL-USDT", ("1m", "1h"), ())
