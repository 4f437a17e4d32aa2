"""Shared state of a running simulator: market, clock, faults, counters and rate-limit windows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from okx_simulator.config import SimulatorConfig
from okx_simulator.faults import FaultRegistry
from okx_simulator.market import Market

__all__ = ["Clock", "RateLimiter", "SimState", "Stats", "system_clock"]

Clock = Callable[[], int]
_WINDOW_MS: Final = 2_000


def system_clock() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Stats:
    """Counters served by GET /sim/stats."""

    connections: int = 0
    connections_total: int = 0
    frames_sent: int = 0
    requests: int = 0
    http_429: int = 0

    def to_json(self, faults: int) -> dict[str, int]:
        return {
            "connections": self.connections,
            "connections_total": self.connections_total,
            "frames_sent": self.frames_sent,
            "requests": self.requests,
            "http_429": self.http_429,
            "faults": faults,
        }


@dataclass(slots=True)
class RateLimiter:
    """OKX-style fixed 2-second windows per (client, endpoint)."""

    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def allow(self, client: str, path: str, limit: int, now_ms: int) -> bool:
        window = now_ms // _WINDOW_MS
        if len(self.counts) > 10_000:
            self.counts = {k: v for k, v in self.counts.items() if k[2] >= window}
        key = (client, path, window)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key] <= limit


@dataclass(slots=True, kw_only=True)
class SimState:
    """What every handler of one simulator shares."""

    config: SimulatorConfig
    market: Market
    clock: Clock
    faults: FaultRegistry
    stats: Stats = field(default_factory=Stats)
    limiter: RateLimiter = field(default_factory=RateLimiter)
