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

A live collector sends REST requests only now and then (a catch-up after a reconnect, a hole's fill), so it is a
member *on demand* (``on_demand=True``): its limiter's :attr:`~collectors.ratelimit.RateLimiter.gate` joins
before the first REST request (holding the slot in a task of its own, waiting the join delay when others are
present) and leaves once no REST request was asked for ``linger_s`` and its grants have left the window. An
idle live run therefore takes no share from a backfill; a request arriving while it leaves waits and joins
again. Its WebSocket connects (another key of the same limiter) never join.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Final

import httpx
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from collectors.exchanges.okx.limits import OKX_REST_QUOTAS
from collectors.ratelimit import RateLimiter, join_delay_s, share_of

__all__ = [
    "BUDGET_LIMIT",
    "LINGER_S",
    "MAX_MEMBERS",
    "POLL_S",
    "BudgetMember",
    "ensure_budget_limit",
    "rest_budget",
]

log = logging.getLogger(__name__)

BUDGET_LIMIT: Final = "okx-rest-members"
MAX_MEMBERS: Final = 6  # processes sharing the IP's budget at once; a seventh waits for a slot
POLL_S: Final = 2.0
LEASE_S: Final = 120.0  # a dead member's slot is freed by the server after this long (Prefect renews it)
LINGER_S: Final = 30.0  # an on-demand member leaves after this long without a REST request
JOIN_RETRY_S: Final = 30.0  # after a join the API refused: requests go at the smallest share this long

_API_ERRORS = (httpx.HTTPError, PrefectHTTPStatusError, ObjectNotFound, OSError)


@dataclass(slots=True)
class BudgetMember:
    """What a member sees: the members counted at the last poll and the share it took."""

    limiter: RateLimiter
    members: int = 1
    polls: int = 0
    failed_polls: int = 0
    demand: _OnDemand | None = None  # an on-demand member's state (joined, joins)


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


class _OnDemand:
    """Membership held only while REST is used: the limiter's gate. One event loop (the limiter's)."""

    def __init__(
        self, member: BudgetMember, *, name: str, poll_s: float, linger_s: float, gated: Collection[str]
    ) -> None:
        self.member, self.name, self.poll_s, self.linger_s, self.gated = member, name, poll_s, linger_s, gated
        self.joined = False  # a member and past the join delay: requests may go
        self.in_flight = 0  # acquires of gated keys inside the gate now
        self.last_used_s = 0.0
        self.joins = 0
        self.failed_joins = 0
        self.floor_share = 1.0  # the smallest share (1 / the limit's slots): taken while the API is away
        self._unshared_until_s = 0.0  # after a failed join: requests go at the floor share until then
        self._change = asyncio.Lock()
        self._holder: asyncio.Task[None] | None = None
        self._release = asyncio.Event()

    @contextlib.asynccontextmanager
    async def gate(self, key: str) -> AsyncIterator[None]:
        if key not in self.gated:
            yield
            return
        self.in_flight += 1
        try:
            if not self.joined and time.monotonic() >= self._unshared_until_s:
                async with self._change:
                    if not self.joined and time.monotonic() >= self._unshared_until_s:
                        await self._join_or_floor()
            yield
        finally:
            self.in_flight -= 1
            self.last_used_s = time.monotonic()

    async def _hold(self, held: asyncio.Event) -> None:
        # the slot's lease lives in this task from acquiring to releasing (Prefect's lease scope is per task)
        async with concurrency(self.name, occupy=1, strict=True, lease_duration=LEASE_S):
            held.set()
            await self._release.wait()

    async def _join_or_floor(self) -> None:
        """Join; when the Prefect API cannot be reached (a server restart), go on at the smallest share for a
        while instead: the catch-up must not wait for the server, and ``limit`` members at the smallest share
        still fit the quota together."""
        try:
            await self._join()
        except (*_API_ERRORS, ConcurrencySlotAcquisitionError) as exc:
            self.failed_joins += 1
            with contextlib.suppress(*_API_ERRORS, ConcurrencySlotAcquisitionError):
                await (
                    self._drop()
                )  # a slot taken before the failure: given back (the server frees it otherwise)
            self._unshared_until_s = time.monotonic() + JOIN_RETRY_S
            self.member.limiter.set_share(self.floor_share)
            log.warning(
                "REST budget: cannot join %s (%s); sending at the smallest share for %.0f s",
                self.name, exc, JOIN_RETRY_S,
            )  # fmt: skip

    async def _join(self) -> None:
        held, self._release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(self._hold(held), name="rest-budget-slot")
        waiting = asyncio.create_task(held.wait())
        await asyncio.wait({holder, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if holder.done():  # it could not take a slot: Prefect's error (the API away: the smallest share)
            await holder
        self._holder = holder
        holder.add_done_callback(self._ended)
        members = await _members(self.name)
        self.member.members = members
        self.member.limiter.set_share(share_of(members))
        if members > 1:
            await asyncio.sleep(join_delay_s(poll_s=self.poll_s, window_ms=self.member.limiter.window_ms))
        self.joins += 1
        self.joined = True
        log.info("REST budget: joined %s (%d members)", self.name, members)

    def _ended(self, holder: asyncio.Task[None]) -> None:
        """The slot's task ended: released by us, or its lease lost (Prefect cancelled it). A lost slot is no
        membership: the next request joins again."""
        if holder is self._holder:
            self._holder, self.joined = None, False
            log.warning("REST budget: the slot of %s was lost; joining again at the next request", self.name)

    def unshared(self) -> bool:
        """Sending without a slot at the smallest share (a join the API refused, for ``JOIN_RETRY_S``)."""
        return time.monotonic() < self._unshared_until_s

    def idle(self) -> bool:
        return self.in_flight == 0 and time.monotonic() - self.last_used_s >= self.linger_s

    async def leave_if_idle(self) -> None:
        """Leave when no gated request was asked for ``linger_s``: once its grants left the window."""
        if not self.joined or not self.idle():
            return
        async with self._change:
            self.joined = False  # a request asked from now on waits for this lock, then joins again
            await asyncio.sleep(self.member.limiter.idle_ms() / 1000)
            await self._drop()
        log.info("REST budget: left %s (idle for %.0f s)", self.name, self.linger_s)

    async def _drop(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            self._release.set()
            await holder

    async def close(self) -> None:
        async with self._change:
            self.joined = False
            await asyncio.sleep(self.member.limiter.idle_ms() / 1000)
            await self._drop()


@contextlib.asynccontextmanager
async def rest_budget(
    limiter: RateLimiter,
    *,
    name: str = BUDGET_LIMIT,
    poll_s: float = POLL_S,
    on_demand: bool = False,
    linger_s: float = LINGER_S,
    gated: Collection[str] = tuple(OKX_REST_QUOTAS),
) -> AsyncIterator[BudgetMember]:
    """Hold one slot of ``name`` while the body runs and keep ``limiter``'s share at ``1 / members``.

    ``on_demand``: hold the slot only while ``limiter`` is used for one of the ``gated`` keys (OKX's REST
    endpoints), joining before the first such request and leaving ``linger_s`` after the last one (a live
    collector); the body starts at once. The limit must exist (:func:`ensure_budget_limit`); a missing one
    raises Prefect's ``ConcurrencySlotAcquisitionError`` rather than running unshared.
    """
    if on_demand:
        async with _on_demand_budget(limiter, name=name, poll_s=poll_s, linger_s=linger_s, gated=gated) as m:
            yield m
        return
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


@contextlib.asynccontextmanager
async def _on_demand_budget(
    limiter: RateLimiter, *, name: str, poll_s: float, linger_s: float, gated: Collection[str]
) -> AsyncIterator[BudgetMember]:
    floor_share = share_of(await _max_members(name))
    member = BudgetMember(limiter=limiter, members=await _members(name))
    limiter.set_share(share_of(member.members))
    demand = _OnDemand(member, name=name, poll_s=poll_s, linger_s=linger_s, gated=gated)
    demand.floor_share = floor_share
    member.demand = demand
    limiter.gate = demand.gate

    async def poll() -> None:
        while True:
            await asyncio.sleep(poll_s)
            try:
                await demand.leave_if_idle()
                members = await _members(name)
            except _API_ERRORS as exc:
                member.failed_polls += 1
                if demand.joined:
                    limiter.set_share(floor_share)
                log.warning("REST budget: cannot read %s (%s); taking the smallest share", name, exc)
                continue
            member.polls += 1
            # a joiner sets its own share once it holds the slot; after a failed join it keeps the smallest one
            if demand.joined or not (demand.in_flight or demand.unshared()):
                member.members = members
                limiter.set_share(share_of(members))

    poller = asyncio.create_task(poll(), name="rest-budget-poll")
    try:
        yield member
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        limiter.gate = None
        await demand.close()
