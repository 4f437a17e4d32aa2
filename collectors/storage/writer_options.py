"""The batched writer's settings and its report: :class:`WriterOptions` in, :class:`WriterStats` out; its clock.

The options and stats are re-exported by :mod:`collectors.storage.writer`, which is where callers import them from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ForwardClock", "WriterOptions", "WriterStats", "wall_clock_ms"]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ForwardClock:
    """Milliseconds from ``clock``, never earlier than an instant already handed out: ``updated_at`` orders the
    states of a row (an older state never replaces a newer one), so a wall clock stepped back by NTP must not
    make a newer state look older."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._last_ms = 0

    def now(self) -> int:
        now = self._clock()
        if now < self._last_ms:
            return self._last_ms
        self._last_ms = now
        return now


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterOptions:
    max_batch_rows: int = 5_000
    flush_interval_s: float = 0.25
    max_pending_rows: int = 200_000
    spill_dir: Path | None = None
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    close_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_batch_rows < 1 or self.max_pending_rows < 2 * self.max_batch_rows:
            # room for a batch in flight and the next one filling up
            raise ValueError("need 1 <= max_batch_rows and max_pending_rows >= 2 * max_batch_rows")
        if self.flush_interval_s <= 0 or self.retry_initial_s <= 0 or self.retry_max_s < self.retry_initial_s:
            raise ValueError(
                "flush_interval_s and retry delays must be positive, retry_max_s >= retry_initial_s"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStats:
    pending_rows: int
    spilled_rows: int
    written_rows: int
    unchanged_rows: int
    dead_rows: int
    retries: int
    healthy: bool
    failed: bool  # the writer stopped on a non-transient error or a bug; see last_error
    lag_ms: int
    last_error: str | None
