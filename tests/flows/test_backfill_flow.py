"""The ``backfill`` flow through Prefect's engine (the session harness), the simulator and PostgreSQL.

The flow reads its settings from the environment like a deployment does (DATABASE_URL, OKX_REST_URL,
COLLECTOR_CONFIG). It fills a deleted hole and publishes its summary table; two runs at once share the IP's
REST budget through the membership GCL and the simulator answers no 429.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy import Engine
from sqlalchemy import text as sqltext

import flows.backfill
from collectors.exchanges.okx.limits import HISTORY_TRADES, OKX_REST_QUOTAS
from collectors.exchanges.okx.session import CONNECT_KEY
from collectors.live.app import process_limiter
from collectors.model import Trade
from collectors.ratelimit import RateLimiter, join_delay_s
from flows.backfill import backfill
from okx_simulator import SimulatorServer
from tasks.backfill import fetch_chunk_task
from tasks.rest_budget import ensure_budget_limit, rest_budget
from tests.backfill.backfill_sim import coverage, cut, sim_stats, store
from tests.live.sim_run import PAIRS, add_fault, simulator, stored, true_tape, values


@pytest.fixture
def flow_env(tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "collectors.yaml"
    config.write_text(
        "exchanges:\n  okx:\n    channels: [trades]\n    timeframes: [1m]\n"
        f"    pairs: [{', '.join(PAIRS)}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DATABASE_URL", pg_database)
    monkeypatch.setenv("COLLECTOR_CONFIG", str(config))
    return config


async def cut_tapes(db: Engine, sim: SimulatorServer) -> dict[str, list[Trade]]:
    """Each pair's true tape stored, then cut down to its two ends."""
    tapes = {p: await true_tape(sim, p) for p in PAIRS}
    for inst_id, tape in tapes.items():
        await store(db, tape)
        cut(db, inst_id, tape[1].trade_id, tape[-2].trade_id)
    return tapes


async def test_the_flow_fills_a_hole_and_publishes_its_summary(
    prefect_harness: None, flow_env: Path, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with simulator(history_hours=0.1) as sim:
        monkeypatch.setenv("OKX_REST_URL", sim.rest_url)
        tape = await true_tape(sim, "BTC-USDT")
        await store(pg_engine, tape)
        first, last = tape[len(tape) // 3].trade_id, tape[len(tape) // 2].trade_id
        cut(pg_engine, "BTC-USDT", first, last)
        rows = await backfill(pairs=["BTC-USDT"], chunk_ids=100)  # several chunks: a progress artifact
    assert stored(pg_engine, "BTC-USDT") == [values(t) for t in tape]
    assert rows[0]["pair"] == "BTC-USDT"
    assert (rows[0]["holes"], rows[0]["trades"], rows[0]["failed_chunks"]) == (1, last - first + 1, 0)
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backfill-summary"]))
        )
        progress = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backfill-progress"]))
        )
    assert artifacts and artifacts[0].type == "table"
    assert "BTC-USDT" in str(artifacts[0].data)
    assert progress and progress[0].type == "progress" and float(progress[0].data) == 100.0  # type: ignore[arg-type]


