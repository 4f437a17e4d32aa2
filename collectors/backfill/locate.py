"""Finding trade ids by time over REST: history-trades ``type=2`` pages by timestamp (API.md 2.2).

A backfill is asked for time (a range, the last N days, a coverage gap) but fetches by trade id (OKX's
cursors). ``newest_before(ts)`` is one request: the newest trade with ``ts < ts_ms``, or None when REST serves
none (older than OKX's three months of history-trades, or no trade at all). :func:`oldest_served` finds the
edge of REST's history inside a span by bisection on time (about 20 requests for 90 days at 1-minute
resolution), for a span that starts before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from collectors.errors import ParseError
from collectors.exchanges.okx.limits import HISTORY_TRADES
from collectors.exchanges.okx.rest import OkxRestClient
from collectors.exchanges.okx.rows import digits_field

__all__ = ["EDGE_RESOLUTION_MS", "IdAt", "newest_before", "oldest_served"]

EDGE_RESOLUTION_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class IdAt:
    """A trade's id and time (all a lookup needs)."""

    trade_id: int
    ts_ms: int


async def newest_before(rest: OkxRestClient, inst_id: str, ts_ms: int) -> IdAt | None:
    """The newest trade of ``inst_id`` with ``ts < ts_ms`` that REST serves, or None."""
    params = {"instId": inst_id, "type": "2", "after": str(ts_ms), "limit": "1"}
    data = await rest.get(HISTORY_TRADES, params)
    if not data:
        return None
    row = data[0]
    if not isinstance(row, dict) or row.get("instId") != inst_id:
        raise ParseError(f"OKX {HISTORY_TRADES} type=2: not a trade row of {inst_id}: {row!r:.200}")
    found = IdAt(digits_field(row, "tradeId"), digits_field(row, "ts"))
    if found.ts_ms >= ts_ms:
        raise ParseError(f"OKX {HISTORY_TRADES} type=2 after={ts_ms} returned a trade at {found.ts_ms}")
    return found


async def oldest_served(
    rest: OkxRestClient, inst_id: str, start_ms: int, end_ms: int, *, resolution_ms: int = EDGE_RESOLUTION_MS
) -> IdAt | None:
    """A trade within ``resolution_ms`` above the oldest trade REST serves in ``[start_ms, end_ms)`` (None if
    it serves none before ``end_ms``). Assumes REST serves nothing before ``start_ms``; bisects on time."""
    if resolution_ms < 1:
        raise ValueError(f"resolution_ms must be >= 1, got {resolution_ms}")
    found = await newest_before(rest, inst_id, end_ms)
    if found is None:
        return None
    low, high = start_ms, end_ms  # nothing served before low; ``found`` is served before high
    while high - low > resolution_ms:
        middle = (low + high) // 2
        probe = await newest_before(rest, inst_id, middle)
        if probe is None:
            low = middle
        else:
            high, found = middle, probe
    return found
