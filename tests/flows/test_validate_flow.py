"""The ``validate`` flow through Prefect's engine on PostgreSQL: a hole makes the run Failed with the finding in
the pair's table artifact and summary; after the fill the run is Completed and the artifacts have a new version."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from flow_quality_helpers import artifact_versions, artifacts, point_at
from sqlalchemy import Engine, delete, select

from collectors.quality.findings import iso
from collectors.storage.schema import TradeRow, ValidationRunRow
from flows.validate import validate

sys.path.insert(0, str(Path(__file__).parents[1] / "quality"))
from quality_helpers import DAY_START, HOUR, collected, live_candles, store, tape

START, END = DAY_START, DAY_START + 3 * HOUR


async def test_validate_fails_on_a_hole_publishes_it_per_pair_and_passes_after_the_fill(
    prefect_harness: None,
    pg_engine: Engine,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    point_at(monkeypatch, tmp_path, pg_database)
    trades = tape()
    await store(pg_engine, [*trades, *live_candles(trades, START, END), collected("BTC-USDT", START, END)])
    hole = [t for t in trades if 1500 <= t.trade_id <= 1502]
    with pg_engine.begin() as conn:
        conn.execute(delete(TradeRow).where(TradeRow.trade_id.between(1500, 1502)))

    state = await validate(pairs=["BTC-USDT"], start=iso(START), end=iso(END), return_state=True)
    assert state.is_failed()
    found = await artifacts(state.state_details.flow_run_id)
    assert set(found) == {"validation-btc-usdt", "validation-summary-btc-usdt"}
    gaps = [row for row in found["validation-btc-usdt"] if row["kind"] == "trade_gap"]
    assert gaps == [
        {"pair": "BTC-USDT", "kind": "trade_gap", "start": iso(trades[499].ts_ms), "end": iso(trades[503].ts_ms),
         "timeframe": None, "field": None, "detail": "trade ids 1500-1502 missing (3)"}
    ]  # fmt: skip
    assert "**failed**" in found["validation-summary-btc-usdt"]
    assert "trade_gap 1" in found["validation-summary-btc-usdt"]

    await store(pg_engine, hole)  # the fill: the true tape rows again
    state = await validate(pairs=["BTC-USDT"], start=iso(START), end=iso(END), return_state=True)
    assert state.is_completed()
    assert (await state.result())["findings"] == 0
    found = await artifacts(state.state_details.flow_run_id)
    assert found["validation-btc-usdt"] == [
        {"pair": "BTC-USDT", "kind": "none", "start": iso(START), "end": iso(END)}
    ]
    assert "**passed**" in found["validation-summary-btc-usdt"]
    assert await artifact_versions("validation-btc-usdt") == 2
    with pg_engine.connect() as conn:
        statuses = conn.execute(
            select(ValidationRunRow.status).order_by(ValidationRunRow.started_at)
        ).scalars()
        assert list(statuses) == ["failed", "passed"]


async def test_a_tolerance_above_the_findings_lets_the_run_pass(
    prefect_harness: None,
    pg_engine: Engine,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    point_at(monkeypatch, tmp_path, pg_database)
    # nothing stored and no coverage: the hour is one not_covered finding
    state = await validate(start=iso(START), end=iso(START + HOUR), tolerance=1, return_state=True)
    assert state.is_completed()
    assert (await state.result())["findings"] == 1
    state = await validate(start=iso(START), end=iso(START + HOUR), tolerance=0, return_state=True)
    assert state.is_failed()


async def test_hostile_parameters_fail_the_run_with_the_reason_and_record_nothing(
    prefect_harness: None,
    pg_engine: Engine,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """What the UI form lets through: a negative lookback (it checked a range after the end's hour instead), a
    negative tolerance (a run with no finding ended Failed), a staleness of NaN, infinity or below 0 (NaN
    crashed with "cannot convert float NaN to integer"). Each run ends Failed naming the value; no validation
    run is recorded."""
    point_at(monkeypatch, tmp_path, pg_database)
    for parameters, reason in (
        ({"lookback_minutes": -5}, "the lookback must be above 0, got -5 minutes"),
        ({"tolerance": -1}, "tolerance must be 0 or more findings, got -1"),
        (
            {"max_staleness_s": float("nan")},
            "the maximum staleness must be a number of seconds above 0, got nan",
        ),
        ({"max_staleness_s": float("inf")}, "above 0, got inf"),
        ({"max_staleness_s": -1.0}, "above 0, got -1.0"),
    ):
        state = await validate(**parameters, return_state=True)  # type: ignore[arg-type]
        assert state.is_failed(), (parameters, state)
        assert state.message is not None and reason in state.message, (parameters, state.message)
    with pg_engine.connect() as conn:
        assert conn.execute(select(ValidationRunRow)).first() is None
