"""The raw and rejected archives of one collector session: records with one increasing ``seq``."""

from __future__ import annotations

from typing import Literal

from collectors.storage.records import RawMessage, RejectedMessage

__all__ = ["Archive", "RawMode"]

RawMode = Literal["all", "trades", "none"]


class Archive:
    """Builds ``raw_messages`` / ``rejected_messages`` records for one ``collector_id`` (one per session).

    ``trade_channels``: the channels kept when ``mode`` is ``trades``."""

    def __init__(
        self, *, collector_id: str, exchange: str, mode: RawMode, trade_channels: frozenset[str]
    ) -> None:
        self.collector_id = collector_id
        self.exchange = exchange
        self.mode = mode
        self.trade_channels = trade_channels
        self._seq = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def raw(self, *, channel: str, inst_id: str | None, recv_ms: int, text: str) -> RawMessage | None:
        """The frame as a record, or None when the mode does not keep it."""
        if self.mode == "none" or (self.mode == "trades" and channel not in self.trade_channels):
            return None
        return RawMessage(
            collector_id=self.collector_id,
            seq=self._next(),
            exchange=self.exchange,
            channel=channel,
            inst_id=inst_id,
            recv_ms=recv_ms,
            payload=text,
        )

    def rejected(
        self, *, channel: str | None, inst_id: str | None, recv_ms: int, reason: str, text: str
    ) -> RejectedMessage:
        return RejectedMessage(
            collector_id=self.collector_id,
            seq=self._next(),
            exchange=self.exchange,
            channel=channel,
            inst_id=inst_id,
            recv_ms=recv_ms,
            reason=reason,
            payload=text,
        )
