"""OKX's REST budget shared by every process on one IP, through a Prefect global concurrency limit (GCL).

OKX allows 20 history-trades requests per 2 s per IP. Each process has its own
:class:`~collectors.ratelimit.RateLimiter` (a sliding window, 90 % headroom: 18 per 2 s); when several
processes run at once (two backfills, a live collector catching up), each must take only its share. A GCL with
slot decay as the rate limiter itself would cost an API round trip per request (~90 ms) and lets 32 requests
through a 2 s window (notes/prefect.md section 4), so the GCL is used for *membership* only:

* every REST-using flow run holds one slot of :data:`BUDGET_LIMIT` for its lifetime (a lease, renewed by
  Prefect, freed by the server if the process dies);
* it reads the limit's ``active_slots`` every ``poll_s`` and sets its limiter's share to
  ``1 / active_slots`` (``ratelimit.share_of``);
* joining, it waits ``ratelimit.join_delay_s`` before its first request when others are present (they notice
  it within a poll, and their grants at the old share leave the window); leaving, it keeps its slot until its
  own grants have left the window, so a member that raises its share never meets the leaver's requests;
* a poll that fails (the API is away) drops to the smallest share (``1 / limit``) until the next good poll.

So each process sends at most ``floor(18 / members)`` per sliding 2 s, and their sum stays within 18 in any
2 s window, aligned or not. Without Prefect (the CLI), the share comes from a flag. docs/backfill.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import httpx
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from collectors.ratelimit import RateLimiter, join_delay_s, share_of

__all__ = ["BUDGET_LIMIT", "MAX_MEMBERS", "POLL_S", "BudgetMember", "ensure_budget_limit", "rest_budget"]

log = logging.getLogger(__name__)

BUDGET_LIMIT: Final = "okx-rest-members"
MAX_MEMBERS: Final = 6  # processes sharing the IP's budget at once; a seventh waits for a slot
POLL_S: Final = 2.0
LEASE_S: Final = 120.0  # a dead member's slot is freed by the server after this long (Prefect renews it)

_API_ERRORS = (httpx.HTTPError, PrefectHTTPStatusError, ObjectNotFound, OSError)


@dataclass(slots=True)
class BudgetMember:
    """What a member sees: the members counted at the last poll and the share it took."""

    limiter: RateLimiter
    members: int = 1
    polls: int = 0
    failed_polls: int = 0


async def ensure_budget_limit(name: str = BUDGET_LIMIT, members: int = MAX_MEMBERS) -> None:
    """Create the membership GCL (no slot decay) if it does not exist; an existing one keeps its limit."""
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.upsert_global_concurrency_limit_by_name(name, members)


async def _members(name: str) -> int:
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(name)
    return max(1, limit.active_slots)


async def _max_members(name: str) -> int:
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(name)
    return max(1, limit.limit)


async def _poll(member: BudgetMember, name: str, poll_s: float, floor_share: float) -> None:
    while True:
        await asyncio.sleep(poll_s)
        try:
            members = await _members(name)
        except _API_ERRORS as exc:
            member.failed_polls += 1
            member.limiter.set_share(floor_share)
            log.warning("REST budget: cannot read %s (%s); taking the smallest share", name, exc)
            continue
        member.polls += 1
        if members != member.members:
            log.info("REST budget: %d members, share %.3f", members, share_of(members))
        member.members = members
        member.limiter.set_share(share_of(members))


@contextlib.asynccontextmanager
async def rest_budget(
    limiter: RateLimiter, *, name: str = BUDGET_LIMIT, poll_s: float = POLL_S
) -> AsyncIterator[BudgetMember]:
    """Hold one slot of ``name`` while the body runs and keep ``limiter``'s share at ``1 / members``.

    The limit must exist (:func:`ensure_budget_limit`); a missing one raises Prefect's
    ``ConcurrencySlotAcquisitionError`` rather than running unshared.
    """
    floor_share = share_of(await _max_members(name))
    async with concurrency(name, occupy=1, strict=True, lease_duration=LEASE_S):
        member = BudgetMember(limiter=limiter, members=await _members(name))
        limiter.set_share(share_of(member.members))
        if member.members > 1:
            await asyncio.sleep(join_delay_s(poll_s=poll_s, window_ms=limiter.window_ms))
        poller = asyncio.create_task(_poll(member, name, poll_s, floor_share), name="rest-budget-poll")
        try:
            yield member
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            # leave only once this process's grants no longer count: a member raising its share must not meet them
            await asyncio.sleep(limiter.idle_ms() / 1000)
