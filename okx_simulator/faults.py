"""Injected faults: their validation, their time windows, and the malformed-frame variants (pure).

A fault only changes what one connection or one request sees; the tape, REST history and candles keep the
truth. Time is always passed in (``now_ms``); random choices use the registry's own seeded RNG.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["FAULT_KINDS", "MALFORMED_VARIANTS", "Fault", "FaultError", "FaultRegistry", "malform"]

Json = dict[str, Any]

ONE_SHOT: Final = frozenset({"drop", "close", "notice", "book_gap", "seq_reset"})
TIMED: Final = frozenset(
    {"stall", "malformed", "duplicate", "reorder", "rest_error", "rest_429", "rest_slow", "refuse"}
)
FAULT_KINDS: Final = ONE_SHOT | TIMED
MALFORMED_VARIANTS: Final = ("bad_json", "missing_field", "wrong_type", "negative_price", "unknown_side")
_NUMBERS: Final = {"seconds", "rate", "delay_ms", "at_ms", "code", "status"}
_NARROWING: Final = frozenset({"kind", "at_ms", "instId", "channel", "path"})
# The fields each kind takes besides the narrowing ones; anything else is rejected (a typo would be silent).
_FIELDS: Final[dict[str, frozenset[str]]] = {
    "drop": frozenset(),
    "close": frozenset({"code", "reason"}),
    "stall": frozenset({"seconds"}),
    "notice": frozenset({"seconds"}),
    "malformed": frozenset({"rate", "variants", "seconds"}),
    "duplicate": frozenset({"rate", "seconds"}),
    "reorder": frozenset({"rate", "seconds"}),
    "book_gap": frozenset(),
    "seq_reset": frozenset(),
    "rest_error": frozenset({"status", "seconds"}),
    "rest_429": frozenset({"seconds"}),
    "rest_slow": frozenset({"delay_ms", "seconds"}),
    "refuse": frozenset({"seconds"}),
}
# Inclusive bounds of the numeric fields that have them.
_RANGES: Final[dict[str, tuple[float, float]]] = {
    "rate": (0.0, 1.0),
    "code": (1000, 4999),
    "status": (100, 599),
    "seconds": (0.0, float("inf")),
    "delay_ms": (0.0, float("inf")),
}


class FaultError(ValueError):
    """A rejected POST /sim/faults body; ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(slots=True, kw_only=True)
