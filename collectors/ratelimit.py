"""Request budgets per endpoint: one limiter per process, shared by every client in it.

An exchange states its REST limits as "N requests per window per IP" (OKX: 20 requests / 2 s on history-trades).
:class:`SlidingWindow` is the pure core for one such quota: it remembers when it granted its last requests and
says how long a caller must wait before the next one, so that no window of ``window_ms`` (sliding, hence also
any window the exchange aligns to its own clock) ever holds more than the effective limit. Grants are recorded
at the moment they are made, never reserved ahead, so a caller that wakes late (a busy event loop) cannot push
two batches into one window.

:class:`RateLimiter` is the async edge: one :class:`SlidingWindow` per key (an endpoint), waiters of a key served
first come first served, clock and sleep injected. It is built once per process and passed to every client
(there is no module-level limiter).

The effective limit of a quota is ``floor(limit * headroom * share)``, at least 1:

* ``headroom`` (default :data:`DEFAULT_HEADROOM`, 0.9) leaves part of the exchange's quota unused, for clock and
  latency skew between our window and the exchange's and for requests we do not see (a user's own scripts).
* ``share`` (default 1.0) is this process's part of the quota when several processes on one IP split it
  (issue 10 hands each process a fraction); :meth:`RateLimiter.set_share` changes it while running.

Several processes on one IP (two backfills and a live catch-up) split a quota by membership: each one counts
the members (issue 10: the slots held in a Prefect global concurrency limit, ``tasks/rest_budget.py``) and
takes :func:`share_of` them. A process joining waits :func:`join_delay_s` before its first request (the others
see it within a poll and their grants at the old share leave the window); a process leaving keeps its slot for
one window after its last request, so no window ever holds more than one full quota (docs/backfill.md).

A process that needs a share only while it actually sends (a live collector, idle between catch-ups) sets
:attr:`RateLimiter.gate`: every :meth:`~RateLimiter.acquire` runs inside ``gate(key)``, which can join the shared
budget first and knows when the process stops sending (``tasks/rest_budget.py``).

After the exchange refused a request for rate reasons anyway, :meth:`RateLimiter.defer` pauses the key for every
client of the process, so the next attempts do not pile on a budget that is already spent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_HEADROOM",
    "Quota",
    "RateLimiter",
    "SlidingWindow",
    "effective_limit",
    "join_delay_s",
    "monotonic_ms",
    "share_of",
]

DEFAULT_HEADROOM: Final = 0.9


@dataclass(frozen=True, slots=True, kw_only=True)
class Quota:
    """An exchange's published limit: ``limit`` requests per ``window_ms``; ``source`` says where it is stated."""

    limit: int
    window_ms: int
    source: str = ""

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_ms < 1:
            raise ValueError(
                f"a quota needs limit >= 1 and window_ms >= 1, got {self.limit}/{self.window_ms}"
            )


def effective_limit(quota: Quota, *, headroom: float, share: float) -> int:
    """Requests per window this process may send: ``floor(limit * headroom * share)``, at least 1."""
    if not 0 < headroom <= 1 or not 0 < share <= 1:
        raise ValueError(f"headroom and share must be in (0, 1], got {headroom} and {share}")
    # the epsilon keeps 20 * 0.9 == 18 (not 17.999...) from losing a request to float rounding
    return max(1, math.floor(quota.limit * headroom * share + 1e-9))


def share_of(members: int) -> float:
    """This process's share of every quota when ``members`` processes split it evenly (at least 1 member)."""
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    return 1.0 / members


def join_delay_s(*, poll_s: float, window_ms: int, margin_s: float = 1.0) -> float:
    """How long a process joining a shared budget waits before its first request: every other member notices it
    within ``poll_s`` (and a poll's round trip, ``margin_s``), then their grants at the old share need a window
    to leave."""
    if poll_s <= 0 or window_ms < 1 or margin_s < 0:
        raise ValueError(
            f"need poll_s > 0, window_ms >= 1, margin_s >= 0; got {poll_s}, {window_ms}, {margin_s}"
        )
    return poll_s + window_ms / 1000 + margin_s


