"""Health of a pair collector: one status object per pair, one entry per channel (issue 7 exposes them).

The pair's core (``core.py``) knows its trades, gaps and messages; the manager (``runner.py``) knows the
connections, so it completes what the core reports: ``reconnects``, the state of each channel's connection,
a clean stop (``stopped``) and an endpoint lost for good (``failed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ChannelHealth", "ChannelMeter", "PairHealth"]

_WINDOW_MS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHealth:
    """``state``: ``live`` (its connection is up and a message came), ``waiting`` (up, nothing received yet),
    ``down`` (its connection is away; reconnecting), ``failed`` (the exchange refused the subscription, or its
    endpoint failed for good: ``error`` says which), ``stopped`` (the run ended cleanly).
    ``last_message_age_ms`` is the age of the channel's last data push (acks do not count), None before the
    first. ``reconnects``: new connections of the channel's endpoint after the first, each counted once
    whether or not a message came through it (a planned 64008 switch is one)."""

    channel: str
    state: str
    last_message_age_ms: int | None
    messages: int
    messages_per_s: float
    rejected: int
    error: str | None = None
    reconnects: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PairHealth:
    """``state``: ``live``, ``catching_up`` (holes or an outage being filled from REST), ``down`` (the trade
    stream's connection is away; REST keeps the tape), ``failed`` (the endpoint of its trade stream failed for
    good: the pair was stopped, ``error`` says why), ``stopped`` (the run ended cleanly).
    ``reconnects``: new connections after the first of every endpoint the pair uses (see ChannelHealth).
    ``trades_channel``: the channel of its trade stream (``trades-all`` or ``trades``), None without one."""

    inst_id: str
    state: str
    channels: tuple[ChannelHealth, ...]
    reconnects: int
    trades_stored: int
    duplicates: int
    gaps_found: int
    gaps_filled: int
    gaps_unrecoverable: int
    gaps_open: int
    rest_trades: int
    rejected: int
    revision_requests: int
    frontier_id: int | None
    writer_lag_ms: int | None = None
    trades_channel: str | None = None
    error: str | None = None

    def channel(self, name: str) -> ChannelHealth | None:
        return next((c for c in self.channels if c.channel == name), None)


@dataclass(slots=True)
class ChannelMeter:
    """Counts of one channel; the rate is over the last 10 s (whole seconds)."""

    channel: str
    messages: int = 0
    rejected: int = 0
    last_ms: int | None = None
    failed: str | None = None
    _seconds: dict[int, int] = field(default_factory=dict)

    def seen(self, now_ms: int) -> None:
        self.messages += 1
        self.last_ms = now_ms
        second = now_ms // 1000
        self._seconds[second] = self._seconds.get(second, 0) + 1
        if len(self._seconds) > 12:
            for old in [s for s in self._seconds if s <= second - _WINDOW_MS // 1000]:
                del self._seconds[old]

    def health(self, now_ms: int, *, down: bool) -> ChannelHealth:
        first = now_ms // 1000 - _WINDOW_MS // 1000
        recent = sum(n for s, n in self._seconds.items() if s >= first)
        if self.failed is not None:
            state = "failed"
        elif down:
            state = "down"
        else:
            state = "waiting" if self.last_ms is None else "live"
        return ChannelHealth(
            channel=self.channel,
            state=state,
            last_message_age_ms=None if self.last_ms is None else now_ms - self.last_ms,
            messages=self.messages,
            messages_per_s=recent / (_WINDOW_MS / 1000),
            rejected=self.rejected,
            error=self.failed,
        )
