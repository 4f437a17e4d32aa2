"""What a backfill asks REST for (pure): spans of time, holes of trade ids, chunks of a hole.

A backfill starts from *spans* of time per pair: an ad-hoc range, "the last N days", or the open gaps of the
``coverage`` ledger. Each span is turned into *holes* (runs of trade ids missing from ``trades`` between two
known ids, with the time they cover) by :mod:`collectors.backfill.work`; trade-id holes among stored trades are
holes already. A hole is fetched in *chunks* of at most ``max_ids`` ids (about ``max_ids / 100`` history-trades
pages), one retried unit of work each. Nothing here does I/O; time is passed in.

Coverage rules (``CoverageStatus``): a ``gap`` span is open until a ``backfilled`` or a *final* ``unrecoverable``
span covers it. ``unrecoverable`` spans written by a backfill (reason starting with :data:`FINAL_PREFIX`) are
final and never asked again; the live collectors' own ``unrecoverable`` verdicts (REST failed while they were
catching up) are asked once more by the next backfill, which then records its own verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from collectors.storage.records import CoverageStatus

__all__ = [
    "DEFAULT_CHUNK_IDS",
    "FINAL_PREFIX",
    "Chunk",
    "CoverageEntry",
    "Hole",
    "Span",
    "chunks_of",
    "merge_holes",
    "open_gaps",
    "subtract",
    "union",
]

DEFAULT_CHUNK_IDS: Final = 10_000  # 100 history-trades pages: ~11 s at a whole 18/2 s budget
FINAL_PREFIX: Final = "backfill: "  # reasons of the unrecoverable spans a backfill wrote (never asked again)


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """``[start_ms, end_ms)`` of ``inst_id`` to backfill; ``origin`` says why (range, since, coverage gap...)."""

    inst_id: str
    start_ms: int
    end_ms: int
    origin: str

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"a span needs start_ms < end_ms, got [{self.start_ms}, {self.end_ms})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hole:
    """Trade ids ``after_id < id < before_id`` of ``inst_id`` missing from ``trades``, over ``[start_ms,
    end_ms)`` of time (from the trades around it). ``bottom_open``: ``after_id`` is below the oldest trade REST
    serves (the span starts before OKX's history), so the fetch pages down to REST's edge."""

    inst_id: str
    after_id: int
    before_id: int
    start_ms: int
    end_ms: int
    origin: str
    bottom_open: bool = False

    def __post_init__(self) -> None:
        if self.before_id <= self.after_id + 1:
            raise ValueError(f"a hole needs at least one id, got ({self.after_id}, {self.before_id})")
        if self.end_ms <= self.start_ms:
            raise ValueError(f"a hole needs start_ms < end_ms, got [{self.start_ms}, {self.end_ms})")

    @property
    def ids(self) -> int:
        return self.before_id - self.after_id - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """Ids ``after_id < id < before_id`` of hole number ``hole`` (its index in the plan), fetched as one unit."""

    inst_id: str
    hole: int
    after_id: int
    before_id: int
    bottom_open: bool = False

    @property
    def label(self) -> str:
        return f"{self.inst_id} ids {self.after_id + 1}-{self.before_id - 1}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageEntry:
    """One ``coverage`` row as the planner needs it."""

    start_ms: int
    end_ms: int
    status: CoverageStatus
    reason: str | None


def union(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, merged ``[start, end)`` spans (touching spans merge)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(spans: Iterable[tuple[int, int]], cut: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``spans`` outside every span of ``cut`` (sorted, merged)."""
    holes = union(cut)
    out: list[tuple[int, int]] = []
    for start, end in union(spans):
        for c_start, c_end in holes:
            if c_end <= start or c_start >= end:
                continue
            if c_start > start:
                out.append((start, c_start))
            start = max(start, c_end)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out


def is_final(entry: CoverageEntry) -> bool:
    """A span no backfill asks again: backfilled, or unrecoverable by a backfill's own verdict."""
    if entry.status is CoverageStatus.BACKFILLED:
        return True
    return entry.status is CoverageStatus.UNRECOVERABLE and (entry.reason or "").startswith(FINAL_PREFIX)


def open_gaps(entries: Sequence[CoverageEntry]) -> list[tuple[int, int]]:
    """Time still to backfill: ``gap`` spans (and the live collectors' own ``unrecoverable`` ones) minus every
    final span (see :func:`is_final`)."""
    wanted = [
        (e.start_ms, e.end_ms)
        for e in entries
        if e.status is CoverageStatus.GAP or (e.status is CoverageStatus.UNRECOVERABLE and not is_final(e))
    ]
    done = [(e.start_ms, e.end_ms) for e in entries if is_final(e)]
    return subtract(wanted, done)


def final_unrecoverable(entries: Sequence[CoverageEntry]) -> list[tuple[int, int]]:
    """Spans a backfill already gave up on (never asked again)."""
    return union(
        (e.start_ms, e.end_ms) for e in entries if e.status is CoverageStatus.UNRECOVERABLE and is_final(e)
    )


def merge_holes(holes: Iterable[Hole]) -> list[Hole]:
    """Holes of one pair whose ids overlap or touch merged into one, ascending by id."""
    out: list[Hole] = []
    for hole in sorted(holes, key=lambda h: (h.inst_id, h.after_id, h.before_id)):
        last = out[-1] if out else None
        if (
            last is not None
            and last.inst_id == hole.inst_id
            and hole.after_id + 1 <= last.before_id  # overlapping or adjacent ids
            and not (last.bottom_open or hole.bottom_open)  # a bottom-open hole stays one chunk of its own
        ):
            out[-1] = Hole(
                inst_id=hole.inst_id,
                after_id=last.after_id,
                before_id=max(last.before_id, hole.before_id),
                start_ms=min(last.start_ms, hole.start_ms),
                end_ms=max(last.end_ms, hole.end_ms),
                origin=last.origin if last.origin == hole.origin else f"{last.origin}+{hole.origin}",
            )
        else:
            out.append(hole)
    return out


def chunks_of(holes: Sequence[Hole], *, max_ids: int = DEFAULT_CHUNK_IDS) -> list[Chunk]:
    """Each hole cut into chunks of at most ``max_ids`` ids, oldest first. A bottom-open hole is one chunk:
    its ``after_id`` is no real bound (the pager stops at REST's edge, a few pages below ``before_id``)."""
    if max_ids < 1:
        raise ValueError(f"max_ids must be >= 1, got {max_ids}")
    out: list[Chunk] = []
    for index, hole in enumerate(holes):
        if hole.bottom_open:
            out.append(
                Chunk(
                    inst_id=hole.inst_id,
                    hole=index,
                    after_id=hole.after_id,
                    before_id=hole.before_id,
                    bottom_open=True,
                )
            )
            continue
        after = hole.after_id
        while after + 1 < hole.before_id:
            before = min(after + max_ids + 1, hole.before_id)
            out.append(Chunk(inst_id=hole.inst_id, hole=index, after_id=after, before_id=before))
            after = before - 1
    return out
