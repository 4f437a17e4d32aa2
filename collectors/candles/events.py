"""Configuration, events and statistics of the candle engine (all immutable values)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeAlias

from collectors.model import DEFAULT_TIMEFRAMES, Candle, CandleSource, Trade

__all__ = [
    "DEFAULT_ENGINE_CONFIG",
    "CandleClosed",
    "CandleEvent",
    "CandleRevised",
    "CandleUpdated",
    "EmptyPolicy",
    "EngineConfig",
    "EngineStats",
    "RevisionRequired",
]


class EmptyPolicy(str, Enum):
    """What to emit for a closed interval without trades."""

    SKIP = "skip"  # no row at all
    CARRY = "carry"  # OHLC = previous close, zero volume, zero trades (what OKX shows)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Settings of one :class:`~collectors.candles.engine.CandleEngine`.

    ``allowed_lateness_ms``: a candle ``[start, end)`` closes once the watermark reaches ``end + lateness``;
    trades arriving before that join it silently. ``retention_ms``: closed candles (and the trade ids used for
    de-duplication) are kept this long after they close, so late trades can revise them in memory; older
    late trades produce :class:`RevisionRequired`. ``emit_updates``: emit :class:`CandleUpdated` (one per
    touched open candle per call); switch off when only final candles matter (backfill, re-aggregation), or
    when the consumer reads the changed open candles on its own clock with ``CandleEngine.updates()`` (live).
    ``max_carried_per_call``: under ``carry``, a trade or ``advance`` that would emit more carried candles
    than this in one timeframe raises ``ValueError`` instead (an absurd watermark, such as microseconds
    passed for milliseconds, would otherwise emit millions of candles).
    """

    timeframes: tuple[str, ...] = DEFAULT_TIMEFRAMES
    allowed_lateness_ms: int = 2_000
    retention_ms: int = 600_000
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP
    emit_updates: bool = True
    source: CandleSource = CandleSource.LIVE
    max_carried_per_call: int = 100_000

    def __post_init__(self) -> None:
        if not self.timeframes:
            raise ValueError("at least one timeframe is required")
        if len(set(self.timeframes)) != len(self.timeframes):
            raise ValueError(f"duplicate timeframes in {self.timeframes}")
        if self.allowed_lateness_ms < 0 or self.retention_ms < 0:
            raise ValueError("allowed_lateness_ms and retention_ms must be >= 0")
        if self.max_carried_per_call < 1:
            raise ValueError("max_carried_per_call must be >= 1")


DEFAULT_ENGINE_CONFIG: Final = EngineConfig()


class CandleUpdated:
    """An open candle changed (``candle.is_closed`` is False); a newer update supersedes it.

    The engine builds the :class:`Candle` lazily, on the first access to :attr:`candle` (from an immutable
    snapshot taken when the event was emitted), so updates a consumer skips because a newer one supersedes
    them cost almost nothing. The value does not depend on when it is first read.
    """

    __slots__ = ("_candle", "_make", "open_time_ms", "timeframe")

    def __init__(self, candle: Candle) -> None:
        self._candle: Candle | None = candle
        self._make: Callable[[], Candle] | None = None
        # The candle's key, readable without building the candle (a consumer keeping only the newest update
        # per candle reads these on every update and builds the candle only for the one it writes).
        self.timeframe: str = candle.timeframe
        self.open_time_ms: int = candle.open_time_ms

    @classmethod
    def deferred(cls, make: Callable[[], Candle], *, timeframe: str, open_time_ms: int) -> CandleUpdated:
        """An update whose candle ``make()`` builds on first access (``make`` must only read immutable data);
        ``timeframe`` and ``open_time_ms`` are that candle's."""
        event = cls.__new__(cls)
        event._candle, event._make = None, make
        event.timeframe, event.open_time_ms = timeframe, open_time_ms
        return event

    @property
    def candle(self) -> Candle:
        candle = self._candle
        if candle is None:
            assert self._make is not None
            candle = self._candle = self._make()
            self._make = None
        return candle

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CandleUpdated):
            return NotImplemented
        return self.candle == other.candle

    def __hash__(self) -> int:
        return hash(self.candle)

    def __repr__(self) -> str:
        return f"CandleUpdated(candle={self.candle!r})"


@dataclass(frozen=True, slots=True)
class CandleClosed:
    """A candle is final (``is_closed`` True, ``revision`` 0 unless re-created after a revision)."""

    candle: Candle


@dataclass(frozen=True, slots=True)
class CandleRevised:
    """A closed candle changed after it closed; ``candle.revision`` is one more than before."""

    candle: Candle


@dataclass(frozen=True, slots=True)
class RevisionRequired:
    """A late trade belongs to closed candles the engine no longer holds in memory.

    The caller revises them from storage: either re-aggregate ``[start_ms, end_ms)`` of each listed timeframe
    from the trades table (batch path), or apply :func:`collectors.candles.revise.revise_candle` to the stored
    candle. De-duplication of such old trades is the caller's job (the trades table's unique key).
    """

    trade: Trade
    timeframes: tuple[str, ...]


CandleEvent: TypeAlias = CandleUpdated | CandleClosed | CandleRevised | RevisionRequired


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStats:
    """Counters since the engine was created."""

    trades_processed: int = 0  # accepted trades (duplicates excluded)
    duplicates: int = 0  # trades ignored because their id was already counted
    late_trades: int = 0  # trades that landed in at least one already closed candle
    candles_emitted: int = 0  # CandleClosed events (carried candles included)
    revisions: int = 0  # CandleRevised events
    revision_requests: int = 0  # RevisionRequired events
