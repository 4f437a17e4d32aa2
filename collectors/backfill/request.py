"""What the CLI and the flow accept as a backfill request, parsed once (pure: ``now_ms`` is passed in).

Exactly one of: ``start`` and ``end`` (ISO 8601 instants; without a zone they are UTC), ``since`` (a duration
back from now: ``7d``, ``12h``, ``30m``, ``90s``), or neither (every open gap). A bad value raises
``ValueError`` naming it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from collectors.backfill.work import Request

__all__ = ["build_request", "chosen_pairs", "parse_duration_ms", "parse_instant_ms"]

_UNITS: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_instant_ms(text: str) -> int:
    """``2026-11-20T10:00:00Z`` (or ``+08:00``, or no zone: UTC) -> epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 instant: {text!r} (e.g. 2026-11-20T10:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_duration_ms(text: str) -> int:
    """``7d`` / ``12h`` / ``30m`` / ``90s`` / ``2w`` -> milliseconds (> 0)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (a number and one of s, m, h, d, w: 7d, 12h)")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"a duration must be at least 1 ms, got {text!r}")
    return int(value)


def chosen_pairs(requested: Sequence[str] | None, configured: Sequence[str]) -> list[str]:
    """The pairs of a backfill: ``requested`` (each one configured: a typo would otherwise find no gap, and no
    error, on every scheduled run) or, when None or empty, every ``configured`` one. Raises ``ValueError``
    naming the unknown ones."""
    if not requested:
        return list(configured)
    unknown = sorted(set(requested) - set(configured))
    if unknown:
        raise ValueError(f"{', '.join(unknown)} not in the config (configured: {', '.join(configured)})")
    return list(requested)


def build_request(
    pairs: Sequence[str],
    *,
    start: str | None = None,
    end: str | None = None,
    since: str | None = None,
    now_ms: int,
) -> Request:
    """The request for ``pairs``: a range, the last ``since``, or (neither) every open gap."""
    if since is not None and (start is not None or end is not None):
        raise ValueError("give either a range (start/end) or since, not both")
    if since is not None:
        return Request(
            pairs=tuple(pairs),
            mode="range",
            start_ms=now_ms - parse_duration_ms(since),
            end_ms=now_ms,
            origin=f"since {since}",
        )
    if start is None and end is None:
        return Request(pairs=tuple(pairs), mode="gaps")
    if start is None:
        raise ValueError("a range needs a start (end alone is not a range)")
    start_ms = parse_instant_ms(start)
    end_ms = now_ms if end is None else parse_instant_ms(end)
    if end_ms <= start_ms:
        raise ValueError(f"the range is empty or reversed: {start} .. {end or 'now'}")
    return Request(pairs=tuple(pairs), mode="range", start_ms=start_ms, end_ms=end_ms)
