"""Recorded captures replayed instead of generated data (pure loading; the hub plays them).

Accepted formats, one frame per line:

* cryptofeed's recordings (``<epoch seconds>: <json>``; lines with ``<-`` or ``<->`` are the client's own
  requests and connects, and are skipped), e.g. the real 2022 frames in tests/fixtures/okx;
* JSON lines ``{"ts_ms": <epoch ms>, "frame": {...}}``.

Only data pushes (objects with ``arg`` and ``data``) are kept; acks and errors come from the simulator itself.
Each frame keeps its recorded text byte for byte.

The capture's trades (rows of its ``trades`` and ``trades-all`` pushes) are also the truth served by REST
``/market/trades``, ``/market/history-trades`` and ``/sim/tape`` for the instruments they cover.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

__all__ = ["Capture", "ReplayFrame", "load_capture"]

_TRADE_CHANNELS: Final = ("trades", "trades-all")


class ReplayFrame(NamedTuple):
    """One recorded push: milliseconds after the first one, its channel and instId, and its exact text."""

    offset_ms: int
    channel: str
    inst_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Capture:
    """The data pushes of one recording, in recorded order."""

    frames: tuple[ReplayFrame, ...]

    def keys(self) -> set[tuple[str, str]]:
        return {(f.channel, f.inst_id) for f in self.frames}

    def inst_ids(self) -> set[str]:
        return {f.inst_id for f in self.frames}

    def for_key(self, channel: str, inst_id: str) -> list[ReplayFrame]:
        return [f for f in self.frames if f.channel == channel and f.inst_id == inst_id]

    def trades(self, inst_id: str) -> list[dict[str, str]]:
        """The recorded trades of ``inst_id`` as history-trades rows, oldest first (by trade id), each once.

        Rows keep the recorded values; a capture without ``source`` (before 2024) gets "0", a normal trade.
        """
        rows: dict[int, dict[str, str]] = {}
        for frame in self.frames:
            if frame.inst_id != inst_id or frame.channel not in _TRADE_CHANNELS:
                continue
            for row in json.loads(frame.text)["data"]:
                rows.setdefault(int(row["tradeId"]), _history_row(inst_id, row))
        return [rows[trade_id] for trade_id in sorted(rows)]

    def trade_inst_ids(self) -> set[str]:
        return {f.inst_id for f in self.frames if f.channel in _TRADE_CHANNELS}


def _history_row(inst_id: str, row: dict[str, Any]) -> dict[str, str]:
    """A recorded trade row in the key order of REST history-trades."""
    return {
        "instId": inst_id,
        "side": str(row["side"]),
        "sz": str(row["sz"]),
        "px": str(row["px"]),
        "source": str(row.get("source", "0")),
        "tradeId": str(row["tradeId"]),
        "ts": str(row["ts"]),
    }


def _parse_line(line: str) -> tuple[int, str] | None:
    """(epoch ms, frame text) of one line, or None for lines that are not received frames."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        record = json.loads(line)
        return int(record["ts_ms"]), json.dumps(record["frame"], separators=(",", ":"))
    head, sep, text = line.partition(": ")
    if not sep or "<-" in head or " " in head:
        return None
    return int(float(head) * 1000), text


def load_capture(path: Path) -> Capture:
    """Read a recording; raises ValueError when it holds no data push."""
    frames: list[ReplayFrame] = []
    first: int | None = None
    for line in path.read_text().splitlines():
        parsed = _parse_line(line)
        if parsed is None:
            continue
        ts_ms, text = parsed
        frame = json.loads(text)
        if not (isinstance(frame, dict) and "arg" in frame and "data" in frame):
            continue
        first = ts_ms if first is None else first
        arg = frame["arg"]
        frames.append(ReplayFrame(ts_ms - first, str(arg.get("channel")), str(arg.get("instId")), text))
    if not frames:
        raise ValueError(f"{path} holds no data push to replay")
    return Capture(tuple(frames))
