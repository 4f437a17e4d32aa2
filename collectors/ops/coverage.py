"""What the last 24 h of a pair's trades are, from the coverage ledger and the stored trades (``okx-collector
status``; docs/observability.md).

Six kinds that never overlap and add up to the window:

* ``collected``: watched live (a ``collected`` span) in a minute that has stored trades;
* ``backfilled``: filled from REST (a ``backfilled`` span: a hole, a catch-up) in a minute with stored trades;
* ``quiet``: watched (collected or backfilled) but the minute has no trade: the market was quiet;
* ``unrecoverable``: ids REST could not return (``unrecoverable`` spans);
* ``gap``: a hole found and not filled yet (a ``gap`` span no ``backfilled`` span covers);
* ``unwatched``: no span at all (no collector ran, or one was killed before it wrote its span).

:func:`breakdown` is pure; :func:`coverage_last_24h` reads the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from collectors.candles.spans import SpanSet
from collectors.model import DataType
from collectors.quality.reads import coverage_spans
from collectors.storage.engine import storage_error
from collectors.storage.records import CoverageSpan, CoverageStatus

__all__ = ["DAY_MS", "KINDS", "PairCoverage", "breakdown", "coverage_last_24h", "trade_minutes"]

DAY_MS: Final = 86_400_000
_MINUTE_MS: Final = 60_000
KINDS: Final = ("collected", "backfilled", "quiet", "unrecoverable", "gap", "unwatched")


@dataclass(frozen=True, slots=True, kw_only=True)
class PairCoverage:
    """``ms``: milliseconds of ``[start_ms, end_ms)`` per kind (the keys of :data:`KINDS`, summing to the window)."""

    inst_id: str
    start_ms: int
    end_ms: int
    ms: dict[str, int]

    def percent(self, kind: str) -> float:
        return 100.0 * self.ms[kind] / (self.end_ms - self.start_ms)


def _set(spans: Iterable[tuple[int, int]], start_ms: int, end_ms: int) -> SpanSet:
    out = SpanSet()
    for a, b in spans:
        a, b = max(a, start_ms), min(b, end_ms)
        if b > a:
            out.add(a, b)
    return out


def _minus(a: SpanSet, b: SpanSet) -> SpanSet:
    out = SpanSet(a)
    for s, e in b:
        out.remove(s, e)
    return out


def _length(spans: SpanSet) -> int:
    return sum(e - s for s, e in spans)


def breakdown(
    spans: Sequence[CoverageSpan], traded_minutes: Iterable[int], start_ms: int, end_ms: int
) -> dict[str, int]:
    """Milliseconds of ``[start_ms, end_ms)`` per kind (module docstring). ``traded_minutes``: the start (epoch
    ms) of every minute holding a stored trade."""

    def of(status: CoverageStatus) -> SpanSet:
        return _set(((s.start_ms, s.end_ms) for s in spans if s.status is status), start_ms, end_ms)

    unrecoverable = of(CoverageStatus.UNRECOVERABLE)
    gap = _minus(_minus(of(CoverageStatus.GAP), of(CoverageStatus.BACKFILLED)), unrecoverable)
    backfilled = _minus(_minus(of(CoverageStatus.BACKFILLED), unrecoverable), gap)
    collected = _minus(_minus(_minus(of(CoverageStatus.COLLECTED), backfilled), unrecoverable), gap)
    traded = _set(((m, m + _MINUTE_MS) for m in traded_minutes), start_ms, end_ms)
    untraded = _minus(_set([(start_ms, end_ms)], start_ms, end_ms), traded)
    quiet_collected = _minus(collected, traded)
    quiet_backfilled = _minus(backfilled, traded)
    ms = {
        "collected": _length(_minus(collected, untraded)),
        "backfilled": _length(_minus(backfilled, untraded)),
        "quiet": _length(quiet_collected) + _length(quiet_backfilled),
        "unrecoverable": _length(unrecoverable),
        "gap": _length(gap),
    }
    ms["unwatched"] = (end_ms - start_ms) - sum(ms.values())
    return ms


# the start of each minute holding a trade of one pair in [a, b): one row per minute, never one per trade
_MINUTES_SQL: Final = {
    "postgresql": "SELECT DISTINCT (extract(epoch FROM date_trunc('minute', ts)) * 1000)::bigint FROM trades "
    "WHERE exchange = :exchange AND inst_id = :inst_id "
    "AND ts >= to_timestamp(:a / 1000.0) AND ts < to_timestamp(:b / 1000.0)",
    "sqlite": "SELECT DISTINCT (ts / 60000) * 60000 FROM trades "
    "WHERE exchange = :exchange AND inst_id = :inst_id AND ts >= :a AND ts < :b",
}


def trade_minutes(engine: Engine, *, exchange: str, inst_id: str, start_ms: int, end_ms: int) -> list[int]:
    """The start of every minute in ``[start_ms, end_ms)`` holding a stored trade of ``inst_id``."""
    query = text(_MINUTES_SQL[engine.dialect.name])
    try:
        with engine.connect() as conn:
            rows = conn.execute(query, {"exchange": exchange, "inst_id": inst_id, "a": start_ms, "b": end_ms})
            return sorted(int(r[0]) for r in rows)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc


def coverage_last_24h(
    engine: Engine, *, exchange: str, inst_ids: Sequence[str], now_ms: int
) -> list[PairCoverage]:
    """Per pair, the kinds of ``[now_ms - 24 h, now_ms)``."""
    start_ms = now_ms - DAY_MS
    out = []
    for inst in inst_ids:
        spans = coverage_spans(
            engine,
            exchange=exchange,
            inst_id=inst,
            data_type=DataType.TRADES,
            start_ms=start_ms,
            end_ms=now_ms,
        )
        minutes = trade_minutes(engine, exchange=exchange, inst_id=inst, start_ms=start_ms, end_ms=now_ms)
        out.append(
            PairCoverage(
                inst_id=inst, start_ms=start_ms, end_ms=now_ms, ms=breakdown(spans, minutes, start_ms, now_ms)
            )
        )
    return out