class Fault:
    """One injected fault. ``end_ms`` is None for faults that last until cleared."""

    id: str
    kind: str
    start_ms: int
    end_ms: int | None
    params: Json
    inst_id: str | None = None
    channel: str | None = None
    path: str | None = None
    fired: bool = False
    hits: int = 0

    def active(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms and (self.end_ms is None or now_ms < self.end_ms)

    def matches(
        self, *, inst_id: str | None = None, channel: str | None = None, path: str | None = None
    ) -> bool:
        """True unless the fault is narrowed to another instId, channel or path."""
        return (
            (self.inst_id is None or inst_id is None or self.inst_id == inst_id)
            and (self.channel is None or channel is None or self.channel == channel)
            and (self.path is None or path is None or self.path == path)
        )

    def number(self, name: str, default: float) -> float:
        value = self.params.get(name, default)
        return float(value)

    def to_json(self) -> Json:
        return {
            "id": self.id,
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "instId": self.inst_id,
            "channel": self.channel,
            "path": self.path,
            "params": self.params,
            "fired": self.fired,
            "hits": self.hits,
        }


@dataclass(slots=True)
class FaultRegistry:
    """All faults of one run, the log of malformed pushes, and the RNG deciding which pushes are hit."""

    seed: int
    faults: list[Fault] = field(default_factory=list)
    log: list[Json] = field(default_factory=list)
    injected: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def add(self, body: Json, now_ms: int) -> Fault:
        """Validate a POST /sim/faults body and register it; raises ValueError with a readable message."""
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultError("kind", f"unknown fault kind {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        _check_fields(str(kind), body)
        start = int(body.get("at_ms", now_ms))
        seconds = body.get("seconds")
        end = None if seconds is None or kind in ("notice",) else start + int(float(seconds) * 1000)
        self.injected += 1
        fault = Fault(
            id=f"f{self.injected}",
            kind=str(kind),
            start_ms=start,
            end_ms=end,
            params={k: v for k, v in body.items() if k not in ("kind", "instId", "channel", "path")},
            inst_id=body.get("instId"),
            channel=body.get("channel"),
            path=body.get("path"),
        )
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def active(self, kind: str, now_ms: int, **narrow: str | None) -> Fault | None:
        """The first active fault of ``kind`` that applies to ``narrow`` (instId/channel/path)."""
        for fault in self.faults:
            if fault.kind == kind and fault.active(now_ms) and fault.matches(**narrow):
                return fault
        return None

    def stalling(self, now_ms: int, path: str) -> Fault | None:
        """An active stall that silences a whole connection on ``path`` (narrowed to nothing but maybe the path)."""
        for fault in self.faults:
            if (
                fault.kind == "stall"
                and fault.active(now_ms)
                and fault.inst_id is fault.channel is None
                and fault.path in (None, path)
            ):
                return fault
        return None

    def due_one_shots(self, now_ms: int) -> list[Fault]:
        """One-shot faults whose time has come and that have not fired yet (marked fired)."""
        due = [f for f in self.faults if f.kind in ONE_SHOT and not f.fired and f.start_ms <= now_ms]
        for fault in due:
            fault.fired = True
        return due

    def roll(self, rate: float) -> bool:
        return self._rng.random() < rate

    def choose(self, options: list[str]) -> str:
        return self._rng.choice(options)


def _check_fields(kind: str, body: Json) -> None:
    """Reject unknown fields, non-numbers, numbers out of range and bad variants (FaultError names the field)."""
    allowed = _NARROWING | _FIELDS[kind]
    for name in body:
        if name not in allowed:
            raise FaultError(
                name, f"unknown field {name!r} for {kind}; allowed: {', '.join(sorted(allowed))}"
            )
    for name in sorted(_NUMBERS & body.keys()):
        value = body[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise FaultError(name, f"{name} must be a number")
        if name in ("code", "status") and value != int(value):
            raise FaultError(name, f"{name} must be an integer")
        low, high = _RANGES.get(name, (float("-inf"), float("inf")))
        if not low <= value <= high:
            raise FaultError(name, f"{name} must be within {low:g}..{high:g}, not {value!r}")
    for name in ("instId", "channel", "path", "reason"):
        if name in body and not isinstance(body[name], str):
            raise FaultError(name, f"{name} must be a string")
    variants = body.get("variants")
    if variants is None:
        return
    if not isinstance(variants, list) or not all(v in MALFORMED_VARIANTS for v in variants):
        raise FaultError("variants", f"variants must be a list of {', '.join(MALFORMED_VARIANTS)}")


def malform(message: Json, variant: str) -> tuple[str, str]:
    """Corrupt a data push; returns (wire text, variant actually applied).

    A variant that does not fit the message (``unknown_side`` on a book) falls back to ``missing_field``; a
    message without data rows can only be ``bad_json``.
    """
    rows = message.get("data")
    if variant == "bad_json" or not isinstance(rows, list) or not rows:
        text = json.dumps(message, separators=(",", ":"))
        return text[: max(1, len(text) // 2)], "bad_json"
    bad = copy.deepcopy(message)
    row = bad["data"][0]
    if variant == "unknown_side" and isinstance(row, dict) and "side" in row:
        row["side"] = "hold"
    elif variant == "negative_price" and _negate_price(row):
        pass
    elif variant == "wrong_type" and _retype(bad):
        pass
    else:
        variant = "missing_field"
        if isinstance(row, dict):
            row.pop(next(iter(row)))
        else:
            row.pop()
    return json.dumps(bad, separators=(",", ":")), variant


def _negate_price(row: Any) -> bool:
    if isinstance(row, list):
        row[1] = "-" + row[1]
        return True
    for key in ("px", "last"):
        if key in row:
            row[key] = "-" + row[key]
            return True
    for key in ("asks", "bids"):
        if row.get(key):
            row[key][0][0] = "-" + row[key][0][0]
            return True
    return False


def _retype(message: Json) -> bool:
    row = message["data"][0]
    if isinstance(row, list):
        row[0] = int(row[0])
        return True
    for key in ("px", "last", "ts"):
        if key in row:
            row[key] = float(row[key]) if key != "ts" else int(row[key])
            return True
    return False
