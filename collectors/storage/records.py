"""Records that exist only for storage: archives, the coverage ledger and the exchange's own candles."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from collectors.model import DataType

__all__ = ["CoverageSpan", "CoverageStatus", "ExchangeCandle", "RawMessage", "RejectedMessage"]


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
