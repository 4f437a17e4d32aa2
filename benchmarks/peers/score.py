"""Scoring of the peers benchmark (pure: no I/O, times passed in).

What each recorder received is compared with the simulator's tape (``GET /sim/tape``, one row per fill), per
fault window of the timeline:

* a window runs from its fault's injection to the next fault's (the first, ``baseline``, from the start of the
  scored span to the first fault; the last to the end of the span), so every trade of the span belongs to
  exactly one window, the one holding its ``ts`` (what a fault loses is counted in its window, whenever the
  recorder noticed it);
* a received row stands for ``count`` fills: ids ``id - count + 1 .. id`` (OKX's aggregated ``trades`` channel,
  which ccxt.pro and cryptofeed subscribe to; 1 for a ``trades-all`` row, one per fill, which our collector stores);
* ``missing``: fills of the tape not covered by any received row (in fills, the tape's unit);
* ``duplicated``: received rows beyond the first with the same (instrument, id);
* ``reordered``: first rows handed over after a row of the same pair with a higher id (``received`` must be in
  the order the recorder handed the rows to its user; meaningless for rows read back from a database by id);
* ``wrong``: first rows whose price, size, side or ts differ from the tape's (price and ts those of the row's last
  fill, size the sum of its fills, one side), or whose id the tape does not hold, or whose fills fall apart;
  ``invalid`` counts the wrong rows a validating recorder would have refused outright (a price <= 0, a side other
  than buy/sell, a value that is not a number): passed through to the user;
* the time a recorder took to notice a stall: its first disconnect/error event after the stall began.

Rows whose trade (by id, else by their own ts) lies outside the scored span are ignored: recorders start and stop
at slightly different times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

__all__ = [
    "Counts",
    "Fill",
    "Received",
    "Window",
    "detect_s",
    "score",
    "windows_from_schedule",
]


@dataclass(frozen=True, slots=True)
class Fill:
    """One row of ``/sim/tape``: the truth."""

    inst: str
    trade_id: int
    px: Decimal
    sz: Decimal
    side: str
    ts: int


@dataclass(frozen=True, slots=True)
class Received:
    """One trade as a recorder handed it to its user (texts as written; ``count`` fills up to ``trade_id``)."""

    inst: str
    trade_id: int
    px: str | None
    sz: str | None
    side: str | None
    ts: int | None
    count: int = 1


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    start_ms: int
    end_ms: int


@dataclass(slots=True)
class Counts:
    truth: int = 0  # fills of the tape in the window
    received: int = 0  # rows received (duplicates included)
    missing: int = 0
    duplicated: int = 0
    wrong: int = 0
    invalid: int = 0
    reordered: int = 0  # first rows handed over after a row with a higher id of the same pair
    examples: list[str] = field(default_factory=list)  # a few wrong rows, for the report
    missing_ids: list[str] = field(default_factory=list)  # the first few missing fills

    def add(self, other: Counts) -> None:
        self.truth += other.truth
        self.received += other.received
        self.missing += other.missing
        self.duplicated += other.duplicated
        self.wrong += other.wrong
        self.invalid += other.invalid
        self.reordered += other.reordered

    def as_dict(self) -> dict[str, object]:
        return {
            "truth": self.truth,
            "received": self.received,
            "missing": self.missing,
            "duplicated": self.duplicated,
            "wrong": self.wrong,
            "invalid": self.invalid,
            "reordered": self.reordered,
            "examples": list(self.examples),
            "missing_ids": list(self.missing_ids),
        }


EXAMPLES = 3


def windows_from_schedule(starts: Sequence[tuple[str, int]], *, begin_ms: int, end_ms: int) -> list[Window]:
    """``baseline`` from ``begin_ms`` to the first fault, then one window per (name, injected at) up to the next."""
    edges = [("baseline", begin_ms), *starts]
    return [
        Window(name, start, edges[i + 1][1] if i + 1 < len(edges) else end_ms)
        for i, (name, start) in enumerate(edges)
    ]


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _window_of(windows: Sequence[Window], ts: int) -> Window | None:
    for window in windows:
        if window.start_ms <= ts < window.end_ms:
            return window
    return None


def _verdict(row: Received, fills: Sequence[Fill | None]) -> tuple[bool, bool]:
    """(wrong, invalid) of a first received row against the fills it stands for."""
    px, sz = _decimal(row.px), _decimal(row.sz)
    invalid = px is None or sz is None or px <= 0 or sz <= 0 or row.side not in ("buy", "sell")
    if invalid or any(f is None for f in fills):
        return True, invalid
    known = [f for f in fills if f is not None]
    last = known[-1]
    same_order = all(f.px == last.px and f.side == last.side and f.ts == last.ts for f in known)
    right = (
        same_order
        and px == last.px
        and sz == sum((f.sz for f in known), Decimal(0))
        and row.side == last.side
        and row.ts == last.ts
    )
    return not right, False


def score(tape: Iterable[Fill], received: Iterable[Received], windows: Sequence[Window]) -> dict[str, Counts]:
    """Counts per window name, plus ``total``; the windows must not overlap."""
    begin, end = windows[0].start_ms, windows[-1].end_ms
    truth: dict[tuple[str, int], Fill] = {(f.inst, f.trade_id): f for f in tape}
    out: dict[str, Counts] = {w.name: Counts() for w in windows}
    covered: set[tuple[str, int]] = set()
    seen: set[tuple[str, int]] = set()
    highest: dict[str, int] = {}
    for row in received:
        key = (row.inst, row.trade_id)
        last = truth.get(key)
        ts = last.ts if last is not None else row.ts
        window = None if ts is None else _window_of(windows, ts)
        if window is None:
            continue  # outside the scored span (or an unknown id without a time: nowhere to count it)
        counts = out[window.name]
        counts.received += 1
        if key in seen:
            counts.duplicated += 1
            continue
        seen.add(key)
        counts.reordered += row.trade_id < highest.get(row.inst, row.trade_id)
        highest[row.inst] = max(row.trade_id, highest.get(row.inst, row.trade_id))
        ids = range(row.trade_id - max(row.count, 1) + 1, row.trade_id + 1)
        fills = [truth.get((row.inst, i)) for i in ids]
        covered.update((row.inst, i) for i in ids)
        wrong, invalid = _verdict(row, fills)
        if wrong:
            counts.wrong += 1
            counts.invalid += invalid
            if len(counts.examples) < EXAMPLES:
                counts.examples.append(
                    f"{row.inst} {row.trade_id}: px={row.px} sz={row.sz} side={row.side} ts={row.ts}"
                    + (
                        f" (tape px={last.px} side={last.side})"
                        if last is not None
                        else " (id not in the tape)"
                    )
                )
    for key, fill in truth.items():
        if begin <= fill.ts < end:
            window = _window_of(windows, fill.ts)
            assert window is not None  # windows are contiguous over [begin, end)
            counts = out[window.name]
            counts.truth += 1
            if key not in covered:
                counts.missing += 1
                if len(counts.missing_ids) < EXAMPLES:
                    counts.missing_ids.append(f"{fill.inst} {fill.trade_id} (ts {fill.ts})")
    total = Counts()
    for counts in out.values():
        total.add(counts)
    out["total"] = total
    return out


def detect_s(events_ms: Iterable[int], *, start_ms: int, end_ms: int) -> float | None:
    """Seconds from ``start_ms`` to the first event in ``[start_ms, end_ms)``; None when there is none."""
    hits = [e for e in events_ms if start_ms <= e < end_ms]
    return None if not hits else (min(hits) - start_ms) / 1000


def counts_by_recorder(
    results: Mapping[str, Mapping[str, Counts]],
) -> dict[str, dict[str, dict[str, object]]]:
    """The JSON shape: recorder -> window -> counts."""
    return {name: {w: c.as_dict() for w, c in per.items()} for name, per in results.items()}
