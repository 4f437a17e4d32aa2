"""The ``live-collection`` flow against the simulator, cancelled the way the UI cancels it.

A Prefect ``Runner`` (what ``okx-collector serve`` runs) serves the flow as a deployment on the test harness's
server; the test starts a run through the API, waits until trades are stored, then cancels the run through the
API (state ``Cancelling``, as the UI's Cancel button does). The runner tells the run's process over its
control channel and sends SIGTERM; the flow stops reading, flushes and records coverage, and the run ends
``Cancelled``. Afterwards the database holds exactly the trades the run reported (its table artifact), and they
equal ``/sim/tape`` over the stored id range: nothing missing, nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.storage.schema import CoverageRow, TradeRow
from tests.live.sim_run import PAIRS, simulator, stored, true_tape, values

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_env(tmp_path: Path, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A collectors config of the two test pairs (trades only) and the PostgreSQL URL, in the environment
    that the run's process inherits."""
    config = tmp_path / "collectors.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "exchanges": {"okx": {"channels": ["trades"], "timeframes": ["1m"], "pairs": list(PAIRS)}},
                "live": {"raw_archive": "trades"},
                "batching": {"flush_interval_s": 0.2, "max_batch_rows": 500, "max_pending_rows": 10_000},
            }
        )
    )
    monkeypatch.setenv("COLLECTOR_CONFIG", str(config))
    monkeypatch.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "INFO")  # the run's summaries are INFO records
    monkeypatch.chdir(ROOT)
    return config


@pytest.fixture
async def served(prefect_harness: None) -> AsyncIterator[tuple[Any, UUID]]:
    """A runner serving the live flow (deployment ``live-collection/test-live``), stopped afterwards."""
    from prefect.runner import Runner

    from flows.live import live_collection

    saved = signal.getsignal(signal.SIGTERM)  # Runner.start installs its own SIGTERM handler
    runner = Runner(name="test-live-runner", query_seconds=1, limit=2, pause_on_shutdown=False)
    deployment_id = await runner.aadd_flow(live_collection, name="test-live")
    task = asyncio.create_task(runner.start())
    try:
        yield runner, deployment_id
    finally:
        await runner.astop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        signal.signal(signal.SIGTERM, saved)


async def _wait_state(client: Any, run_id: UUID, names: set[str], wait_s: float) -> Any:
    async with asyncio.timeout(wait_s):
        while True:
            run = await client.read_flow_run(run_id)
            if run.state is not None and run.state.name in names:
                return run
            await asyncio.sleep(0.5)


async def _until(ok: Any, wait_s: float) -> None:
    for _ in range(int(wait_s / 0.2)):
        if ok():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached within {wait_s} s")


def _stored_after(db: Engine, inst_id: str, after_ms: int) -> bool:
    rows = stored(db, inst_id)
    return bool(rows) and rows[-1][1] > after_ms


def _trade_count(db: Engine, inst_id: str) -> int:
    with Session(db) as session:
        return int(session.scalar(select(func.count()).where(TradeRow.inst_id == inst_id)) or 0)


