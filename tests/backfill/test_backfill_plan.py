"""The pure parts of a backfill: span arithmetic, open gaps of the ledger, holes and chunks, request parsing."""

from __future__ import annotations

import pytest

from collectors.backfill.plan import (
    FINAL_PREFIX,
    CoverageEntry,
    Hole,
    chunks_of,
    final_unrecoverable,
    merge_holes,
    open_gaps,
    subtract,
    union,
)
from collectors.backfill.request import build_request, parse_duration_ms, parse_instant_ms
from collectors.ratelimit import join_delay_s, share_of
from collectors.storage.records import CoverageStatus

NOW = 1_795_300_000_000


def entry(start: int, end: int, status: CoverageStatus, reason: str | None = None) -> CoverageEntry:
    return CoverageEntry(start_ms=start, end_ms=end, status=status, reason=reason)


def hole(after: int, before: int, start: int = 0, end: int = 10, *, bottom: bool = False) -> Hole:
    return Hole(
        inst_id="BTC-USDT",
        after_id=after,
        before_id=before,
        start_ms=start,
        end_ms=end,
        origin="t",
        bottom_open=bottom,
    )


def test_union_and_subtract_are_half_open() -> None:
    assert union([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]
    assert subtract([(0, 10)], [(2, 3), (5, 7)]) == [(0, 2), (3, 5), (7, 10)]
    assert subtract([(0, 10)], [(0, 10)]) == []
    assert subtract([(0, 10), (20, 30)], [(5, 25)]) == [(0, 5), (25, 30)]
    assert subtract([(0, 10)], []) == [(0, 10)]


def test_open_gaps_are_gaps_not_yet_backfilled_or_given_up_by_a_backfill() -> None:
    entries = [
        entry(0, 100, CoverageStatus.COLLECTED),
        entry(100, 200, CoverageStatus.GAP, "trade ids 5-9 missing (reconnect)"),
        entry(120, 150, CoverageStatus.BACKFILLED, "trade ids 6-7"),
        entry(300, 400, CoverageStatus.GAP),
        entry(300, 400, CoverageStatus.UNRECOVERABLE, f"{FINAL_PREFIX}older than the history REST serves"),
        # the live collector gave up (REST failed while it caught up): the next backfill asks again
        entry(500, 600, CoverageStatus.UNRECOVERABLE, "trade ids 20-30: REST failed 5 times: 503"),
    ]
    assert open_gaps(entries) == [(100, 120), (150, 200), (500, 600)]
    assert final_unrecoverable(entries) == [(300, 400)]


def test_holes_merge_when_their_ids_overlap_and_chunks_cut_them() -> None:
    merged = merge_holes([hole(10, 20, 5, 8), hole(15, 30, 6, 12), hole(40, 45), hole(29, 31, 11, 12)])
    assert [(h.after_id, h.before_id, h.start_ms, h.end_ms) for h in merged] == [
        (10, 31, 5, 12),
        (40, 45, 0, 10),
    ]
    chunks = chunks_of([hole(100, 126), hole(200, 202)], max_ids=10)
    assert [(c.hole, c.after_id, c.before_id) for c in chunks] == [
        (0, 100, 111),
        (0, 110, 121),
        (0, 120, 126),
        (1, 200, 202),
    ]
    covered = [i for c in chunks if c.hole == 0 for i in range(c.after_id + 1, c.before_id)]
    assert covered == list(range(101, 126))  # every id once


def test_a_bottom_open_hole_is_one_chunk_and_never_merged() -> None:
    bottom = hole(0, 5_000_000, bottom=True)
    assert merge_holes([bottom, hole(4_999_990, 5_000_010)]) == [bottom, hole(4_999_990, 5_000_010)]
    [chunk] = chunks_of([bottom], max_ids=100)
    assert (chunk.after_id, chunk.before_id, chunk.bottom_open) == (0, 5_000_000, True)
    with pytest.raises(ValueError, match="at least one id"):
        hole(5, 6)


def test_requests_parse_ranges_durations_and_default_to_gaps() -> None:
    assert parse_instant_ms("2026-11-20T10:00:00Z") == 1_795_168_800_000
    assert parse_instant_ms("2026-11-20T18:00:00+08:00") == 1_795_168_800_000
    assert parse_instant_ms("2026-11-20T10:00") == 1_795_168_800_000  # no zone: UTC
    assert parse_duration_ms("7d") == 7 * 86_400_000
    assert parse_duration_ms("1.5h") == 5_400_000
    for bad in ("7", "d", "-1d", "7 days", "0s"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_instant_ms("yesterday")
    since = build_request(["BTC-USDT"], since="2h", now_ms=NOW)
    assert (since.mode, since.start_ms, since.end_ms) == ("range", NOW - 7_200_000, NOW)
    assert build_request(["BTC-USDT"], now_ms=NOW).mode == "gaps"
    ranged = build_request(["BTC-USDT"], start="2026-11-20T10:00:00Z", now_ms=NOW)
    assert (ranged.start_ms, ranged.end_ms) == (1_795_168_800_000, NOW)
    with pytest.raises(ValueError, match="not both"):
        build_request(["BTC-USDT"], start="2026-11-20T10:00:00Z", since="1d", now_ms=NOW)
    with pytest.raises(ValueError, match="empty or reversed"):
        build_request(["BTC-USDT"], start="2026-11-20T10:00:00Z", end="2026-11-20T09:00:00Z", now_ms=NOW)
    with pytest.raises(ValueError, match="needs a start"):
        build_request(["BTC-USDT"], end="2026-11-20T09:00:00Z", now_ms=NOW)


def test_members_split_the_budget_and_a_joiner_waits_a_poll_and_a_window() -> None:
    assert [share_of(n) for n in (1, 2, 4)] == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError):
        share_of(0)
    assert join_delay_s(poll_s=2.0, window_ms=2_000) == 5.0
    assert join_delay_s(poll_s=0.5, window_ms=2_000, margin_s=0.0) == 2.5


def test_a_chunk_the_database_failed_leaves_its_hole_open_for_the_next_run() -> None:
    """A chunk that failed after its retries because the database was away (StorageError) says nothing about
    OKX's history: its hole gets no coverage row (neither a final `unrecoverable`, which no run would ask again,
    nor `backfilled`), so the next run fetches it. A REST failure stays a final verdict."""
    from typing import Any

    from collectors.backfill.fetch import ChunkResult
    from collectors.backfill.finish import coverage_of
    from collectors.backfill.plan import Chunk
    from collectors.backfill.work import Backfill, Plan

    holes = (hole(100, 200, 0, 10), hole(300, 400, 20, 30))
    chunks = tuple(
        Chunk(inst_id="BTC-USDT", hole=i, after_id=h.after_id, before_id=h.before_id)
        for i, h in enumerate(holes)
    )
    plan = Plan(spans=(), holes=holes, chunks=chunks, coverage=(), requests=0)
    none: Any = None
    bf = Backfill(db=none, rest=none, writer=none)
    results = [
        ChunkResult.failed(
            chunks[0], "StorageError: writing trades: connection refused (3 attempts)", rest_verdict=False
        ),
        ChunkResult.failed(chunks[1], "ApiError: OKX 50001: Service temporarily unavailable (3 attempts)"),
    ]
    rows = [(s.start_ms, s.end_ms, s.status, s.reason) for s in coverage_of(bf, plan, results, "BTC-USDT")]
    assert rows == [
        (20, 30, CoverageStatus.UNRECOVERABLE,
         "backfill: REST failed after retries: ApiError: OKX 50001: Service temporarily unavailable (3 attempts)"),
    ]  # fmt: skip