class SlidingWindow:
    """At most ``limit`` grants in any ``window_ms`` of the caller's clock. Pure: time is passed in."""

    __slots__ = ("_granted", "_paused_until_ms", "limit", "window_ms")

    def __init__(self, *, limit: int, window_ms: int) -> None:
        if limit < 1 or window_ms < 1:
            raise ValueError(f"a window needs limit >= 1 and window_ms >= 1, got {limit}/{window_ms}")
        self.limit = limit
        self.window_ms = window_ms
        self._granted: deque[int] = deque()
        self._paused_until_ms = 0

    def wait_ms(self, now_ms: int) -> int:
        """Milliseconds until a request may be granted (0: now). Does not grant."""
        granted = self._granted
        while granted and granted[0] <= now_ms - self.window_ms:
            granted.popleft()
        wait = 0
        if len(granted) >= self.limit:
            # the oldest grant that must leave the window before one more fits
            wait = granted[len(granted) - self.limit] + self.window_ms - now_ms
        return max(wait, self._paused_until_ms - now_ms, 0)

    def try_acquire(self, now_ms: int) -> int:
        """Grant a request at ``now_ms`` and return 0, or return the milliseconds to wait (nothing granted)."""
        wait = self.wait_ms(now_ms)
        if wait == 0:
            self._granted.append(now_ms)
        return wait

    def pause(self, until_ms: int) -> None:
        """Grant nothing before ``until_ms`` (the exchange said the budget is spent); never shortens a pause."""
        self._paused_until_ms = max(self._paused_until_ms, until_ms)

    def busy_until_ms(self) -> int:
        """When the newest grant leaves the window (0: nothing granted yet)."""
        return self._granted[-1] + self.window_ms if self._granted else 0

    def in_window(self, now_ms: int) -> int:
        """Grants made in the window ending at ``now_ms`` (for status and tests)."""
        return sum(1 for t in self._granted if t > now_ms - self.window_ms)


def monotonic_ms() -> int:
    """A monotonic clock in milliseconds: the limiter's default (windows need no calendar time)."""
    return time.monotonic_ns() // 1_000_000


class RateLimiter:
    """Shared request budgets keyed by name (for REST: the endpoint path). Safe for many tasks of one loop.

    ``quotas`` maps each key to its exchange quota; an unknown key is a caller's bug (``KeyError``).
    ``clock`` returns milliseconds (monotonic by default); ``sleep`` takes seconds (``asyncio.sleep``).
    """

    def __init__(
        self,
        *,
        quotas: Mapping[str, Quota],
        headroom: float = DEFAULT_HEADROOM,
        share: float = 1.0,
        clock: Callable[[], int] = monotonic_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._quotas = dict(quotas)
        self.headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._windows: dict[str, SlidingWindow] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.share = share
        # every acquire runs inside gate(key) when set: a shared budget's membership taken on demand
        self.gate: Callable[[str], AbstractAsyncContextManager[None]] | None = None
        for key, quota in self._quotas.items():
            limit = effective_limit(quota, headroom=headroom, share=share)
            self._windows[key] = SlidingWindow(limit=limit, window_ms=quota.window_ms)
            self._locks[key] = asyncio.Lock()

    def limit(self, key: str) -> int:
        """The effective limit of ``key`` per window."""
        return self._windows[key].limit

    def set_share(self, share: float) -> None:
        """Take ``share`` of every quota from now on (grants already made still count in their window)."""
        for key, quota in self._quotas.items():
            self._windows[key].limit = effective_limit(quota, headroom=self.headroom, share=share)
        self.share = share

    async def acquire(self, key: str) -> None:
        """Wait until a request on ``key`` fits the budget, and count it. First come, first served."""
        if self.gate is None:
            await self._take(key)
            return
        async with self.gate(key):
            await self._take(key)

    async def _take(self, key: str) -> None:
        window = self._windows[key]
        async with self._locks[key]:
            while (wait := window.try_acquire(self._clock())) > 0:
                await self._sleep(wait / 1000)

    def defer(self, key: str, delay_s: float) -> None:
        """Grant nothing on ``key`` for ``delay_s`` seconds from now, to every caller sharing this limiter."""
        self._windows[key].pause(self._clock() + math.ceil(delay_s * 1000))

    def in_window(self, key: str) -> int:
        """Requests granted on ``key`` within the current window."""
        return self._windows[key].in_window(self._clock())

    @property
    def window_ms(self) -> int:
        """The longest window of the quotas (how long a grant counts somewhere)."""
        return max(q.window_ms for q in self._quotas.values())

    def idle_ms(self) -> int:
        """Milliseconds until every grant made so far has left its window (0: none counts any more)."""
        now = self._clock()
        return max([0, *(w.busy_until_ms() - now for w in self._windows.values())])
