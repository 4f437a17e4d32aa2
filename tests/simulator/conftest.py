"""Fixtures: a simulator on 127.0.0.1:0 per test, with short timings, plus an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sim_helpers import FIXED_NOW_MS

from okx_simulator import SimulatorConfig, SimulatorServer

FAST = {"tick_ms": 20, "history_hours": 2.0, "candle_push_ms": 200}
# Live tests need activity now: no quiet minutes there (quiet spells are tested on the frozen history).
LIVE = {**FAST, "quiet_prob": 0.0}


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    """A live simulator (wall clock) with a fast market: trades every few hundred ms."""
    async with SimulatorServer(config=SimulatorConfig(seed=11, trade_rate=8.0, **LIVE)) as server:
        yield server


@pytest.fixture
async def fixed_sim() -> AsyncIterator[SimulatorServer]:
    """A simulator whose clock is frozen (REST answers exactly reproducible), without rate limits."""
    config = SimulatorConfig(seed=5, rate_limits=False, **{**FAST, "history_hours": 6.0})
    async with SimulatorServer(config=config, clock=lambda: FIXED_NOW_MS) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