async def test_cancel_through_the_api_flushes_everything_and_ends_cancelled(
    live_env: Path, pg_engine: Engine, served: tuple[Any, UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    from tasks.rest_budget import BUDGET_LIMIT

    async with simulator(trade_rate=20.0) as sim:
        monkeypatch.setenv("OKX_REST_URL", sim.rest_url)
        monkeypatch.setenv("OKX_WS_PUBLIC_URL", sim.ws_public_url)
        monkeypatch.setenv("OKX_WS_BUSINESS_URL", sim.ws_business_url)
        run = await run_deployment(
            "live-collection/test-live",
            parameters={"pairs": list(PAIRS), "summary_interval_s": 1.0},
            timeout=0,
        )
        async with get_client() as client:
            await _wait_state(client, run.id, {"Running"}, 90)
            started_ms = time.time_ns() // 1_000_000
            await _until(lambda: all(_stored_after(pg_engine, p, started_ms) for p in PAIRS), 60)
            # more trades arrive; some sit in the writer's buffer when the cancel lands. Wait for the first
            # summary line to reach the API too: on a loaded machine the first status reports come late and a
            # cancel after 1.5 s could land before any interval had passed (a summary list found empty once)
            await asyncio.sleep(1.5)
            for _ in range(150):
                shipped = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
                if any(" trades in " in log.message for log in shipped):
                    break
                await asyncio.sleep(0.2)
            members_live = (await client.read_global_concurrency_limit_by_name(BUDGET_LIMIT)).active_slots
            await client.set_flow_run_state(run.id, Cancelling(message="cancelled by the test"), force=True)
            final = await _wait_state(client, run.id, {"Cancelled", "Crashed", "Failed", "Completed"}, 90)
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
            members_after = (await client.read_global_concurrency_limit_by_name(BUDGET_LIMIT)).active_slots
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            ran_s = (time.time_ns() // 1_000_000 - started_ms) / 1000
        tapes = {p: await true_tape(sim, p) for p in PAIRS}
    assert final.state.name == "Cancelled", final.state
    # live without a REST request (nothing stored: no catch-up) it holds no slot of the REST budget (a member
    # on demand only, tests/flows/test_backfill_flow.py), and none after the cancel
    assert (members_live, members_after) == (0, 0)
    assert len(artifacts) == 1 and artifacts[0].key == "live-test-live"
    summaries = [log.message for log in logs if " trades in " in log.message]
    # one summary per second (summary_interval_s=1), never a line per frame: hundreds of frames arrived
    assert 1 <= len(summaries) <= ran_s + 2, summaries
    assert all(m.startswith("2 pairs (") for m in summaries), summaries
    assert any("stopped by a cancel (everything flushed)" in log.message for log in logs)
    reported = {row["pair"]: row["trades"] for row in _table(artifacts[0].data)}
    for inst_id in PAIRS:
        rows = stored(pg_engine, inst_id)
        # the run reported what it accepted; every one of those is in the database, once
        assert _trade_count(pg_engine, inst_id) == reported[inst_id] > 0
        first, last = rows[0][0], rows[-1][0]
        assert rows == [values(t) for t in tapes[inst_id] if first <= t.trade_id <= last], inst_id
    with Session(pg_engine) as session:
        spans = session.scalars(select(CoverageRow).where(CoverageRow.status == "collected")).all()
    # the stop recorded each pair's collected span up to the cancel
    assert {s.inst_id for s in spans} == set(PAIRS)
    assert all(max(s.end_time for s in spans if s.inst_id == p) >= rows_last_ts(pg_engine, p) for p in PAIRS)


async def test_max_runtime_ends_the_run_completed_with_what_it_stored(
    live_env: Path, pg_engine: Engine, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.live import live_collection

    async with simulator(trade_rate=20.0) as sim:
        monkeypatch.setenv("OKX_REST_URL", sim.rest_url)
        monkeypatch.setenv("OKX_WS_PUBLIC_URL", sim.ws_public_url)
        monkeypatch.setenv("OKX_WS_BUSINESS_URL", sim.ws_business_url)
        state = await live_collection(
            pairs=[PAIRS[0]], max_runtime_s=4.0, summary_interval_s=1.0, budget_limit="", return_state=True
        )
        tape = await true_tape(sim, PAIRS[0])
    assert state.is_completed(), state
    trades = await state.aresult()
    rows = stored(pg_engine, PAIRS[0])
    assert trades == {PAIRS[0]: len(rows)} and len(rows) > 0
    assert stored(pg_engine, PAIRS[1]) == []  # only the pair it was given
    first, last = rows[0][0], rows[-1][0]
    assert rows == [values(t) for t in tape if first <= t.trade_id <= last]


def test_narrow_config_keeps_the_given_pairs_on_the_given_channels() -> None:
    from collectors.config import parse_config
    from tasks.live import narrow_config

    config = parse_config(
        {
            "exchanges": {
                "okx": {"pairs": ["BTC-USDT", {"inst_id": "ETH-USDT", "channels": ["tickers"]}, "SOL-USDT"]}
            }
        }
    )
    narrowed = narrow_config(config, pairs=["ETH-USDT", "BTC-USDT"], channels=["trades", "books5"])
    entry = narrowed.exchanges["okx"]
    assert [p.inst_id for p in entry.pairs] == ["BTC-USDT", "ETH-USDT"]
    assert [entry.channels_for(p) for p in entry.pairs] == [("trades", "books5")] * 2
    kept = narrow_config(config, pairs=None, channels=None).exchanges["okx"]
    assert [kept.channels_for(p) for p in kept.pairs][1] == ("tickers",)  # a pair's own channels stay


@pytest.mark.parametrize(
    ("pairs", "channels", "message"),
    [
        (["XRP-USDT"], None, "pairs: XRP-USDT not in the config"),
        ([], None, "pairs: an empty list"),
        (None, ["trade"], "unknown channel 'trade'"),
        (None, [], "channels: an empty list"),
    ],
)
def test_narrow_config_refuses_what_the_config_cannot_collect(
    pairs: list[str] | None, channels: list[str] | None, message: str
) -> None:
    from collectors.config import parse_config
    from collectors.errors import ConfigError
    from tasks.live import narrow_config

    config = parse_config({"exchanges": {"okx": {"pairs": ["BTC-USDT"]}}})
    with pytest.raises(ConfigError, match=message):
        narrow_config(config, pairs=pairs, channels=channels)


def test_the_summary_is_one_record_per_interval_with_the_deltas() -> None:
    from collectors.live.health import PairHealth
    from tasks.live import MinuteSummary

    def health(inst_id: str, trades: int, reconnects: int, state: str = "live") -> PairHealth:
        return PairHealth(
            inst_id=inst_id, state=state, channels=(), reconnects=reconnects, trades_stored=trades,
            duplicates=0, gaps_found=1, gaps_filled=1, gaps_unrecoverable=0, gaps_open=0, rest_trades=0,
            rejected=0, revision_requests=0, frontier_id=None, writer_lag_ms=250,
        )  # fmt: skip

    lines: list[str] = []
    now = [0.0]
    summary = MinuteSummary(emit=lines.append, monotonic_s=lambda: now[0], interval_s=60.0)
    for second in range(125):  # a status report every second for 2 minutes
        now[0] = float(second)
        summary([health("BTC-USDT", 10 * second, second // 100), health("ETH-USDT", second, 0, "down")])
    assert lines == [
        "2 pairs (down 1, live 1); +660 trades in 60 s (11.0/s), 660 this run; gaps open 0, filled 2, "
        "unrecoverable 0; +0 reconnects; rejected 0; writer lag 0.2 s",
        "2 pairs (down 1, live 1); +660 trades in 60 s (11.0/s), 1320 this run; gaps open 0, filled 2, "
        "unrecoverable 0; +1 reconnects; rejected 0; writer lag 0.2 s",
    ]


def rows_last_ts(db: Engine, inst_id: str) -> int:
    return stored(db, inst_id)[-1][1]


def _table(data: Any) -> list[dict[str, Any]]:
    import json

    parsed = json.loads(data) if isinstance(data, str) else data
    return list(parsed)
