"""The coverage ledger of one pair's trades, as records: what was collected, a gap, backfilled, unrecoverable.

Pure (times are parameters). The ``collected`` span in progress starts where the stream took over (the first
trade of a session, or the end of a catch-up) and is written every ``interval_ms``, when the stream goes down
and at a stop; a kill -9 loses the span in progress, which the next session records (``PairCore``'s
``resume_uncovered_ms``). Spans of holes, backfills and catch-ups are written as they happen.
"""

from __future__ import annotations

from collectors.model import DataType
from collectors.storage.records import CoverageSpan, CoverageStatus

__all__ = ["CoverageLedger"]


class CoverageLedger:
    """:class:`CoverageSpan` records of one instrument's trades, until :meth:`take`."""

    def __init__(self, *, exchange: str, inst_id: str, interval_ms: int) -> None:
        self.exchange, self.inst_id, self.interval_ms = exchange, inst_id, interval_ms
        self.records: list[CoverageSpan] = []
        self.collecting_from_ms: int | None = None  # start of the collected span in progress

    def take(self) -> list[CoverageSpan]:
        records, self.records = self.records, []
        return records

    def span(self, start_ms: int, end_ms: int, status: CoverageStatus, reason: str | None) -> None:
        if end_ms > start_ms:
            self.records.append(
                CoverageSpan(
                    exchange=self.exchange,
                    inst_id=self.inst_id,
                    data_type=DataType.TRADES,
                    start_ms=start_ms,
                    end_ms=end_ms,
                    status=status,
                    reason=reason,
                )
            )

    def collecting(self, from_ms: int | None) -> None:
        """The stream delivers everything from ``from_ms`` on (when no span is in progress yet)."""
        if self.collecting_from_ms is None:
            self.collecting_from_ms = from_ms

    def close(self, end_ms: int) -> None:
        """Write the collected span in progress up to ``end_ms``; none is in progress afterwards."""
        start = self.collecting_from_ms
        if start is not None:
            self.span(start, end_ms, CoverageStatus.COLLECTED, None)
        self.collecting_from_ms = None

    def tick(self, now_ms: int) -> None:
        """Every ``interval_ms``: write the span in progress and go on from ``now_ms``."""
        start = self.collecting_from_ms
        if start is not None and now_ms - start >= self.interval_ms:
            self.close(now_ms)
            self.collecting_from_ms = now_ms
