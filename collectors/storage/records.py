"""Records that exist only for storage: archives, the coverage ledger and the exchange's own candles."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final, Protocol

from collectors.candles.spans import SpanSet
from collectors.model import DataType

__all__ = [
    "WATCHED",
    "CoverageSpan",
    "CoverageStatus",
    "ExchangeCandle",
    "RawMessage",
    "RejectedMessage",
    "no_data_spans",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RawMessage:
    """A frame exactly as received. ``seq`` increases per ``collector_id`` (one id per collector session)."""

    collector_id: str
    seq: int
    exchange: str
    channel: str
    inst_id: str | None
    recv_ms: int
    payload: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedMessage:
    """Input that failed validation, kept with the reason."""

    collector_id: str
    seq: int
    exchange: str
    channel: str | None
    inst_id: str | None
    recv_ms: int
    reason: str
    payload: str


class CoverageStatus(str, Enum):
    COLLECTED = "collected"
    GAP = "gap"
    BACKFILLED = "backfilled"
    UNRECOVERABLE = "unrecoverable"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageSpan:
    """``[start_ms, end_ms)`` of ``data_type`` for one instrument, with what we know about it."""

    exchange: str
    inst_id: str
    data_type: DataType
    start_ms: int
    end_ms: int
    status: CoverageStatus
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(
                f"coverage span must have start_ms < end_ms, got [{self.start_ms}, {self.end_ms})"
            )


WATCHED = (CoverageStatus.COLLECTED, CoverageStatus.BACKFILLED)
"""Statuses of a span whose trades are all known (seen live, or fetched from REST history)."""

FILLED_BY_BACKFILL: Final = "filled by a backfill"
"""The reason of a ``backfilled`` span a backfill run wrote: it fetched every trade id of that time."""


class _Span(Protocol):
    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def status(self) -> CoverageStatus: ...
    @property
    def reason(self) -> str | None: ...


def no_data_spans(spans: Iterable[_Span], start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """The time of ``[start_ms, end_ms)`` whose trades are not all known, from the coverage ledger's ``spans``:
    what no ``collected`` / ``backfilled`` span covers (before a collector's start, between sessions), every
    ``unrecoverable`` span but where a backfill later fetched every id (:data:`FILLED_BY_BACKFILL`), and every
    ``gap`` no ``backfilled`` span covers (still open). A ``gap`` or an ``unrecoverable`` span lies inside the
    ``collected`` time (or the live catch-up's ``backfilled`` time) it was found in, so watching does not
    clear it; a backfill's fill does, whatever the order of the rows (trades are never deleted).
    Candles overlapping the result are incomplete: the one rule of the backfill's and the quality checks'
    recomputations (the live engine marks its own holes and outages as they happen). Pure."""
    spans = list(spans)
    lost = SpanSet([(start_ms, end_ms)])
    for span in spans:
        if span.status in WATCHED:
            lost.remove(span.start_ms, span.end_ms)
    open_gaps = SpanSet((s.start_ms, s.end_ms) for s in spans if s.status is CoverageStatus.GAP)
    for span in spans:
        if span.status is CoverageStatus.BACKFILLED:
            open_gaps.remove(span.start_ms, span.end_ms)
    for start, end in open_gaps:
        lost.add(start, end)
    unrecoverable = SpanSet((s.start_ms, s.end_ms) for s in spans if s.status is CoverageStatus.UNRECOVERABLE)
    for span in spans:
        if span.status is CoverageStatus.BACKFILLED and span.reason == FILLED_BY_BACKFILL:
            unrecoverable.remove(span.start_ms, span.end_ms)
    for start, end in unrecoverable:
        lost.add(start, end)
    return [(max(a, start_ms), min(b, end_ms)) for a, b in lost if min(b, end_ms) > max(a, start_ms)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeCandle:
    """A candle as the exchange published it (OKX: [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm])."""

    exchange: str
    inst_id: str
    bar: str
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    volume_ccy: Decimal
    volume_ccy_quote: Decimal
    confirmed: bool
