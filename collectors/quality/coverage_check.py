"""Telling a missing candle from a quiet minute: the coverage ledger says which empty buckets were watched."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Sequence

from collectors.model import Timeframe
from collectors.quality.findings import merge_spans
from collectors.storage.records import WATCHED, CoverageSpan, CoverageStatus

__all__ = ["held_open", "uncovered_buckets"]


def uncovered_buckets(
    start_ms: int, end_ms: int, tf: Timeframe, traded: Collection[int], spans: Sequence[CoverageSpan]
) -> list[tuple[int, int, str]]:
    """Runs of buckets of ``tf`` inside ``[start_ms, end_ms)`` with no trade (``traded``: open times of buckets
    with trades) that ``collected`` / ``backfilled`` spans do not cover entirely, as ``(start, end, why)``:
    nobody can say whether they were quiet. ``why`` names an ``unrecoverable`` span's reason when one
    overlaps, else ``no coverage``. A bucket without trades inside watched spans is a quiet one: no finding."""
    watched = merge_spans((s.start_ms, s.end_ms) for s in spans if s.status in WATCHED)
    starts = [a for a, _ in watched]
    lost = [s for s in spans if s.status is CoverageStatus.UNRECOVERABLE]
    runs: list[tuple[int, int, str]] = []
    bucket = tf.bucket_start_ms(start_ms)
    if bucket < start_ms:
        bucket += tf.duration_ms
    while bucket + tf.duration_ms <= end_ms:
        end = bucket + tf.duration_ms
        index = bisect_right(starts, bucket) - 1
        covered = index >= 0 and watched[index][1] >= end
        if bucket not in traded and not covered:
            reasons = sorted(
                {s.reason or "unrecoverable" for s in lost if s.start_ms < end and s.end_ms > bucket}
            )
            why = "unrecoverable: " + "; ".join(reasons) if reasons else "no coverage"
            if runs and runs[-1][1] == bucket and runs[-1][2] == why:
                runs[-1] = (runs[-1][0], end, why)
            else:
                runs.append((bucket, end, why))
        bucket = end
    return runs


def held_open(ledger_end_ms: int | None, lateness_ms: int) -> Callable[[int, int], bool]:
    """Whether a bucket ``[start, end)`` may still be held open by the live collector that watched it last: it
    ends after the coverage ledger's end for its pair (``ledger_end_ms``: the newest end of a ``collected`` /
    ``backfilled`` span; None: nothing watched) or less than ``lateness_ms`` before it. A live engine closes a
    bucket only once its clock passed the end by the allowed lateness, so a collector that stopped (or still
    runs) there left that candle open: it is not a finding (docs/quality.md)."""

    def is_open(_start_ms: int, end_ms: int) -> bool:
        return ledger_end_ms is not None and end_ms + lateness_ms > ledger_end_ms

    return is_open
