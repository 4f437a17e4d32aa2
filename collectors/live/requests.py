"""What one pair asks of REST, and when: hole fills (retried, then given up), catch-up polls, the first trades.

Pure bookkeeping for :class:`~collectors.live.core.PairCore` (no I/O; times are parameters): at most one request
per hole and one poll in flight, a failed hole fill retried ``fill_attempts`` times ``fill_retry_ms`` x attempts
apart, polls every ``poll_interval_ms`` while the stream is silent for ``poll_after_ms`` or catching up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from collectors.live.tape import Hole

__all__ = ["FillRequest", "RestRequests"]

_LATER = 1 << 62  # "no retry planned until this answer comes"


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRequest:
    """Ask REST for trade ids in ``(after_id, before_id)`` (``before_id`` None: up to the newest). ``recent``:
    the latest trades (no frontier yet)."""

    kind: Literal["hole", "poll", "recent"]
    after_id: int
    before_id: int | None


class RestRequests:
    """The REST requests of one pair: planned here, taken and served by the pair's task."""

    def __init__(
        self, *, poll_after_ms: int, poll_interval_ms: int, fill_attempts: int, fill_retry_ms: int
    ) -> None:
        self.poll_after_ms, self.poll_interval_ms = poll_after_ms, poll_interval_ms
        self.fill_attempts, self.fill_retry_ms = fill_attempts, fill_retry_ms
        self._requests: list[FillRequest] = []
        self._in_flight: set[tuple[str, int]] = set()
        self._retry_at: dict[int, tuple[int, int]] = {}  # hole first id -> (attempts, next attempt ms)
        self._last_poll_ms: int | None = None

    @property
    def pending(self) -> bool:
        return bool(self._requests)

    def take(self) -> list[FillRequest]:
        requests, self._requests = self._requests, []
        return requests

    def hole(self, hole: Hole) -> None:
        """A hole opened: ask for its ids at once."""
        self._ask(FillRequest(kind="hole", after_id=hole.first_id - 1, before_id=hole.last_id + 1))

    def answered(self, request: FillRequest) -> None:
        self._in_flight.discard(_key(request))
        if request.kind == "hole":
            self._retry_at.pop(request.after_id + 1, None)

    def failed(self, request: FillRequest, now_ms: int) -> int | None:
        """REST could not answer ``request``: a hole fill is retried later; returns the attempts made when it
        is given up (the caller closes the hole as unrecoverable), else None."""
        self._in_flight.discard(_key(request))
        if request.kind != "hole":
            return None
        first = request.after_id + 1
        attempts = self._retry_at.get(first, (0, 0))[0] + 1
        if attempts < self.fill_attempts:
            self._retry_at[first] = (attempts, now_ms + self.fill_retry_ms * attempts)
            return None
        self._retry_at.pop(first, None)
        return attempts

    def plan(
        self, now_ms: int, *, holes: Sequence[Hole], quiet_ms: int, catching_up: bool, frontier_id: int | None
    ) -> None:
        """Retries that are due, and a poll when the stream is quiet or the pair is catching up."""
        for first, (attempts, at_ms) in list(self._retry_at.items()):
            hole = next((h for h in holes if h.first_id == first), None)
            if hole is not None and now_ms >= at_ms and ("hole", first) not in self._in_flight:
                self._retry_at[first] = (attempts, _LATER)
                self._ask(FillRequest(kind="hole", after_id=first - 1, before_id=hole.last_id + 1))
        if quiet_ms < self.poll_after_ms and not catching_up:
            return
        if any(kind in ("poll", "recent") for kind, _ in self._in_flight):
            return
        if self._last_poll_ms is not None and now_ms - self._last_poll_ms < self.poll_interval_ms:
            return
        self._last_poll_ms = now_ms
        self._ask(
            FillRequest(kind="recent", after_id=0, before_id=None)
            if frontier_id is None
            else FillRequest(kind="poll", after_id=frontier_id, before_id=None)
        )

    def _ask(self, request: FillRequest) -> None:
        self._requests.append(request)
        self._in_flight.add(_key(request))


def _key(request: FillRequest) -> tuple[str, int]:
    return (request.kind, request.after_id + 1 if request.kind == "hole" else 0)
