"""The soak's pure parts: the seeded fault plan, the flatness rule and the tape/candle verdict counts.

No I/O and no clock here: the driver (``driver.py``) passes times and samples in.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from collectors.exchanges.okx.session import FATAL_CLOSE_CODES
from okx_simulator.faults import FAULT_KINDS, MALFORMED_VARIANTS

__all__ = [
    "FLAT_LAG_P99_MS",
    "FLAT_LAG_SLOPE_MS_PER_10MIN",
    "FLAT_RSS_SLOPE_MB_PER_10MIN",
    "FaultPlan",
    "Flatness",
    "TapeVerdict",
    "compare_rejected",
    "compare_trades",
    "fault_bodies",
    "flatness",
    "recovery_s",
    "slope_per_10min",
]

# "Flat", precisely: over the second half of the fault phase (for the lag: outside the PostgreSQL outage and the
# RECOVERY_S after it), the least-squares slope of RSS is under 20 MB per 10 min, the slope of the writer lag
# under 1 s per 10 min, and the lag's 99th percentile under 5 s.
FLAT_RSS_SLOPE_MB_PER_10MIN: Final = 20.0
FLAT_LAG_SLOPE_MS_PER_10MIN: Final = 1_000.0
FLAT_LAG_P99_MS: Final = 5_000.0
RECOVERY_S: Final = 120.0
MIN_SLOPE_WINDOW_MS: Final = 5 * 60_000  # slopes are judged over a second half of at least 5 minutes
_TEN_MIN_MS: Final = 600_000

# close codes the collector retries (a fatal code ends the session by design: not a fault to survive)
RETRYABLE_CLOSE_CODES: Final = tuple(
    c for c in (1000, 1001, 1011, 1012, 4005, 4006) if c not in FATAL_CLOSE_CODES
)
PATHS: Final = ("/ws/v5/public", "/ws/v5/business")


def _narrow(rng: random.Random, pairs: Sequence[str], *, path: bool = True) -> dict[str, Any]:
    """No narrowing, one instId or (for WebSocket kinds) one endpoint path: a third each."""
    pick = rng.randrange(3)
    if pick == 1:
        return {"instId": rng.choice(list(pairs))}
    if pick == 2 and path:
        return {"path": rng.choice(PATHS)}
    return {}


def _secs(rng: random.Random, lo: float, hi: float) -> float:
    return round(rng.uniform(lo, hi), 2)


_Gen = Callable[[random.Random, Sequence[str]], list[dict[str, Any]]]

# one generator per kind of the simulator's catalogue (test_soak_pure checks they are the same set)
GENERATORS: Final[dict[str, _Gen]] = {
    "drop": lambda r, p: [{"kind": "drop", **_narrow(r, p)}],
    "close": lambda r, p: [
        {"kind": "close", "code": r.choice(RETRYABLE_CLOSE_CODES), "reason": "soak", **_narrow(r, p)}
    ],
    "stall": lambda r, p: [{"kind": "stall", "seconds": _secs(r, 0.5, 4.0), **_narrow(r, p)}],
    "notice": lambda r, p: [{"kind": "notice", "seconds": _secs(r, 0.5, 3.0), **_narrow(r, p)}],
    "malformed": lambda r, p: [
        {
            "kind": "malformed",
            "rate": _secs(r, 0.05, 0.4),
            "variants": r.sample(list(MALFORMED_VARIANTS), r.randint(1, len(MALFORMED_VARIANTS))),
            "seconds": _secs(r, 0.5, 3.0),
            **_narrow(r, p),
        }
    ],
    "duplicate": lambda r, p: [
        {"kind": "duplicate", "rate": _secs(r, 0.05, 0.5), "seconds": _secs(r, 0.5, 3.0), **_narrow(r, p)}
    ],
    "reorder": lambda r, p: [
        {"kind": "reorder", "rate": _secs(r, 0.05, 0.5), "seconds": _secs(r, 0.5, 3.0), **_narrow(r, p)}
    ],
    "book_gap": lambda r, p: [{"kind": "book_gap", **_narrow(r, p, path=False)}],
    "seq_reset": lambda r, p: [{"kind": "seq_reset", **_narrow(r, p, path=False)}],
    "rest_error": lambda r, p: [
        {"kind": "rest_error", "status": r.choice((500, 502, 503, 504)), "seconds": _secs(r, 0.5, 3.0)}
    ],
    "rest_429": lambda r, p: [{"kind": "rest_429", "seconds": _secs(r, 0.5, 3.0)}],
    "rest_slow": lambda r, p: [
        {"kind": "rest_slow", "delay_ms": r.randrange(200, 2_000), "seconds": _secs(r, 0.5, 3.0)}
    ],
    # refuse only turns new connections away: a drop with it makes the collector meet the refusal
    "refuse": lambda r, p: [{"kind": "refuse", "seconds": _secs(r, 0.5, 2.0)}, {"kind": "drop"}],
}
assert set(GENERATORS) == FAULT_KINDS, sorted(FAULT_KINDS ^ set(GENERATORS))


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The next fault: after ``delay_s``, post ``bodies`` to the simulator ``target`` (``main`` or ``firehose``)."""

    delay_s: float
    target: str
    kind: str
    bodies: list[dict[str, Any]]


