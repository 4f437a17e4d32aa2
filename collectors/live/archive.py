"""The raw and rejected archives of one collector session: records with one increasing ``seq``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final, Literal

from collectors.storage.records import RawMessage, RejectedMessage

__all__ = ["Archive", "RawMode"]

RawMode = Literal["all", "trades", "none"]

# One RawMessage per frame is on the hot path: it is filled through its slot descriptors (what its frozen
# dataclass __init__ does, minus an object.__setattr__ lookup per field, ~0.7 us of ~2.5), when its fields
# are exactly these; otherwise through the constructor.
_RAW_FIELDS: Final = ("collector_id", "seq", "exchange", "channel", "inst_id", "recv_ms", "payload")
_RAW_SET: Final[tuple[Any, ...] | None] = (
    tuple(RawMessage.__dict__[name].__set__ for name in _RAW_FIELDS)
    if tuple(f.name for f in fields(RawMessage)) == _RAW_FIELDS and not hasattr(RawMessage, "__post_init__")
    else None
)
_new = object.__new__


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
        self._seq += 1
        if _RAW_SET is None:
            return RawMessage(
                collector_id=self.collector_id,
                seq=self._seq,
                exchange=self.exchange,
                channel=channel,
                inst_id=inst_id,
                recv_ms=recv_ms,
                payload=text,
            )
        set_collector, set_seq, set_exchange, set_channel, set_inst, set_recv, set_payload = _RAW_SET
        message = _new(RawMessage)
        set_collector(message, self.collector_id), set_seq(message, self._seq)
        set_exchange(message, self.exchange), set_channel(message, channel), set_inst(message, inst_id)
        set_recv(message, recv_ms), set_payload(message, text)
        return message

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
