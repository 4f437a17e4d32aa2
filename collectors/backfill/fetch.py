"""One chunk of a hole: history-trades paged by trade id, stored through the writer, what REST lacked reported.

Idempotent: trades are upserted on their natural key (a trade already stored is ignored), refused rows go to
``rejected_messages`` keyed by (``backfill:<instId>``, trade id), so running a chunk twice adds nothing. The
writer is flushed before returning: what the result reports is in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.backfill.plan import FINAL_PREFIX, Chunk
from collectors.backfill.work import Backfill
from collectors.storage.records import RejectedMessage

__all__ = ["ChunkResult", "Lost", "fetch_chunk"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lost:
    """Ids ``first_id..last_id`` REST did not serve, between trades at ``ts_before``/``ts_after`` (None: the
    chunk's edge, whose time the hole knows), and why (a final ``unrecoverable`` reason)."""

    first_id: int
    last_id: int
    ts_before: int | None
    ts_after: int | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkResult:
    """What one chunk did. ``first_ts``/``last_ts``: the times of the trades it stored (None: none)."""

    chunk: Chunk
    trades: int
    requests: int
    first_ts: int | None = None
    last_ts: int | None = None
    lost: tuple[Lost, ...] = ()
    error: str | None = None
    rest_verdict: bool = True  # a failure REST answered (final for its span); False: the database, left open

    @classmethod
    def failed(cls, chunk: Chunk, error: str, *, rest_verdict: bool = True) -> ChunkResult:
        """A chunk that failed after its retries. ``rest_verdict`` False (the database was away, not REST):
        its hole gets no coverage row, so the next run fetches it again."""
        return cls(chunk=chunk, trades=0, requests=0, error=error, rest_verdict=rest_verdict)


async def fetch_chunk(bf: Backfill, chunk: Chunk) -> ChunkResult:
    """Fetch and store the ids of ``chunk``. Raises the REST client's and the writer's errors (retry the chunk)."""
    result = await bf.rest.trades_between(chunk.inst_id, after_id=chunk.after_id, before_id=chunk.before_id)
    trades = result.trades
    await bf.writer.put_many(list(trades))
    if result.rejected:
        await bf.writer.put_many(
            [
                RejectedMessage(
                    collector_id=f"backfill:{chunk.inst_id}",
                    seq=row.trade_id,
                    exchange=bf.settings.exchange,
                    channel="history-trades",
                    inst_id=chunk.inst_id,
                    recv_ms=bf.clock(),
                    reason=row.reason,
                    payload=row.text,
                )
                for row in result.rejected
            ]
        )
    await bf.writer.flush()
    ts_of = {t.trade_id: t.ts_ms for t in trades}
    lost: list[Lost] = []
    if result.unrecoverable is not None:
        first, last = result.unrecoverable
        reason = f"{FINAL_PREFIX}older than the history REST serves (ids {first}-{last})"
        if chunk.bottom_open:
            # ids below REST's edge are not known to exist at all: only the time below the edge is lost
            reason = f"{FINAL_PREFIX}older than the history REST serves"
        lost.append(
            Lost(first_id=first, last_id=last, ts_before=None, ts_after=ts_of.get(last + 1), reason=reason)
        )
    for first, last in result.gaps:
        reason = f"{FINAL_PREFIX}trade ids {first}-{last}: REST did not return them"
        lost.append(_lost(first, last, ts_of, reason))
    for row in result.rejected:
        reason = f"{FINAL_PREFIX}trade id {row.trade_id}: REST row refused: {row.reason}"
        lost.append(_lost(row.trade_id, row.trade_id, ts_of, reason))
    return ChunkResult(
        chunk=chunk,
        trades=len(trades),
        requests=result.requests,
        first_ts=trades[0].ts_ms if trades else None,
        last_ts=trades[-1].ts_ms if trades else None,
        lost=tuple(lost),
    )


def _lost(first: int, last: int, ts_of: dict[int, int], reason: str) -> Lost:
    return Lost(
        first_id=first,
        last_id=last,
        ts_before=ts_of.get(first - 1),
        ts_after=ts_of.get(last + 1),
        reason=reason,
    )
