"""What an operator reads of a running collector is true: reconnects, the trade stream's age, a clean stop.

Against the simulator over real sockets into PostgreSQL. Before these fixes: a 4 s stall made several
connections and ``reconnects`` said 1 (it counted outages followed by a trade); the status line showed the
youngest channel's age, so a silent trade stream looked live while books5 flowed; a clean stop showed every
pair ``down`` and logged each connection end (and the planned 64008 switch) as a WARNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from collectors.config import CollectorsConfig, parse_config
from collectors.live.app import LiveOptions, RunResult, run_collectors
from collectors.live.health import PairHealth
from collectors.live.status import status_line
from okx_simulator import SimulatorServer
from tests.live.sim_run import FAST, PAIRS, add_fault, endpoints, live_config, simulator


def trades_and_books() -> CollectorsConfig:
    return parse_config(
        {
            "exchanges": {
                "okx": {"channels": ["trades", "books5"], "timeframes": ["1m"], "pairs": list(PAIRS)}
            },
            "live": {"raw_archive": "none"},
        }
    )


@dataclasses.dataclass
class Collecting:
    """A run stopped through its ``stop`` event (as SIGTERM does in ``collect``), so it returns a RunResult."""

    task: asyncio.Task[RunResult]
    stop: asyncio.Event
    health: dict[str, PairHealth] = dataclasses.field(default_factory=dict)

    async def until(self, ok: Callable[[PairHealth], bool], wait_s: float = 20.0) -> None:
        async with asyncio.timeout(wait_s):
            while not (len(self.health) == len(PAIRS) and all(ok(h) for h in self.health.values())):
                assert not self.task.done(), self.task
                await asyncio.sleep(0.05)

    async def finish(self) -> RunResult:
        self.stop.set()
        return await self.task


@contextlib.asynccontextmanager
async def collecting(
    sim: SimulatorServer, db: Engine, config: CollectorsConfig, options: LiveOptions = FAST
) -> AsyncIterator[Collecting]:
    stop = asyncio.Event()
    holder: list[Collecting] = []

    def report(items: list[PairHealth]) -> None:
        holder[0].health = {h.inst_id: h for h in items}

    task = asyncio.create_task(
        run_collectors(
            config=config, db=db, endpoints=endpoints(sim), options=options, on_status=report, stop=stop
        )
    )
    holder.append(Collecting(task=task, stop=stop))
    try:
        yield holder[0]
    finally:
        if not task.done():
            stop.set()
            with contextlib.suppress(Exception):
                await task


async def sim_stats(sim: SimulatorServer) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{sim.control_url}/stats")
    stats: dict[str, Any] = response.json()
    return stats


async def test_reconnects_count_every_new_connection_even_when_no_trade_came_through_it(
    pg_engine: Engine,
) -> None:
    async with simulator() as sim, collecting(sim, pg_engine, live_config()) as run:  # trades only: /business
        await run.until(lambda h: h.state == "live")
        assert (await sim_stats(sim))["connections_total"] == 1
        await add_fault(sim, {"kind": "stall", "seconds": 4.0})  # each new connection stalls too
        await asyncio.sleep(4.5)
        await run.until(lambda h: h.state == "live")
        # a status report after the last connect (a fixed 0.3 s could read a report older than that connect)
        for _ in range(200):  # at most 20 s; the assertions below say what differed
            connections = (await sim_stats(sim))["connections_total"]
            health = dict(run.health)
            if all(h.reconnects == connections - 1 for h in health.values()):
                break
            await asyncio.sleep(0.1)
        await run.finish()
    assert connections >= 3, connections  # the stall cost several connections
    assert {h.inst_id: h.reconnects for h in health.values()} == {p: connections - 1 for p in PAIRS}
    for h in health.values():
        (trades,) = [c for c in h.channels if c.channel == "trades-all"]
        assert trades.reconnects == connections - 1


def _ages_read(h: PairHealth) -> bool:
    ages = {c.channel: c.last_message_age_ms for c in h.channels}
    books, trades = ages.get("books5"), ages.get("trades-all")
    return books is not None and books < 1_000 and trades is not None and trades >= 2_000


async def test_the_status_line_shows_the_trade_streams_age_not_the_youngest_channels(
    pg_engine: Engine,
) -> None:
    async with simulator() as sim, collecting(sim, pg_engine, trades_and_books()) as run:
        await run.until(lambda h: h.state == "live" and len(h.channels) == 2)
        # books5 flows on. The stall outlasts the look (a 3 s stall and a fixed 2.5 s sleep: a sleep overrunning
        # by 0.5 s on a loaded machine read the trades after the stall); cleared once read
        await add_fault(sim, {"kind": "stall", "seconds": 10.0, "channel": "trades-all"})
        await asyncio.sleep(2.5)
        # a report of 2 s of stall with books5 fresh, at most 5 s on (the stall lasts 10 s)
        for _ in range(50):
            health = dict(run.health)
            if all(_ages_read(h) for h in health.values()):
                break
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.delete(f"{sim.control_url}/faults")).status_code == 200
        await run.finish()
    for inst_id, h in health.items():
        ages = {c.channel: c.last_message_age_ms for c in h.channels}
        assert ages["books5"] is not None and ages["books5"] < 1_000, ages
        assert ages["trades-all"] is not None and ages["trades-all"] >= 2_000, ages
        line = status_line(h)
        age = line.split("trades-all", 1)[1].split()
        assert float(age[1].rstrip("s")) >= 2.0, line  # e.g. "trades-all live 2.4s"
        assert h.trades_channel == "trades-all", inst_id


async def test_a_clean_stop_is_stopped_not_down_and_planned_or_clean_ends_are_not_warnings(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collectors")
    async with simulator() as sim, collecting(sim, pg_engine, trades_and_books()) as run:
        await run.until(lambda h: h.state == "live")
        await add_fault(sim, {"kind": "notice", "seconds": 1.0, "path": "/ws/v5/business"})  # 64008
        await run.until(lambda h: h.reconnects >= 1 and h.state == "live")
        result = await run.finish()
    ws_records = [r for r in caplog.records if r.name.startswith("collectors.exchanges.okx")]
    assert [r.getMessage() for r in ws_records if r.levelno >= logging.WARNING] == []
    messages = [r.getMessage() for r in ws_records]
    assert any("planned reconnect" in m for m in messages), messages
    assert len([m for m in messages if m.endswith("closed (stop)")]) == 2, messages  # public and business
    assert {h.inst_id: h.state for h in result.health} == dict.fromkeys(PAIRS, "stopped")
    assert {c.state for h in result.health for c in h.channels} == {"stopped"}
