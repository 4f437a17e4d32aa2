"""The collectors config file (``config/collectors.yaml``; ``.json`` files are read too).

It lists, per exchange, the pairs to collect, the channels per pair, the candle timeframes, and the batching
and retention settings. Loading validates everything and fails with one :class:`ConfigError` that names each
bad field and value, for example ``exchanges.okx.pairs[2]: unknown pair format 'BTCUSDT' ...``.

Nothing here knows an exchange: names, channels, pair rules and the defaults for left-out ``channels`` and
``pairs`` come from each exchange's :class:`~collectors.exchanges.spec.ExchangeSpec` in the registry, so a new
exchange needs no change in this file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from collectors.errors import ConfigError
from collectors.exchanges.registry import ExchangeRegistry, default_registry
from collectors.exchanges.spec import ExchangeSpec
from collectors.model import DEFAULT_TIMEFRAMES, Timeframe
from collectors.storage.writer_options import WriterOptions

__all__ = [
    "DEFAULT_EXCHANGE",
    "BatchingConfig",
    "CandleConfig",
    "CollectorsConfig",
    "ExchangeConfig",
    "LiveConfig",
    "OpsConfig",
    "PairConfig",
    "RetentionConfig",
    "load_config",
    "parse_config",
]

# the exchange collected when the config file names none
DEFAULT_EXCHANGE: Final = "okx"


def _spec(info: ValidationInfo) -> ExchangeSpec | None:
    """The spec of the exchange being validated (``parse_config`` passes it as validation context)."""
    context = info.context
    spec = context.get("spec") if isinstance(context, dict) else None
    return spec if isinstance(spec, ExchangeSpec) else None


def _check_channel(value: str, info: ValidationInfo) -> str:
    spec = _spec(info)
    if spec is not None and value not in spec.channels:
        raise ValueError(f"unknown channel {value!r}; {spec.name} serves: {', '.join(sorted(spec.channels))}")
    return value


def _check_symbol(value: str, info: ValidationInfo) -> str:
    spec = _spec(info)
    if spec is None:
        return value
    symbol = spec.validate_symbol(value)
    if type(symbol) is not str or not symbol:  # a plug-in's validator must answer with the symbol
        raise ValueError(f"{spec.name}'s validate_symbol returned {symbol!r} for {value!r}, not a symbol")
    return symbol


Channel = Annotated[str, AfterValidator(_check_channel)]
Symbol = Annotated[str, AfterValidator(_check_symbol)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_channels(values: Sequence[str]) -> tuple[str, ...]:
    if not values:
        raise ValueError("at least one channel is needed; leave channels out for the exchange's defaults")
    for index, name in enumerate(values):
        if name in values[:index]:
            raise ValueError(f"duplicate channel {name!r} in {list(values)}")
    return tuple(values)


def _check_timeframes(values: Sequence[str]) -> tuple[str, ...]:
    for name in values:
        Timeframe.parse(name)  # raises ValueError naming the value
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate timeframe in {list(values)}")
    return tuple(values)


class PairConfig(_Frozen):
    """One instrument; ``channels``/``timeframes`` left out mean the exchange's defaults."""

    inst_id: Symbol
    channels: tuple[Channel, ...] | None = None
    timeframes: tuple[str, ...] | None = None

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_channels(value)

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_timeframes(value)


