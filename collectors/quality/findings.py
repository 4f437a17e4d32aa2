"""What the completeness check reports: finding kinds, the finding record, and the tolerance rule (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_STALENESS_S",
    "DEFAULT_TOLERANCE",
    "Finding",
    "FindingKind",
    "exceeds",
    "iso",
    "merge_spans",
]

# Findings a run may have before it fails (per run, all pairs together); flow parameter / CLI --tolerance.
DEFAULT_TOLERANCE: Final = 0
# A live stream whose newest row is older than this is stale; flow parameter / CLI --max-staleness.
DEFAULT_MAX_STALENESS_S: Final = 120.0


class FindingKind(str, Enum):
    """The kinds of findings; docs/quality.md says what each means and what fixes it."""

    TRADE_GAP = "trade_gap"  # trade ids missing between two stored trades (trades-all ids are contiguous)
    NOT_COVERED = "not_covered"  # no trades, no candle, and the coverage ledger does not say "collected"
    CANDLE_MISSING = "candle_missing"  # stored trades in a bucket, but no stored candle
    CANDLE_UNBACKED = "candle_unbacked"  # a stored candle with trades, but no stored trade in its bucket
    CANDLE_MISMATCH = "candle_mismatch"  # stored candle field differs from the recomputation (one per field)
    OKX_MISMATCH = "okx_mismatch"  # our candle's field differs from OKX's candle (one per field)
    OKX_MISSING_OURS = "okx_missing_ours"  # OKX has a candle with volume, we have none
    OKX_MISSING_OKX = "okx_missing_okx"  # we have a candle with trades, OKX's stored page has none
    STALE = "stale"  # a live stream's newest row is older than the staleness limit


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One finding over ``[start_ms, end_ms)`` of one pair; ``timeframe`` and ``field`` where they apply."""

    exchange: str
    inst_id: str
    kind: FindingKind
    start_ms: int
    end_ms: int
    detail: str
    timeframe: str | None = None
    field: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (the CLI's ``--json`` and the artifacts): ``pair``, ``kind``, ``start``, ``end``
        (ISO 8601 UTC with milliseconds), ``timeframe``, ``field``, ``detail``."""
        return {
            "pair": self.inst_id,
            "kind": self.kind.value,
            "start": iso(self.start_ms),
            "end": iso(self.end_ms),
            "timeframe": self.timeframe,
            "field": self.field,
            "detail": self.detail,
        }


def exceeds(findings: Sequence[Finding], tolerance: int) -> bool:
    """True when there are more findings than ``tolerance`` allows (the run then fails)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    return len(findings) > tolerance


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ``[start, end)`` spans with touching or overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def iso(ms: int) -> str:
    """UTC milliseconds -> ``2026-11-20T10:00:00.000Z``."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
