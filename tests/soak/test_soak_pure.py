"""The soak's pure parts (fast; part of ``make test``): the seeded fault plan, the flatness rule, the verdicts."""

from __future__ import annotations

import random

import httpx

from okx_simulator import SimulatorConfig, SimulatorServer
from okx_simulator.faults import FAULT_KINDS
from tests.soak.analysis import (
    FLAT_LAG_P99_MS,
    FLAT_RSS_SLOPE_MB_PER_10MIN,
    GENERATORS,
    compare_rejected,
    compare_trades,
    fault_bodies,
    flatness,
    slope_per_10min,
)

PAIRS = {"main": ("BTC-USDT", "ETH-USDT"), "firehose": ("BTC-USDT",)}


def _plan(seed: int, n: int) -> list[object]:
    rng = random.Random(seed)
    return [fault_bodies(rng, PAIRS, every_s=(2.0, 6.0)) for _ in range(n)]


def test_the_plan_is_a_function_of_the_seed_and_covers_the_catalogue() -> None:
    assert _plan(5, 200) == _plan(5, 200)
    assert _plan(5, 50) != _plan(6, 50)
    plan = _plan(5, 400)
    assert {p.kind for p in plan} == FAULT_KINDS == set(GENERATORS)  # type: ignore[attr-defined]
    assert {p.target for p in plan} == set(PAIRS)  # type: ignore[attr-defined]
    assert all(2.0 <= p.delay_s <= 6.0 for p in plan)  # type: ignore[attr-defined]


async def test_the_simulator_accepts_every_planned_fault() -> None:
    """Every body the plan can draw is valid for ``POST /sim/faults`` (a 400 would stop the soak)."""
    async with SimulatorServer(SimulatorConfig(seed=1, pairs=("BTC-USDT", "ETH-USDT"))) as sim:
        async with httpx.AsyncClient(timeout=10) as http:
            for plan in _plan(11, 300):
                for body in plan.bodies:  # type: ignore[attr-defined]
                    response = await http.post(f"{sim.control_url}/faults", json=body)
                    assert response.status_code == 200, (body, response.text)
                await http.delete(f"{sim.control_url}/faults")


def test_slope_is_per_ten_minutes() -> None:
    points = [(t * 60_000, 100.0 + 2.0 * t) for t in range(11)]  # 2 MB per minute
    slope = slope_per_10min(points)
    assert slope is not None and abs(slope - 20.0) < 1e-9
    assert slope_per_10min(points[:2]) is None
    assert slope_per_10min([(0, 1.0), (0, 2.0), (0, 3.0)]) is None


def test_flatness_uses_the_window_and_skips_the_outage_and_its_recovery() -> None:
    minute = 60_000
    rss = [(t * minute, 300.0 + (50.0 * t if t < 10 else 500.0)) for t in range(30)]  # grows, then flat
    lag = [(t * minute, 500.0) for t in range(30)]
    lag[20] = (20 * minute, 60_000.0)  # during the outage
    lag[21] = (21 * minute, 30_000.0)  # recovering
    flat = flatness(rss, lag, window=(10 * minute, 29 * minute), outage=(20 * minute - 1, 20 * minute + 1))
    assert flat.rss_slope_mb_per_10min == 0.0 and flat.rss_flat
    assert flat.lag_p99_ms == 500.0 and flat.lag_flat
    assert (
        flat.lag_points == 17
    )  # 20 in the window, minus the outage sample and the two in the 120 s after it
    growing = flatness([(t * minute, 2.5 * t) for t in range(30)], lag, window=(0, 29 * minute), outage=None)
    assert growing.rss_slope_mb_per_10min is not None
    assert growing.rss_slope_mb_per_10min > FLAT_RSS_SLOPE_MB_PER_10MIN and not growing.rss_flat
    assert growing.lag_p99_ms == 60_000.0 > FLAT_LAG_P99_MS and not growing.lag_flat
    short = flatness(rss, [(t * 10_000, 100.0 * t) for t in range(6)], window=(0, 50_000), outage=None)
    assert (
        not short.slopes_judged and short.rss_flat and short.lag_flat
    )  # 1 min: slopes not judged, p99 500 ms


def test_compare_trades_counts_each_kind_of_difference() -> None:
    truth = [(1, 10, "1.0", "2", "buy"), (2, 11, "1.1", "2", "sell"), (3, 12, "1.2", "2", "buy")]
    assert compare_trades(truth, truth).exact
    stored = [truth[0], truth[0], (2, 11, "1.1", "3", "sell"), (4, 13, "1.3", "2", "buy")]
    verdict = compare_trades(truth, stored)
    assert (verdict.compared, verdict.missing, verdict.duplicated, verdict.extra, verdict.wrong) == (
        3,
        1,
        1,
        1,
        1,
    )
    assert not verdict.exact
    assert not compare_trades([], []).exact  # nothing compared proves nothing


def test_compare_rejected_explains_a_missing_frame_only_by_a_connection_cut() -> None:
    log = [
        {
            "frame": f,
            "ts_ms": ts,
            "connId": "c1",
            "channel": "tickers",
            "instId": "BTC-USDT",
            "variant": "bad_json",
        }
        for f, ts in (("a", 1_000), ("b", 20_000), ("c", 40_000))
    ]
    faults = [(21_000, "drop"), (40_500, "duplicate")]
    verdict = compare_rejected(["a"], log, faults)
    assert [i["ts_ms"] for i in verdict.undelivered] == [
        20_000
    ]  # a drop 1 s later: it may never have arrived
    assert [i["ts_ms"] for i in verdict.unexplained] == [40_000]  # nothing cut that connection: lost by us
    assert not verdict.ok
    assert compare_rejected(["a", "zzz"], log[:1], []).spurious == ["zzz"]
    assert compare_rejected(["a", "b", "c"], log, []).ok
    ticker = {**log[2], "variant": "missing_field"}  # lost instType only: stored as a ticker, not rejected
    unused = compare_rejected(["a", "b"], [*log[:2], ticker], [])
    assert unused.ok and unused.unused_field == 1
