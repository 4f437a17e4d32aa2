"""Retry delays: capped exponential backoff with jitter, as a plain generator that tests can replace."""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["backoff"]


def backoff(
    *,
    initial_s: float = 0.5,
    factor: float = 2.0,
    max_s: float = 30.0,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays ``initial_s, initial_s * factor, ...`` capped at ``max_s``, each scaled by 1 +/- ``jitter``."""
    if initial_s <= 0 or factor < 1 or max_s < initial_s or not 0 <= jitter < 1:
        raise ValueError("backoff needs 0 < initial_s <= max_s, factor >= 1 and 0 <= jitter < 1")
    rand = rng or random.Random()
    delay = initial_s
    while True:
        yield min(max_s, delay) * (1 + rand.uniform(-jitter, jitter))
        delay = min(max_s, delay * factor)
