"""The collectors config file (``config/collectors.yaml``; ``.json`` files are read too).

It lists, per exchange, the pairs to collect, the channels per pair, the candle timeframes, and the batching
and retention settings. Loading validates everything and fails with one :class:`ConfigError` that names each
bad field and value, for example ``exchanges.okx.pairs[2]: unknown pair format 'BTCUSDT' ...``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collectors.errors import ConfigError
from collectors.model import DEFAULT_TIMEFRAMES, Timeframe, validate_inst_id

__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_PAIRS",
    "BatchingConfig",
    "CandleConfig",
    "CollectorsConfig",
    "ExchangeConfig",
    "PairConfig",
    "RetentionConfig",
    "load_config",
    "parse_config",
]

Channel = Literal["trades", "books5", "tickers", "candles"]
DEFAULT_CHANNELS: tuple[Channel, ...] = ("trades", "books5", "tickers", "candles")
DEFAULT_PAIRS: tuple[str, ...] = (
    "BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT", "TON-USDT", "ETH-USDC", "BTC-USDC", "UNI-USDT", "PEPE-USDT",
)  # fmt: skip


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_timeframes(values: Sequence[str]) -> tuple[str, ...]:
    for name in values:
        Timeframe.parse(name)  # raises ValueError naming the value
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate timeframe in {list(values)}")
    return tuple(values)


class PairConfig(_Frozen):
    """One instrument; ``channels``/``timeframes`` left out mean the exchange's defaults."""

    inst_id: str
    channels: tuple[Channel, ...] | None = None
    timeframes: tuple[str, ...] | None = None

    @field_validator("inst_id")
    @classmethod
    def _inst_id(cls, value: str) -> str:
        return validate_inst_id(value)

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_timeframes(value)


class ExchangeConfig(_Frozen):
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    timeframes: tuple[str, ...] = DEFAULT_TIMEFRAMES
    pairs: tuple[PairConfig, ...] = tuple(PairConfig(inst_id=p) for p in DEFAULT_PAIRS)

    @field_validator("pairs", mode="before")
    @classmethod
    def _pair_strings(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"inst_id": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_timeframes(value)

    @model_validator(mode="after")
    def _unique_pairs(self) -> ExchangeConfig:
        seen: set[str] = set()
        for index, pair in enumerate(self.pairs):
            if pair.inst_id in seen:
                raise ValueError(f"pairs[{index}]: duplicate pair {pair.inst_id!r}")
            seen.add(pair.inst_id)
        return self

    def channels_for(self, pair: PairConfig) -> tuple[Channel, ...]:
        return pair.channels if pair.channels is not None else self.channels

    def timeframes_for(self, pair: PairConfig) -> tuple[str, ...]:
        return pair.timeframes if pair.timeframes is not None else self.timeframes


class CandleConfig(_Frozen):
    empty_intervals: Literal["skip", "carry"] = "skip"
    allowed_lateness_ms: int = Field(default=2_000, ge=0)


class BatchingConfig(_Frozen):
    max_batch_rows: int = Field(default=5_000, gt=0)
    flush_interval_s: float = Field(default=1.0, gt=0)
    max_pending_rows: int = Field(default=200_000, gt=0)
    spill_dir: Path = Path("data/spill")

    @model_validator(mode="after")
    def _bounds(self) -> BatchingConfig:
        # the writer needs room for one batch in flight and the next one filling (WriterOptions checks the same)
        if self.max_pending_rows < 2 * self.max_batch_rows:
            raise ValueError(
                f"max_pending_rows ({self.max_pending_rows}) must be >= 2 x max_batch_rows ({self.max_batch_rows})"
            )
        return self


class RetentionConfig(_Frozen):
    """Days to keep each archive table; ``null`` keeps forever. Trades and candles are always kept."""

    raw_messages_days: int | None = Field(default=7, gt=0)
    rejected_messages_days: int | None = Field(default=90, gt=0)
    book_snapshots_days: int | None = Field(default=30, gt=0)
    tickers_days: int | None = Field(default=30, gt=0)


class CollectorsConfig(_Frozen):
    exchanges: dict[str, ExchangeConfig] = Field(default_factory=lambda: {"okx": ExchangeConfig()})
    candles: CandleConfig = CandleConfig()
    batching: BatchingConfig = BatchingConfig()
    retention: RetentionConfig = RetentionConfig()

    @field_validator("exchanges")
    @classmethod
    def _some_exchange(cls, value: dict[str, ExchangeConfig]) -> dict[str, ExchangeConfig]:
        if not value:
            raise ValueError("at least one exchange is needed")
        return value


def _location(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def parse_config(
    data: Any, *, source: str = "config", known_exchanges: Sequence[str] | None = None
) -> CollectorsConfig:
    """Validate already-parsed YAML/JSON data."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        config = CollectorsConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            message = err["msg"].removeprefix("Value error, ")
            shown = err.get("input")
            where = _location(err["loc"])
            nested = re.match(r"^(\w+(?:\[\d+\])*): ", message)  # a validator naming a sub-field
            if nested:
                where, message = f"{where}.{nested.group(1)}", message[nested.end() :]
            if err["type"] == "extra_forbidden":
                lines.append(f"{where}: unknown field")
            elif isinstance(shown, dict | list) or (isinstance(shown, str) and repr(shown) in message):
                lines.append(f"{where}: {message}")
            else:
                lines.append(f"{where}: {message} (got {shown!r})")
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(lines)) from exc
    if known_exchanges is not None:
        unknown = sorted(set(config.exchanges) - set(known_exchanges))
        if unknown:
            raise ConfigError(
                f"{source}: exchanges: unknown exchange {unknown[0]!r}; known: {', '.join(sorted(known_exchanges))}"
            )
    return config


def load_config(path: Path, *, known_exchanges: Sequence[str] | None = None) -> CollectorsConfig:
    """Read and validate a YAML or JSON config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}"
        ) from exc
    return parse_config(data, source=str(path), known_exchanges=known_exchanges)
