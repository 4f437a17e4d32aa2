"""Helpers of the live-sim tests: a collector run against an in-process simulator, and the truth to compare with.

Timings are shortened through constructor arguments (``FAST``); the checks compare values with ``/sim/tape``,
``/sim/faults/log`` and the candle engine run on the true tape, never durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.backoff import backoff
from collectors.candles import reaggregate_trades
from collectors.config import CollectorsConfig, parse_config
from collectors.exchanges.okx.rows import build_trade
from collectors.live.app import Endpoints, LiveOptions, RunResult, run_collectors
from collectors.live.core import CoreSettings
from collectors.live.health import PairHealth
from collectors.model import Trade
from collectors.storage.schema import BookSnapshotRow, CandleRow, RejectedMessageRow, TradeRow
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter
from collectors.storage.writer_options import WriterOptions
from okx_simulator import SimulatorConfig, SimulatorServer

PAIRS = ("BTC-USDT", "ETH-USDT")
SIM = {"tick_ms": 20, "history_hours": 0.1, "candle_push_ms": 200, "quiet_prob": 0.0, "trade_rate": 5.0}
RESUME_AGO_MS = 130_000  # the pre-stored trade: a restart catch-up of 130 s, so at least one complete minute


def short_backoff() -> Iterator[float]:
    return backoff(initial_s=0.02, max_s=0.2, jitter=0.1)


FAST = LiveOptions(
    ping_after_s=0.5,
    pong_timeout_s=0.5,
    ack_timeout_s=2.0,
    ws_backoff=short_backoff,
    rest_backoff=short_backoff,
    rest_timeout_s=3.0,
    rest_attempts=4,
    tick_s=0.05,
    status_interval_s=0.05,
    core=CoreSettings(reorder_window_ms=1_500, poll_after_ms=1_000, poll_interval_ms=300, fill_retry_ms=200),
    writer=WriterOptions(flush_interval_s=0.05, retry_initial_s=0.05, retry_max_s=0.2),
)


def live_config(pairs: Sequence[str] = PAIRS, *, books: bool = False) -> CollectorsConfig:
    return parse_config(
        {
            "exchanges": {"okx": {"channels": ["trades"], "timeframes": ["1m"], "pairs": list(pairs)}},
            "live": {"raw_archive": "none", "full_depth_book": books, "full_depth_levels": 5},
        }
    )


def endpoints(sim: SimulatorServer) -> Endpoints:
    return Endpoints(
        rest_url=sim.rest_url, ws_public_url=sim.ws_public_url, ws_business_url=sim.ws_business_url
    )


@contextlib.asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(config=SimulatorConfig(seed=7, pairs=list(PAIRS), **{**SIM, **config})) as sim:
        yield sim


async def true_tape(sim: SimulatorServer, inst_id: str) -> list[Trade]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sim.control_url}/tape", params={"instId": inst_id})
    rows = [json.loads(line) for line in response.text.splitlines() if line]
    return [build_trade(row, inst_id, int(row["ts"]), 1)[0] for row in rows]


async def add_fault(sim: SimulatorServer, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{sim.control_url}/faults", json=body)
    assert response.status_code == 200, response.text


async def fault_log(sim: SimulatorServer) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sim.control_url}/faults/log")
    log: list[dict[str, Any]] = response.json()
    return log


async def store_resume_points(sim: SimulatorServer, db: Engine, now_ms: int) -> dict[str, Trade]:
    """Store, per pair, the last true trade at least ``RESUME_AGO_MS`` old: the collector restarts from it."""
    points: dict[str, Trade] = {}
    for inst_id in PAIRS:
        tape = await true_tape(sim, inst_id)
        points[inst_id] = [t for t in tape if t.ts_ms <= now_ms - RESUME_AGO_MS][-1]
    async with BatchWriter(open_sink(db)) as writer:
        await writer.put_many(points.values())
    return points


@dataclass
class Run:
    """A collector run in a task; ``health`` is the latest status report."""

    task: asyncio.Task[RunResult]
    health: dict[str, PairHealth] = field(default_factory=dict)

    def on_status(self, items: list[PairHealth]) -> None:
        self.health = {h.inst_id: h for h in items}

    async def until(self, ok: Any, wait_s: float = 20.0) -> None:
        async with asyncio.timeout(wait_s):
            while not (len(self.health) == len(PAIRS) and all(ok(h) for h in self.health.values())):
                assert not self.task.done(), self.task
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Cancel as SIGTERM does; the run flushes everything before the cancellation ends it."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def start(
    sim: SimulatorServer,
    db: Engine,
    config: CollectorsConfig,
    collector_id: str = "t",
    options: LiveOptions = FAST,
) -> Run:
    holder: list[Run] = []

    def report(items: list[PairHealth]) -> None:
        holder[0].on_status(items)

    task = asyncio.create_task(
        run_collectors(
            config=config,
            db=db,
            endpoints=endpoints(sim),
            options=options,
            collector_id=collector_id,
            on_status=report,
        )
    )
    holder.append(Run(task=task))
    return holder[0]


def caught_up_to(ids: dict[str, int], *, live: bool = True) -> Any:
    """Every pair past ``ids`` with no open gap (and its stream live, unless ``live`` is False)."""
    return lambda h: (
        (h.state == "live" or not live) and h.gaps_open == 0 and (h.frontier_id or 0) >= ids[h.inst_id]
    )


def stored(db: Engine, inst_id: str) -> list[tuple[int, int, str, str, str]]:
    with Session(db) as session:
        rows = session.scalars(
            select(TradeRow).where(TradeRow.inst_id == inst_id).order_by(TradeRow.trade_id)
        )
        return [(r.trade_id, r.ts, str(r.price), str(r.size), r.side) for r in rows]


def values(t: Trade) -> tuple[int, int, str, str, str]:
    return (t.trade_id, t.ts_ms, str(t.price), str(t.size), t.side.value)


def rejected_payloads(db: Engine) -> list[str]:
    with Session(db) as session:
        rows = session.scalars(
            select(RejectedMessageRow).where(
                RejectedMessageRow.channel.is_(None) | (RejectedMessageRow.channel != "history-trades")
            )
        )
        return sorted(r.payload for r in rows)


_CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trade_count", "buy_volume")


def stored_minutes(db: Engine, inst_id: str, first_ms: int, end_ms: int) -> list[tuple[object, ...]]:
    with Session(db) as session:
        rows = session.scalars(
            select(CandleRow)
            .where(CandleRow.inst_id == inst_id, CandleRow.timeframe == "1m")
            .where(CandleRow.open_time >= first_ms, CandleRow.open_time < end_ms)
            .order_by(CandleRow.open_time)
        )
        return [(r.open_time, *(getattr(r, f) for f in _CANDLE_FIELDS)) for r in rows]


def true_minutes(tape: list[Trade], inst_id: str, first_ms: int, end_ms: int) -> list[tuple[object, ...]]:
    candles = reaggregate_trades(
        tape, exchange="okx", inst_id=inst_id, timeframes=["1m"], complete_range=(first_ms, end_ms)
    )["1m"]
    return [(c.open_time_ms, *(getattr(c, f) for f in _CANDLE_FIELDS)) for c in candles]


def book_snapshots_after(db: Engine, inst_id: str, after_ms: int) -> int:
    """Full-depth book snapshots (depth 5 here; books5 is not subscribed) stored after ``after_ms``."""
    with Session(db) as session:
        query = select(func.count()).where(
            BookSnapshotRow.inst_id == inst_id, BookSnapshotRow.recv_time > after_ms
        )
        return int(session.scalar(query) or 0)
