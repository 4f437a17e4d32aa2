"""What a validation or re-aggregation run covers: pairs and timeframes from the config, ranges from the
command line or flow parameters (pure: the current time is passed in)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from collectors.candles import EmptyPolicy
from collectors.config import CollectorsConfig, ExchangeConfig, PairConfig
from collectors.errors import ConfigError
from collectors.model import DataType, Timeframe
from collectors.quality.findings import DEFAULT_MAX_STALENESS_S
from collectors.quality.validate import PairCheck

__all__ = [
    "DEFAULT_LOOKBACK_MS",
    "STREAMS",
    "empty_policy",
    "exchange_config",
    "pair_checks",
    "parse_instant",
    "validation_range",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_LOOKBACK_MS: Final = 3_600_000  # a scheduled (hourly) run checks the last hour
# config channel -> the stored stream whose freshness it proves
STREAMS: Final = {
    "trades": DataType.TRADES,
    "books5": DataType.BOOK,
    "tickers": DataType.TICKERS,
    "candles": DataType.CANDLES,
}


def parse_instant(text: str) -> int:
    """ISO 8601 date or date-time (``2026-11-20``, ``2026-11-20T10:00``, ``...Z``, ``...+08:00``) -> UTC ms; a
    time without offset is UTC. Raises :class:`ConfigError` naming the text."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"not an ISO 8601 date or date-time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(milliseconds=1)


def validation_range(
    now_ms: int,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
) -> tuple[int, int]:
    """The range to check: as given; a missing end is the start of the current minute (its candle is still
    open), a missing start ``lookback_ms`` before the end, moved back to the hour (so an hourly run compares
    the last complete hourly candle too). Raises :class:`ConfigError` when it is empty."""
    if lookback_ms <= 0:
        raise ConfigError(f"the lookback must be above 0, got {lookback_ms / 60_000:g} minutes")
    end = end_ms if end_ms is not None else Timeframe.parse("1m").bucket_start_ms(now_ms)
    start = start_ms if start_ms is not None else Timeframe.parse("1h").bucket_start_ms(end - lookback_ms)
    if end <= start:
        raise ConfigError(f"empty or reversed range: from {start} to {end} (ms)")
    return start, end


def exchange_config(config: CollectorsConfig, exchange: str = "okx") -> ExchangeConfig:
    try:
        return config.exchanges[exchange]
    except KeyError:
        raise ConfigError(f"the config has no exchange {exchange!r}") from None


def _pair(ex: ExchangeConfig, inst_id: str) -> PairConfig:
    """The configured pair, or the exchange's defaults for one the config does not list (a backfilled one)."""
    return next((p for p in ex.pairs if p.inst_id == inst_id), PairConfig(inst_id=inst_id))


def empty_policy(config: CollectorsConfig) -> EmptyPolicy:
    return EmptyPolicy(config.candles.empty_intervals)


def pair_checks(
    config: CollectorsConfig,
    *,
    pairs: Sequence[str] | None,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    freshness: bool,
    max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
    exchange: str = "okx",
) -> list[PairCheck]:
    """One :class:`PairCheck` per pair (default: every configured pair) with its configured timeframes; with
    ``freshness`` the streams of its configured channels are checked too."""
    if not 0 < max_staleness_s < math.inf:
        raise ConfigError(f"the maximum staleness must be a number of seconds above 0, got {max_staleness_s}")
    ex = exchange_config(config, exchange)
    names = list(pairs) if pairs else [p.inst_id for p in ex.pairs]
    checks = []
    for inst_id in names:
        pair = _pair(ex, inst_id)
        streams = tuple(STREAMS[c] for c in ex.channels_for(pair) if c in STREAMS) if freshness else ()
        checks.append(
            PairCheck(
                exchange=exchange,
                inst_id=inst_id,
                start_ms=start_ms,
                end_ms=end_ms,
                now_ms=now_ms,
                timeframes=tuple(ex.timeframes_for(pair)),
                empty_policy=empty_policy(config),
                streams=streams,
                max_staleness_ms=int(max_staleness_s * 1000),
                allowed_lateness_ms=config.candles.allowed_lateness_ms,
            )
        )
    return checks
