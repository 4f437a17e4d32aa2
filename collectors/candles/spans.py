"""A set of half-open millisecond spans ``[start_ms, end_ms)``: the intervals known to lack data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["SpanSet", "check_int_ms"]


class SpanSet:
    """Sorted, merged, disjoint spans. Small by construction: one entry per outage."""

    __slots__ = ("_spans",)

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self._spans: list[tuple[int, int]] = []
        for start_ms, end_ms in spans:
            self.add(start_ms, end_ms)

    def add(self, start_ms: int, end_ms: int) -> None:
        """Include ``[start_ms, end_ms)``; merges with overlapping or touching spans."""
        _check(start_ms, end_ms)
        merged: list[tuple[int, int]] = []
        for s, e in self._spans:
            if e < start_ms or s > end_ms:
                merged.append((s, e))
            else:
                start_ms, end_ms = min(s, start_ms), max(e, end_ms)
        merged.append((start_ms, end_ms))
        self._spans = sorted(merged)

    def remove(self, start_ms: int, end_ms: int) -> None:
        """Exclude ``[start_ms, end_ms)`` (the span was backfilled)."""
        _check(start_ms, end_ms)
        kept: list[tuple[int, int]] = []
        for s, e in self._spans:
            if s < start_ms:
                kept.append((s, min(e, start_ms)))
            if e > end_ms:
                kept.append((max(s, end_ms), e))
        self._spans = [(s, e) for s, e in kept if s < e]

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        """Whether any span intersects ``[start_ms, end_ms)``."""
        return any(s < end_ms and start_ms < e for s, e in self._spans)

    def drop_within(self, start_ms: int, end_ms: int) -> None:
        """Forget the spans lying entirely inside ``[start_ms, end_ms]`` (no candle depends on them any more)."""
        self._spans = [(s, e) for s, e in self._spans if s < start_ms or e > end_ms]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(list(self._spans))

    def __bool__(self) -> bool:
        return bool(self._spans)


def check_int_ms(ts_ms: object) -> None:
    """``TypeError`` unless ``ts_ms`` is an ``int`` (``bool`` is not): times are int epoch milliseconds."""
    if type(ts_ms) is not int:
        raise TypeError(f"time {ts_ms!r} must be int epoch milliseconds, not {type(ts_ms).__name__}")


def _check(start_ms: int, end_ms: int) -> None:
    check_int_ms(start_ms)
    check_int_ms(end_ms)
    if end_ms <= start_ms:
        raise ValueError(f"empty or reversed span [{start_ms}, {end_ms})")
