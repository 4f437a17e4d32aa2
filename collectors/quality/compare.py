"""Stored candles against a recomputation, bucket by bucket and field by field (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from collectors.model import Candle, Timeframe

__all__ = ["COMPARED_FIELDS", "CandleChange", "ChangeKind", "compare_candles", "inside"]

# Every field that says what a candle is; ``source`` and ``revision`` say where a row came from.
COMPARED_FIELDS: Final = tuple(
    name for name in Candle.__dataclass_fields__ if name not in ("source", "revision")
)


class ChangeKind(str, Enum):
    NEW = "new"  # recomputed, not stored
    CHANGED = "changed"  # both; ``fields`` differ
    UNBACKED = "unbacked"  # stored with trades, but the stored trades give no candle


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleChange:
    timeframe: str
    open_time_ms: int
    kind: ChangeKind
    fields: tuple[str, ...] = ()
    stored: Candle | None = None
    recomputed: Candle | None = None


def inside(candles: Sequence[Candle], tf: Timeframe, start_ms: int, end_ms: int) -> list[Candle]:
    """The candles whose whole bucket lies in ``[start_ms, end_ms)``."""
    return [c for c in candles if start_ms <= c.open_time_ms and c.open_time_ms + tf.duration_ms <= end_ms]


def compare_candles(stored: Sequence[Candle], recomputed: Sequence[Candle]) -> list[CandleChange]:
    """Differences of one timeframe, by open time. Values compare as values (``Decimal("1.50") == 1.5``). A
    stored candle without trades (a carried empty interval) that the recomputation lacks is not a difference."""
    ours = {c.open_time_ms: c for c in stored}
    again = {c.open_time_ms: c for c in recomputed}
    changes = []
    for ts in sorted(ours.keys() | again.keys()):
        old, new = ours.get(ts), again.get(ts)
        if old is None:
            assert new is not None
            changes.append(
                CandleChange(timeframe=new.timeframe, open_time_ms=ts, kind=ChangeKind.NEW, recomputed=new)
            )
        elif new is None:
            if old.trade_count:
                changes.append(
                    CandleChange(
                        timeframe=old.timeframe, open_time_ms=ts, kind=ChangeKind.UNBACKED, stored=old
                    )
                )
        else:
            fields = tuple(f for f in COMPARED_FIELDS if getattr(old, f) != getattr(new, f))
            if fields:
                changes.append(
                    CandleChange(
                        timeframe=old.timeframe,
                        open_time_ms=ts,
                        kind=ChangeKind.CHANGED,
                        fields=fields,
                        stored=old,
                        recomputed=new,
                    )
                )
    return changes
