"""The metrics endpoint tells what happened: a collector scraped during a simulator run with a malformed burst,
a 429 window and a drop, its values checked against ``/sim/faults/log``, ``/sim/stats`` and the rows stored;
``/ready`` goes 503 when the collector's database is dropped (the server keeps running).

Against the simulator over real sockets into a PostgreSQL database of the test's own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from collectors.config import CollectorsConfig, parse_config
from collectors.storage.schema import CandleRow, CoverageRow, TradeRow
from collectors.storage.writer_options import WriterOptions
from okx_simulator import SimulatorServer
from tests.live.sim_run import FAST, PAIRS, add_fault, fault_log, simulator, start
from tests.ops.ops_helpers import drop_database, free_port, own_database, scrape, total, value


def ops_config(port: int, spill: Path) -> CollectorsConfig:
    return parse_config(
        {
            "exchanges": {"okx": {"channels": ["trades"], "timeframes": ["1m"], "pairs": list(PAIRS)}},
            "live": {"raw_archive": "none"},
            "batching": {"spill_dir": str(spill)},
            "ops": {"metrics_port": port},
        }
    )


async def get(port: int, path: str) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(f"http://127.0.0.1:{port}{path}")
    return response.status_code, response.json()


async def sim_stats(sim: SimulatorServer) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=10) as http:
        stats: dict[str, int] = (await http.get(f"{sim.control_url}/stats")).json()
    return stats


def db_counts(db: Engine, inst_id: str) -> dict[str, int]:
    with db.connect() as conn:
        trades = conn.scalar(select(func.count()).select_from(TradeRow).where(TradeRow.inst_id == inst_id))
        spans = conn.execute(
            select(CoverageRow.status, CoverageRow.reason).where(CoverageRow.inst_id == inst_id)
        ).all()
        revisions = conn.scalar(
            select(func.coalesce(func.sum(CandleRow.revision), 0)).where(CandleRow.inst_id == inst_id)
        )
    return {
        "trades": int(trades or 0),
        "gap": sum(1 for s, _ in spans if s == "gap"),
        "filled": sum(1 for s, r in spans if s == "backfilled" and (r or "").startswith("trade ids")),
        "unrecoverable": sum(1 for s, _ in spans if s == "unrecoverable"),
        "revisions": int(revisions or 0),
    }


async def test_a_scrape_during_a_faulted_run_matches_the_faults_and_the_rows(tmp_path: Path) -> None:
    port = free_port()
    options = dataclasses.replace(
        FAST, writer=WriterOptions(flush_interval_s=0.05, retry_initial_s=0.05, retry_max_s=0.2,
                                   spill_dir=tmp_path / "spill", close_timeout_s=2.0)
    )  # fmt: skip
    with own_database() as (name, db):
        async with simulator(trade_rate=30.0) as sim:  # busy streams: a lost trade is a hole, not a poll's
            run = start(sim, db, ops_config(port, tmp_path / "spill"), options=options)
            try:
                await run.until(lambda h: h.state == "live")
                assert await get(port, "/ready") == (200, {"ready": True, "reasons": []})
                status, health = await get(port, "/health")
                assert status == 200 and health["status"] == "ok" and health["collector_id"] == "t"
                trade_faults = {"channel": "trades-all", "variants": ["unknown_side", "negative_price"]}
                await add_fault(sim, {"kind": "malformed", "rate": 0.5, "seconds": 1.5, **trade_faults})
                await asyncio.sleep(2.0)
                # the drop's hole is asked of REST once the reorder window (1.5 s) has passed: into the 429s
                await add_fault(sim, {"kind": "rest_429", "seconds": 3.0})
                await add_fault(sim, {"kind": "drop"})
                await asyncio.sleep(3.0)
                await run.until(lambda h: h.state == "live" and h.gaps_open == 0, wait_s=30)
                await asyncio.sleep(0.5)
                before = {p: db_counts(db, p) for p in PAIRS}
                stats_before = await sim_stats(sim)
                samples = await scrape(port)
                stats_after = await sim_stats(sim)
                await asyncio.sleep(1.0)
                after = {p: db_counts(db, p) for p in PAIRS}
                malformed = await fault_log(sim)

                # the database goes away (dropped, the server keeps running): not ready, with the reason
                drop_database(name)
                status, ready = await get(port, "/ready")
                assert status == 503 and ready["ready"] is False, ready
                assert any(r.startswith("database unreachable:") for r in ready["reasons"]), ready
                assert (await get(port, "/health"))[0] == 200  # the process and its loop are fine
            finally:
                await run.stop()

    assert value(samples, "okx_collector_info", collector_id="t") == 1
    reconnects = stats_after["connections_total"] - 1
    assert reconnects >= 1
    for inst in PAIRS:
        assert value(samples, "okx_collector_pair_state", pair=inst, state="live") == 1
        assert value(samples, "okx_collector_reconnects_total", pair=inst) == reconnects
        sent_bad = sum(1 for e in malformed if e["instId"] == inst)
        assert sent_bad >= 1, malformed
        assert value(samples, "okx_collector_rejected_total", pair=inst) == sent_bad
        assert (
            value(samples, "okx_collector_channel_rejected_total", pair=inst, channel="trades-all")
            == sent_bad
        )
        stored = value(samples, "okx_collector_trades_stored_total", pair=inst, channel="trades-all")
        assert before[inst]["trades"] <= stored <= after[inst]["trades"], (before, stored, after)
        messages = value(samples, "okx_collector_messages_total", pair=inst, channel="trades-all")
        assert messages > sent_bad
        # a malformed trade frame leaves a hole, unless a REST poll of a quiet stream brought its trade first
        found = value(samples, "okx_collector_gaps_found_total", pair=inst)
        assert found == after[inst]["gap"]
        assert value(samples, "okx_collector_gaps_filled_total", pair=inst) == after[inst]["filled"]
        assert (
            value(samples, "okx_collector_gaps_unrecoverable_total", pair=inst)
            == after[inst]["unrecoverable"]
        )
        assert value(samples, "okx_collector_gaps_open", pair=inst) == 0
        # the engine counts every revising event (one per late trade); the database adds one to a closed candle's
        # revision per write that changes it, and one batch writes a candle revised several times once
        assert before[inst]["revisions"] <= value(samples, "okx_collector_candle_revisions_total", pair=inst)
        age = value(samples, "okx_collector_last_message_age_seconds", pair=inst, channel="trades-all")
        assert 0 <= age < 5
    assert total(samples, "okx_collector_gaps_found_total") >= 1
    # every REST attempt reached the simulator; every 429 it sent was counted (per endpoint, summed)
    assert (
        stats_before["requests"]
        <= total(samples, "okx_collector_rest_requests_total")
        <= stats_after["requests"]
    )
    assert stats_after["http_429"] >= 1
    assert total(samples, "okx_collector_rest_rate_limited_total") == stats_after["http_429"]
    assert value(samples, "okx_collector_writer_healthy") == 1
    assert value(samples, "okx_collector_writer_queue_rows") >= 0
    assert 0 <= value(samples, "okx_collector_writer_lag_seconds") < 5
