"""A WebSocket endpoint failing for good (close 4001) stops the pairs that need it; the others go on; when
nothing is left the run ends non-zero. Simulator over real sockets, PostgreSQL.

Before: the first fatal close code of either endpoint ended the whole run (every pair, every endpoint) with an
ExceptionGroup out of the manager's task group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.config import parse_config
from collectors.errors import ApiError
from collectors.storage.engine import make_engine
from collectors.storage.schema import BookSnapshotRow
from tests.live.sim_run import PAIRS, SIM, add_fault, simulator, stored, true_tape, values
from tests.live.test_ops_health import collecting

REPO = Path(__file__).resolve().parents[2]
BTC, ETH = PAIRS


def books_after(db: Engine, inst_id: str, after_ms: int) -> int:
    with Session(db) as session:
        query = select(func.count()).where(
            BookSnapshotRow.inst_id == inst_id, BookSnapshotRow.recv_time > after_ms
        )
        return int(session.scalar(query) or 0)


async def test_a_dead_endpoint_stops_only_the_pairs_that_need_it_and_a_dead_run_ends_with_the_error(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collectors")
    config = parse_config(
        {
            "exchanges": {
                "okx": {
                    "timeframes": ["1m"],
                    "pairs": [
                        {"inst_id": BTC, "channels": ["trades", "books5"]},  # trades on /business
                        {"inst_id": ETH, "channels": ["books5"]},  # /public only
                    ],
                }
            },
            "live": {"raw_archive": "none", "book_snapshot_interval_ms": 0},
        }
    )
    async with simulator() as sim, collecting(sim, pg_engine, config) as run:
        await run.until(lambda h: all(c.state == "live" for c in h.channels) and bool(h.channels))
        await add_fault(
            sim, {"kind": "close", "code": 4001, "reason": "Login failed", "path": "/ws/v5/business"}
        )
        await run.until(lambda h: h.inst_id != BTC or h.state == "failed")
        failed_ms = time.time_ns() // 1_000_000
        await asyncio.sleep(1.0)
        # ETH stores a book after BTC failed: up to 20 s in all (a fixed 1 s could pass on a loaded machine)
        for _ in range(190):
            if books_after(pg_engine, ETH, failed_ms) > 0:
                break
            assert not run.task.done()
            await asyncio.sleep(0.1)
        health = dict(run.health)
        assert not run.task.done()  # ETH goes on
        assert books_after(pg_engine, ETH, failed_ms) > 0
        await add_fault(
            sim, {"kind": "close", "code": 4001, "reason": "Login failed", "path": "/ws/v5/public"}
        )
        with pytest.raises(ApiError, match="4001"):
            async with asyncio.timeout(10):
                await run.task
        tape = await true_tape(sim, BTC)
    btc, eth = health[BTC], health[ETH]
    assert btc.error is not None and "business" in btc.error and "4001" in btc.error
    assert {c.channel: c.state for c in btc.channels} == {"trades-all": "failed", "books5": "stopped"}
    assert (eth.state, eth.error, [(c.channel, c.state) for c in eth.channels]) == (
        "live",
        None,
        [("books5", "live")],
    )
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith("collectors")
    ]
    stops = [m for m in errors if "failed for good" in m]
    assert len(stops) == 2, errors
    assert "business" in stops[0] and f"pairs stopped (their trade stream used it): {BTC}" in stops[0]
    assert "public" in stops[1] and "pairs stopped (their trade stream used it): none" in stops[1], stops[1]
    assert f"{ETH} books5" in stops[1]
    rows = stored(pg_engine, BTC)  # what was collected before the end is exact
    assert rows and rows == [values(t) for t in tape if rows[0][0] <= t.trade_id <= rows[-1][0]]


async def test_collect_exits_non_zero_when_its_only_endpoint_fails_for_good(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'collect.db'}"
    env = {**os.environ, "DATABASE_URL": url}
    upgrade = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flows.cli", "db", "upgrade", cwd=REPO, env=env
    )
    assert await upgrade.wait() == 0
    config = tmp_path / "collectors.yaml"
    config.write_text(
        "exchanges:\n  okx:\n    channels: [trades]\n    timeframes: [1m]\n    pairs: [BTC-USDT, ETH-USDT]\n"
        f"batching:\n  spill_dir: {tmp_path / 'spill'}\n"
    )
    engine = make_engine(url)
    async with simulator(**SIM) as sim:
        env |= {
            "COLLECTOR_CONFIG": str(config),
            "OKX_REST_URL": sim.rest_url,
            "OKX_WS_PUBLIC_URL": sim.ws_public_url,
            "OKX_WS_BUSINESS_URL": sim.ws_business_url,
        }
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flows.cli", "collect", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            for _ in range(200):  # until both pairs have stored trades (at most 20 s)
                if all(stored(engine, p) for p in PAIRS):
                    break
                await asyncio.sleep(0.1)
            await add_fault(sim, {"kind": "close", "code": 4001, "reason": "Login failed"})
            async with asyncio.timeout(30):
                out, err = await child.communicate()
        finally:
            if child.returncode is None:
                child.send_signal(signal.SIGKILL)
                await child.wait()
    engine.dispose()
    text, errors = out.decode(), err.decode()
    assert child.returncode == 1, text + errors
    assert "ApiError" in errors and "4001" in errors and "Traceback" not in errors, errors
    rows = [line.split() for line in text.split("collector ended by an error", 1)[1].splitlines()]
    summary = {row[0]: row for row in rows if len(row) == 10}  # the table's rows (10 columns)
    assert summary[BTC][1] == summary[ETH][1] == "failed", text
    assert f"{BTC} failed: business WebSocket failed for good: WebSocket closed: 4001" in text