def fault_bodies(
    rng: random.Random,
    pairs: dict[str, Sequence[str]],
    *,
    every_s: tuple[float, float],
) -> FaultPlan:
    """One draw of the seeded plan: a kind from the whole catalogue, a simulator, its parameters and the wait."""
    delay_s = round(rng.uniform(*every_s), 2)
    kind = rng.choice(sorted(GENERATORS))
    target = rng.choice(sorted(pairs))
    return FaultPlan(delay_s=delay_s, target=target, kind=kind, bodies=GENERATORS[kind](rng, pairs[target]))


def slope_per_10min(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of ``(t_ms, value)`` points, in value units per 10 minutes (None under 3 points)."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * _TEN_MIN_MS


def _p99(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass(frozen=True, slots=True)
class Flatness:
    rss_slope_mb_per_10min: float | None
    lag_slope_ms_per_10min: float | None
    lag_p99_ms: float | None
    rss_points: int
    lag_points: int
    window_ms: int = 0

    @property
    def slopes_judged(self) -> bool:
        """A slope extrapolated to 10 minutes from less than MIN_SLOPE_WINDOW_MS of samples is noise (a 2-minute
        smoke run has a 1-minute window): then only the lag's p99 is judged."""
        return self.window_ms >= MIN_SLOPE_WINDOW_MS

    @property
    def rss_flat(self) -> bool:
        if not self.slopes_judged:
            return self.rss_points > 0
        slope = self.rss_slope_mb_per_10min
        return slope is not None and slope < FLAT_RSS_SLOPE_MB_PER_10MIN

    @property
    def lag_flat(self) -> bool:
        if self.lag_p99_ms is None or self.lag_p99_ms >= FLAT_LAG_P99_MS:
            return False
        if not self.slopes_judged:
            return True
        slope = self.lag_slope_ms_per_10min
        return slope is not None and slope < FLAT_LAG_SLOPE_MS_PER_10MIN


def flatness(
    rss: Sequence[tuple[int, float]],
    lag: Sequence[tuple[int, float]],
    *,
    window: tuple[int, int],
    outage: tuple[int, int] | None,
    recovery_s: float = RECOVERY_S,
) -> Flatness:
    """The flatness rule (above) on samples ``(t_ms, MB)`` and ``(t_ms, lag ms)``; ``window`` is the second half of
    the fault phase, ``outage`` the PostgreSQL stop..start (it and the ``recovery_s`` after it are left out of the
    lag; a short smoke run passes less than RECOVERY_S, see :func:`recovery_s`)."""
    lo, hi = window
    rss_w = [(t, v) for t, v in rss if lo <= t <= hi]
    skip = (outage[0], outage[1] + int(recovery_s * 1000)) if outage else None
    lag_w = [(t, v) for t, v in lag if lo <= t <= hi and not (skip and skip[0] <= t <= skip[1])]
    return Flatness(
        rss_slope_mb_per_10min=slope_per_10min(rss_w),
        lag_slope_ms_per_10min=slope_per_10min(lag_w),
        lag_p99_ms=_p99([v for _, v in lag_w]),
        rss_points=len(rss_w),
        lag_points=len(lag_w),
        window_ms=hi - lo,
    )


def recovery_s(fault_phase_s: float) -> float:
    """The lag's recovery allowance after the PostgreSQL restart: RECOVERY_S, at most a tenth of the fault phase
    (a 2-minute smoke run keeps 12 s, so its second half still has lag samples to judge)."""
    return min(RECOVERY_S, fault_phase_s / 10)


Row = tuple[int, int, str, str, str]  # trade id, ts ms, price, size, side


@dataclass(slots=True)
class TapeVerdict:
    """Stored trades against the tape: ids missing, stored twice, stored but not on the tape, values wrong."""

    compared: int = 0
    missing: int = 0
    duplicated: int = 0
    extra: int = 0
    wrong: int = 0
    examples: list[str] | None = None

    def add(self, truth: Sequence[Row], stored: Sequence[Row]) -> None:
        self.compared += len(truth)
        by_id: dict[int, Row] = {}
        for row in stored:
            if row[0] in by_id:
                self.duplicated += 1
            by_id.setdefault(row[0], row)
        true_ids = set()
        for row in truth:
            true_ids.add(row[0])
            got = by_id.get(row[0])
            if got is None:
                self.missing += 1
                self._example(f"missing {row}")
            elif got != row:
                self.wrong += 1
                self._example(f"wrong {got} != {row}")
        for trade_id, row in by_id.items():
            if trade_id not in true_ids:
                self.extra += 1
                self._example(f"extra {row}")

    def _example(self, text: str) -> None:
        if self.examples is None:
            self.examples = []
        if len(self.examples) < 10:
            self.examples.append(text)

    @property
    def exact(self) -> bool:
        return self.compared > 0 and self.missing == self.duplicated == self.extra == self.wrong == 0


def compare_trades(truth: Sequence[Row], stored: Sequence[Row]) -> TapeVerdict:
    verdict = TapeVerdict()
    verdict.add(truth, stored)
    return verdict


# faults that end a WebSocket connection (refuse posts a drop with it)
CONNECTION_ENDING: Final = frozenset({"drop", "close", "notice", "refuse"})
# a malformed frame is logged when the simulator queues it; a stall can hold it for up to 4 s and a notice closes
# up to 3 s after it comes, so a connection ended up to this long after the frame can have taken it with it
UNDELIVERED_WINDOW_MS: Final = 8_000


# A ``missing_field`` frame drops the row's first field; for ``tickers`` that is ``instType``, which the collector
# does not read (the subscription names the instrument), so it stores the ticker instead of rejecting the frame.
UNUSED_FIRST_FIELD: Final = {"tickers": "instType"}


@dataclass(slots=True)
class RejectedVerdict:
    """``rejected_messages`` against ``/sim/faults/log``: ``spurious`` rejected frames the simulator never
    corrupted; ``unexplained`` malformed frames not rejected with no connection-ending fault on that simulator
    within UNDELIVERED_WINDOW_MS after it was queued (such a frame may never have reached the collector)."""

    stored: int
    logged: int
    spurious: list[str]
    undelivered: list[dict[str, Any]]
    unexplained: list[dict[str, Any]]
    unused_field: int = 0  # missing_field frames that lost only a field the collector does not read

    @property
    def ok(self) -> bool:
        return not self.spurious and not self.unexplained


def compare_rejected(
    rejected: Sequence[str], log: Sequence[dict[str, Any]], faults: Sequence[tuple[int, str]]
) -> RejectedVerdict:
    """``rejected``: stored payloads; ``log``: the simulator's malformed log entries; ``faults``: ``(t_ms, kind)``
    posted to that simulator."""
    from collections import Counter

    stored, logged = Counter(rejected), Counter(entry["frame"] for entry in log)
    missing = logged - stored
    undelivered, unexplained = [], []
    unused = 0
    for entry in log:
        if missing[entry["frame"]] > 0:
            missing[entry["frame"]] -= 1
            if entry["variant"] == "missing_field" and entry["channel"] in UNUSED_FIRST_FIELD:
                unused += 1
                continue
            ts = int(entry["ts_ms"])
            cut = [
                (t, kind)
                for t, kind in faults
                if kind in CONNECTION_ENDING and ts - 1_000 <= t <= ts + UNDELIVERED_WINDOW_MS
            ]
            item = {k: entry[k] for k in ("ts_ms", "connId", "channel", "instId", "variant")}
            item["cut_by"] = cut[:3]
            (undelivered if cut else unexplained).append(item)
    return RejectedVerdict(
        stored=len(rejected),
        logged=len(log),
        spurious=sorted((stored - logged).elements()),
        undelivered=undelivered,
        unexplained=unexplained,
        unused_field=unused,
    )
