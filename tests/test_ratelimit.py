"""The shared limiter: the pure sliding window with explicit times, the async edge on a fake clock."""

from __future__ import annotations

import asyncio

import pytest
from builders import FakeClock

from collectors.exchanges.okx.limits import HISTORY_TRADES, OKX_REST_QUOTAS, TRADES
from collectors.ratelimit import Quota, RateLimiter, SlidingWindow, effective_limit

T0 = 1_000_000


def fake_sleep(clock: FakeClock) -> object:
    async def sleep(seconds: float) -> None:
        clock.advance(round(seconds * 1000))
        await asyncio.sleep(0)

    return sleep


def limiter(clock: FakeClock, **kwargs: float) -> RateLimiter:
    return RateLimiter(quotas=OKX_REST_QUOTAS, clock=clock, sleep=fake_sleep(clock), **kwargs)  # type: ignore[arg-type]


def test_effective_limit_keeps_headroom_and_takes_a_share() -> None:
    quota = OKX_REST_QUOTAS[HISTORY_TRADES]
    assert (quota.limit, quota.window_ms) == (20, 2_000)
    assert effective_limit(quota, headroom=0.9, share=1.0) == 18
    assert effective_limit(quota, headroom=1.0, share=1.0) == 20
    assert effective_limit(quota, headroom=0.9, share=0.5) == 9
    assert effective_limit(quota, headroom=0.9, share=0.01) == 1  # never zero: a process always progresses
    assert effective_limit(OKX_REST_QUOTAS[TRADES], headroom=0.9, share=1 / 3) == 30
    for bad in (0.0, 1.5, -1.0):
        with pytest.raises(ValueError, match="headroom and share"):
            effective_limit(quota, headroom=bad, share=1.0)
        with pytest.raises(ValueError, match="headroom and share"):
            effective_limit(quota, headroom=0.9, share=bad)
    with pytest.raises(ValueError, match="limit >= 1"):
        Quota(limit=0, window_ms=2_000)


def test_window_grants_up_to_the_limit_then_says_how_long_to_wait() -> None:
    window = SlidingWindow(limit=3, window_ms=1_000)
    assert [window.try_acquire(0) for _ in range(4)] == [0, 0, 0, 1_000]
    assert window.wait_ms(500) == 500
    assert window.try_acquire(999) == 1
    assert window.try_acquire(1_000) == 0  # the grants at 0 left the window at exactly 1000
    assert window.in_window(1_000) == 1


def test_window_slides_with_each_grant() -> None:
    window = SlidingWindow(limit=3, window_ms=1_000)
    for t in (0, 400, 800):
        assert window.try_acquire(t) == 0
    assert window.try_acquire(900) == 100  # the grant at 0 leaves at 1000
    assert window.try_acquire(1_000) == 0
    assert window.try_acquire(1_100) == 300  # now the grant at 400 is the one in the way
    assert window.try_acquire(1_400) == 0


def test_window_never_holds_more_than_the_limit_for_a_greedy_caller() -> None:
    window = SlidingWindow(limit=18, window_ms=2_000)
    granted: list[int] = []
    now = 0
    while len(granted) < 200:
        now += 37  # tries every 37 ms, whether told to wait or not
        if window.try_acquire(now) == 0:
            granted.append(now)
    for start in range(granted[-1] + 1):  # every 2-second window, sliding by 1 ms
        assert sum(1 for t in granted if start <= t < start + 2_000) <= 18
    # ...and in OKX's epoch-aligned windows too
    assert max(sum(1 for t in granted if t // 2_000 == w) for w in range(granted[-1] // 2_000 + 1)) == 18


def test_pause_holds_every_grant_and_is_never_shortened() -> None:
    window = SlidingWindow(limit=5, window_ms=1_000)
    window.pause(700)
    window.pause(300)
    assert window.try_acquire(100) == 600
    assert window.try_acquire(700) == 0


async def test_limiter_spaces_two_tasks_sharing_a_key() -> None:
    clock = FakeClock(T0)
    shared = limiter(clock)
    times: list[int] = []

    async def client() -> None:
        for _ in range(20):
            await shared.acquire(HISTORY_TRADES)
            times.append(clock())

    async with asyncio.TaskGroup() as group:
        group.create_task(client())
        group.create_task(client())
    assert times == [T0] * 18 + [T0 + 2_000] * 18 + [T0 + 4_000] * 4
    assert shared.in_window(HISTORY_TRADES) == 4


async def test_keys_are_independent_and_unknown_keys_are_a_bug() -> None:
    clock = FakeClock(T0)
    shared = limiter(clock)
    for _ in range(18):
        await shared.acquire(HISTORY_TRADES)
    await shared.acquire(TRADES)
    assert clock() == T0
    with pytest.raises(KeyError):
        await shared.acquire("/api/v5/market/nothing")


async def test_share_and_headroom_set_the_limit() -> None:
    clock = FakeClock(T0)
    shared = limiter(clock, share=0.5)
    assert shared.limit(HISTORY_TRADES) == 9
    shared.set_share(0.25)
    assert (shared.limit(HISTORY_TRADES), shared.limit(TRADES)) == (4, 22)
    assert limiter(clock, headroom=1.0).limit(HISTORY_TRADES) == 20


async def test_defer_pauses_the_key_for_every_caller() -> None:
    clock = FakeClock(T0)
    shared = limiter(clock)
    await shared.acquire(HISTORY_TRADES)
    shared.defer(HISTORY_TRADES, 1.5)
    await shared.acquire(HISTORY_TRADES)
    assert clock() == T0 + 1_500
    await shared.acquire(TRADES)  # another endpoint is not paused
    assert clock() == T0 + 1_500


async def test_idle_says_when_the_last_grant_leaves_its_window() -> None:
    clock = FakeClock(T0)
    shared = limiter(clock)
    assert shared.idle_ms() == 0 and shared.window_ms == 2_000
    await shared.acquire(HISTORY_TRADES)
    clock.advance(500)
    await shared.acquire(TRADES)
    assert shared.idle_ms() == 2_000  # the TRADES grant at T0 + 500 counts until T0 + 2500
    clock.advance(2_000)
    assert shared.idle_ms() == 0
