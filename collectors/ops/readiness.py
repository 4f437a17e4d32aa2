"""The ``/ready`` rule (pure): the database answers and every pair's trade stream is live or catching up."""

from __future__ import annotations

from typing import Final

from collectors.ops.snapshot import Snapshot

__all__ = ["READY_STATES", "not_ready_reasons"]

# a pair whose trade stream is in one of these states is collecting (catching_up: filling holes from REST)
READY_STATES: Final = frozenset({"live", "catching_up"})


def not_ready_reasons(snap: Snapshot, database_error: str | None) -> list[str]:
    """Why the collector is not ready, one line per cause; empty: ready. ``database_error``: None when a
    ``SELECT 1`` on the collector's database just succeeded, else what failed."""
    reasons = [] if database_error is None else [f"database unreachable: {database_error}"]
    if snap.writer.failed:
        reasons.append(f"writer failed: {snap.writer.last_error}")
    for pair in snap.pairs:
        if pair.state not in READY_STATES:
            why = f" ({pair.error})" if pair.error else ""
            reasons.append(f"{pair.inst_id}: trade stream {pair.state}{why}")
    if not snap.pairs:
        reasons.append("no pair configured")
    return reasons