class ExchangeConfig(_Frozen):
    """One exchange's entry; left-out ``channels`` and ``pairs`` are the exchange's defaults (its spec's)."""

    channels: tuple[Channel, ...] = ()
    timeframes: tuple[str, ...] = DEFAULT_TIMEFRAMES
    pairs: tuple[PairConfig, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _spec_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        spec = _spec(info)
        if spec is None or not isinstance(data, dict):
            return data
        return {"channels": spec.channels_by_default(), "pairs": spec.default_symbols, **data}

    @field_validator("pairs", mode="before")
    @classmethod
    def _pair_strings(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"inst_id": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_channels(value)

    @field_validator("pairs")
    @classmethod
    def _some_pair(cls, value: tuple[PairConfig, ...]) -> tuple[PairConfig, ...]:
        if not value:
            raise ValueError("at least one pair is needed; leave pairs out for the exchange's defaults")
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


_WRITER_DEFAULTS: Final = WriterOptions()  # the writer's defaults are the config's: one home


class BatchingConfig(_Frozen):
    max_batch_rows: int = Field(default=_WRITER_DEFAULTS.max_batch_rows, gt=0)
    flush_interval_s: float = Field(default=_WRITER_DEFAULTS.flush_interval_s, gt=0)
    max_pending_rows: int = Field(default=_WRITER_DEFAULTS.max_pending_rows, gt=0)
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


class LiveConfig(_Frozen):
    """How the live collectors read the exchange (docs/collectors.md); the exchange maps each mode to its channel.

    ``trades_mode``: ``every_fill`` (one push per fill) or ``aggregated`` (a push covers several fills; the
    exchange says which ids). ``book_snapshot_interval_ms``: a
    top-of-book snapshot is stored at most once per interval per pair, and only when it differs from the last one
    stored (0: every change). ``raw_archive``: which frames go to ``raw_messages`` (``all``, ``trades`` only,
    ``none``). ``full_depth_book``: also keep the exchange's full-depth book (sequence continuity, checksum) and
    store its top ``full_depth_levels`` levels on the snapshot interval.
    """

    trades_mode: Literal["every_fill", "aggregated"] = "every_fill"
    book_snapshot_interval_ms: int = Field(default=1_000, ge=0, le=3_600_000)
    raw_archive: Literal["all", "trades", "none"] = "all"
    full_depth_book: bool = False
    full_depth_levels: int = Field(default=50, ge=1, le=400)


class OpsConfig(_Frozen):
    """Operations (docs/observability.md). ``metrics_port``: serve ``/metrics``, ``/health``, ``/ready`` and
    ``/status`` on ``metrics_host`` at this port while collecting; 0 (the default) serves nothing. The
    ``COLLECTOR_METRICS_PORT`` and ``COLLECTOR_LOG_FORMAT`` variables override the file. ``log_format``: ``text``,
    ``json`` (one object a line) or ``kv`` (key=value)."""

    metrics_port: int = Field(default=0, ge=0, le=65_535)
    metrics_host: str = Field(default="127.0.0.1", min_length=1)
    log_format: Literal["text", "json", "kv"] = "text"


class CollectorsConfig(_Frozen):
    """The whole file; build it with :func:`parse_config` / :func:`load_config`, which check each exchange
    entry against its spec (``model_validate`` alone checks only the structure)."""

    exchanges: dict[str, ExchangeConfig]
    candles: CandleConfig = CandleConfig()
    batching: BatchingConfig = BatchingConfig()
    retention: RetentionConfig = RetentionConfig()
    live: LiveConfig = LiveConfig()
    ops: OpsConfig = OpsConfig()

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


def _lines(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        shown = err.get("input")
        where = _location((*prefix, *err["loc"]))
        # a model validator of ours naming a sub-field ("pairs[2]: duplicate pair"); a field's own message is
        # shown as written even when it starts with "word: "
        nested = None if err["loc"] else re.match(r"^(\w+(?:\[\d+\])*): ", message)
        if nested:
            where, message = f"{where}.{nested.group(1)}", message[nested.end() :]
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown field")
        elif isinstance(shown, dict | list) or (isinstance(shown, str) and repr(shown) in message):
            lines.append(f"{where}: {message}")
        else:
            lines.append(f"{where}: {message} (got {shown!r})")
    return lines


def _parse_exchanges(
    raw: Any, registry: ExchangeRegistry, known: Sequence[str], lines: list[str]
) -> dict[str, ExchangeConfig] | None:
    """Each entry validated against its exchange's spec; problems go to ``lines``. None: not a mapping."""
    if not isinstance(raw, dict):
        return None
    parsed: dict[str, ExchangeConfig] = {}
    for name, entry in raw.items():
        if name not in known:
            lines.append(f"exchanges: unknown exchange {name!r}; known: {', '.join(sorted(known))}")
            continue
        try:
            parsed[name] = ExchangeConfig.model_validate(
                {} if entry is None else entry, context={"spec": registry.get(name)}
            )
        except ValidationError as exc:
            lines.extend(_lines(exc, ("exchanges", name)))
    return parsed


def parse_config(
    data: Any,
    *,
    source: str = "config",
    registry: ExchangeRegistry | None = None,
    known_exchanges: Sequence[str] | None = None,
) -> CollectorsConfig:
    """Validate already-parsed YAML/JSON data; raises one :class:`ConfigError` listing every problem.

    Exchange names, channels and pairs are checked by ``registry`` (default: :func:`default_registry`);
    ``known_exchanges`` narrows the accepted names further.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    registry = registry if registry is not None else default_registry()
    known = [n for n in registry.names() if known_exchanges is None or n in known_exchanges]
    lines: list[str] = []
    raw_exchanges = data.get("exchanges", {DEFAULT_EXCHANGE: {}})
    exchanges = _parse_exchanges(raw_exchanges, registry, known, lines)
    # the other sections are checked even when an exchange entry failed (a stand-in keeps the structure valid)
    stand_in = exchanges if exchanges or not lines else {"-": ExchangeConfig()}
    try:
        config = CollectorsConfig.model_validate(
            {**data, "exchanges": raw_exchanges if exchanges is None else stand_in}
        )
    except ValidationError as exc:
        lines.extend(_lines(exc))
    if lines:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(lines))
    return config


def load_config(
    path: Path, *, registry: ExchangeRegistry | None = None, known_exchanges: Sequence[str] | None = None
) -> CollectorsConfig:
    """Read and validate a YAML or JSON config file (see :func:`parse_config`)."""
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
    return parse_config(data, source=str(path), registry=registry, known_exchanges=known_exchanges)