async def test_chunks_failing_end_the_run_failed_and_record_their_span_unrecoverable(
    prefect_harness: None, flow_env: Path, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OKX answers every history-trades page with an error: each chunk fails after its retries (one, without
    delay, to keep the test short), the hole is recorded unrecoverable with the reason, the run ends Failed."""
    monkeypatch.setattr(
        flows.backfill, "fetch_chunk_task", fetch_chunk_task.with_options(retries=1, retry_delay_seconds=0)
    )
    async with simulator(history_hours=0.1) as sim:
        monkeypatch.setenv("OKX_REST_URL", sim.rest_url)
        tape = await true_tape(sim, "BTC-USDT")
        await store(pg_engine, tape)
        first, last = tape[len(tape) // 3].trade_id, tape[len(tape) // 2].trade_id
        cut(pg_engine, "BTC-USDT", first, last)
        await add_fault(sim, {"kind": "rest_error", "status": 400, "path": "/api/v5/market/history-trades"})
        state = await backfill(pairs=["BTC-USDT"], chunk_ids=100, exchange_candles=False, return_state=True)
    chunks = -(-(last - first + 1) // 100)
    assert state.is_failed(), state
    assert state.message is not None and f"{chunks} chunks failed after their retries" in state.message
    assert len(stored(pg_engine, "BTC-USDT")) == len(tape) - (last - first + 1)
    lost = [(s, e, r) for s, e, st, r in coverage(pg_engine, "BTC-USDT") if st == "unrecoverable"]
    assert lost and all(
        r is not None and "REST failed after retries" in r and "OKX 50026" in r for _, _, r in lost
    ), lost
    assert lost[0][0] <= tape[len(tape) // 3].ts_ms and lost[-1][1] > tape[len(tape) // 2].ts_ms


async def test_two_flow_runs_at_once_share_the_budget_and_get_no_429(
    prefect_harness: None, flow_env: Path, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with simulator(history_hours=0.2) as sim:
        monkeypatch.setenv("OKX_REST_URL", sim.rest_url)
        tapes = await cut_tapes(pg_engine, sim)
        before = (await sim_stats(sim))["http_429"]
        results = await asyncio.gather(*(backfill(pairs=[p], exchange_candles=False) for p in PAIRS))
        after = (await sim_stats(sim))["http_429"]
    assert after - before == 0
    for inst_id, rows in zip(PAIRS, results, strict=True):
        assert rows[0]["trades"] == len(tapes[inst_id]) - 2 and rows[0]["failed_chunks"] == 0
        assert stored(pg_engine, inst_id) == [values(t) for t in tapes[inst_id]]


async def test_budget_members_split_the_quota_and_a_leaver_gives_its_share_back(
    prefect_harness: None,
) -> None:
    await ensure_budget_limit("test-okx-rest-members", 4)
    first, second = RateLimiter(quotas=OKX_REST_QUOTAS), RateLimiter(quotas=OKX_REST_QUOTAS)
    async with rest_budget(first, name="test-okx-rest-members", poll_s=0.2) as alone:
        assert (alone.members, first.limit(HISTORY_TRADES)) == (1, 18)
        joined_at = asyncio.get_running_loop().time()
        async with rest_budget(second, name="test-okx-rest-members", poll_s=0.2) as joiner:
            # the joiner waited a poll, a window and a margin before its first request
            assert asyncio.get_running_loop().time() - joined_at >= join_delay_s(poll_s=0.2, window_ms=2_000)
            assert (joiner.members, second.limit(HISTORY_TRADES), first.limit(HISTORY_TRADES)) == (2, 9, 9)
        # a few polls: each reads the Prefect API, slow on a loaded machine (up to 20 s; was a fixed 0.6 s)
        for _ in range(100):
            await asyncio.sleep(0.2)
            if (alone.members, first.limit(HISTORY_TRADES)) == (1, 18):
                break
        assert (alone.members, first.limit(HISTORY_TRADES)) == (1, 18)
        assert alone.failed_polls == 0 and alone.polls > 0


async def test_an_idle_live_run_takes_no_share_and_joins_only_while_it_sends_rest_requests(
    prefect_harness: None,
) -> None:
    """A live collector's limiter is an on-demand member: idle (or only opening WebSockets) it holds no slot,
    so a backfill beside it keeps the whole budget (18 per 2 s); its first REST request joins (after the join
    delay, the backfill's share halves) and it leaves after ``linger_s`` without one (the whole budget back)."""
    name = "test-okx-rest-on-demand"
    await ensure_budget_limit(name, 4)
    clock = asyncio.get_running_loop().time
    live_limiter, backfill_limiter = process_limiter(), RateLimiter(quotas=OKX_REST_QUOTAS)
    async with rest_budget(live_limiter, name=name, poll_s=0.2, on_demand=True, linger_s=1.0) as live:
        assert live.demand is not None
        async with rest_budget(backfill_limiter, name=name, poll_s=0.2) as backfilling:
            assert (backfilling.members, backfill_limiter.limit(HISTORY_TRADES)) == (1, 18)
            await live_limiter.acquire(CONNECT_KEY)  # a WebSocket connect is not a REST request
            await asyncio.sleep(0.6)
            assert (live.demand.joins, backfill_limiter.limit(HISTORY_TRADES)) == (0, 18)
            asked = clock()
            await live_limiter.acquire(HISTORY_TRADES)
            assert clock() - asked >= join_delay_s(poll_s=0.2, window_ms=2_000)
            assert live.demand.joins == 1 and live.members == 2
            assert (live_limiter.limit(HISTORY_TRADES), backfill_limiter.limit(HISTORY_TRADES)) == (9, 9)
            # no REST request for linger_s, its grant out of the window: it leaves, the backfill has it all
            for _ in range(50):
                await asyncio.sleep(0.2)
                if not live.demand.joined and backfill_limiter.limit(HISTORY_TRADES) == 18:
                    break
            assert (live.demand.joined, backfilling.members, backfill_limiter.limit(HISTORY_TRADES)) == (
                False,
                1,
                18,
            )
            await live_limiter.acquire(HISTORY_TRADES)  # asked again: joins again
            assert live.demand.joins == 2 and backfill_limiter.limit(HISTORY_TRADES) == 9


async def test_hostile_parameters_fail_the_run_with_the_reason_before_anything_is_asked_or_written(
    prefect_harness: None, flow_env: Path, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a UI form lets through: a pair the config lacks (a typo found no gap and no error on every scheduled
    run), no chunk, a negative lookback, a reversed range, since=-1. Each run ends Failed naming the value,
    before any REST request (the URL leads nowhere) and without a row written."""
    monkeypatch.setenv(
        "OKX_REST_URL", "http://127.0.0.1:9"
    )  # nothing listens: a request would fail otherwise
    for parameters, reason in (
        ({"pairs": ["BTC-USTD"]}, "BTC-USTD not in the config"),
        (
            {"pairs": ["BTC-USDT"], "since": "1d", "chunk_ids": 0},
            "chunk_ids and concurrency must be at least 1",
        ),
        ({"gaps_lookback_hours": -1.0}, "gaps_lookback_hours above 0"),
        ({"start": "2026-11-20T10:00Z", "end": "2026-11-20T09:00Z"}, "the range is empty or reversed"),
        ({"since": "-1"}, "not a duration: '-1'"),
    ):
        state = await backfill(**parameters, return_state=True)  # type: ignore[arg-type]
        assert state.is_failed(), (parameters, state)
        assert state.message is not None and reason in state.message, (parameters, state.message)
    with pg_engine.connect() as conn:
        assert conn.execute(sqltext("SELECT count(*) FROM coverage")).scalar_one() == 0
        assert conn.execute(sqltext("SELECT count(*) FROM trades")).scalar_one() == 0


async def test_a_live_run_whose_join_the_api_refuses_sends_at_the_smallest_share(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Prefect server restarting while a live run needs REST (its catch-up): the join fails with a
    connection error; the request goes at the smallest share (1 / the limit's slots) instead of failing the
    pair, and a later request joins again once the API answers."""
    import httpx

    import tasks.rest_budget as budget

    name = "test-okx-rest-away"
    await ensure_budget_limit(name, 4)
    limiter = process_limiter()
    real = budget.concurrency

    def refused(*_args: object, **_kwargs: object) -> object:
        raise httpx.ConnectError("All connection attempts failed")

    async with rest_budget(limiter, name=name, poll_s=0.2, on_demand=True, linger_s=60.0) as live:
        assert live.demand is not None
        monkeypatch.setattr(budget, "concurrency", refused)
        await limiter.acquire(HISTORY_TRADES)
        assert (live.demand.failed_joins, live.demand.joined, limiter.limit(HISTORY_TRADES)) == (1, False, 4)
        await asyncio.sleep(0.6)  # polls that read the limit (the API answers them): still the smallest share
        assert (live.demand.joined, limiter.limit(HISTORY_TRADES)) == (False, 4)
        monkeypatch.setattr(budget, "concurrency", real)
        monkeypatch.setattr(budget, "JOIN_RETRY_S", 0.0)
        live.demand._unshared_until_s = 0.0  # the retry pause is over
        await limiter.acquire(HISTORY_TRADES)
        assert (live.demand.joins, live.demand.joined, limiter.limit(HISTORY_TRADES)) == (1, True, 18)


async def test_a_backfill_beside_a_live_run_catching_up_shares_the_budget_and_gets_no_429(
    prefect_harness: None, flow_env: Path, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live run that resumes a pair from its first trade (a catch-up of the whole tape from REST) and a
    backfill of another pair's cut tape at the same time, each through its flow: the live run joins the budget
    on demand, both fetch everything, and the simulator (20 requests per 2 s per IP) answers no 429."""
    from flows.live import live_collection

    async with simulator(history_hours=0.3, trade_rate=10.0) as sim:
        for name, url in (
            ("REST", sim.rest_url),
            ("WS_PUBLIC", sim.ws_public_url),
            ("WS_BUSINESS", sim.ws_business_url),
        ):
            monkeypatch.setenv(f"OKX_{name}_URL", url)
        live_tape, backfill_tape = await true_tape(sim, PAIRS[0]), await true_tape(sim, PAIRS[1])
        await store(pg_engine, [live_tape[0], backfill_tape[0], backfill_tape[-1]])
        before = (await sim_stats(sim))["http_429"]
        live_state, rows = await asyncio.gather(
            live_collection(pairs=[PAIRS[0]], max_runtime_s=45.0, summary_interval_s=5.0, return_state=True),
            backfill(pairs=[PAIRS[1]], exchange_candles=False),
        )
        after = (await sim_stats(sim))["http_429"]
        live_now = await true_tape(sim, PAIRS[0])
    assert after - before == 0
    assert live_state.is_completed(), live_state
    assert rows[0]["trades"] == len(backfill_tape) - 2 and rows[0]["failed_chunks"] == 0
    assert stored(pg_engine, PAIRS[1]) == [values(t) for t in backfill_tape]
    live_rows = stored(pg_engine, PAIRS[0])
    assert len(live_rows) > len(live_tape) // 2  # the catch-up went through the tape
    assert live_rows == [values(t) for t in live_now if t.trade_id <= live_rows[-1][0]]
