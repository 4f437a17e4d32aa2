"""The endpoint through reconnects and a database outage: every counter only grows from scrape to scrape,
/metrics keeps answering fast while the writer is stalled, /ready is 503 while the database is away and 200
again after it returns (the database is dropped and created again: the server keeps running); with one pair
down, /ready names that pair only.

Against the simulator over real sockets into a PostgreSQL database of the test's own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from collectors.storage.migrate import upgrade
from collectors.storage.writer_options import WriterOptions
from tests.conftest import _admin_connect
from tests.live.sim_run import FAST, PAIRS, add_fault, simulator, start
from tests.ops.ops_helpers import drop_database, free_port, own_database
from tests.ops.test_metrics_sim import get, ops_config

Series = tuple[str, tuple[tuple[str, str], ...]]


async def _scrape_timed(http: httpx.AsyncClient, port: int) -> tuple[float, dict[Series, float]]:
    started = time.monotonic()
    response = await http.get(f"http://127.0.0.1:{port}/metrics")
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    counters: dict[Series, float] = {}
    for family in text_string_to_metric_families(response.text):
        if family.type == "counter":
            for s in family.samples:
                if s.name.endswith("_total"):
                    counters[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return took, counters


async def test_counters_only_grow_through_reconnects_and_a_database_outage_and_ready_comes_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    options = dataclasses.replace(
        FAST, writer=WriterOptions(flush_interval_s=0.05, retry_initial_s=0.05, retry_max_s=0.5,
                                   spill_dir=tmp_path / "spill", close_timeout_s=5.0)
    )  # fmt: skip
    scrapes: list[tuple[float, float, dict[Series, float]]] = []  # (when, how long, counters)
    with own_database() as (name, db):
        async with simulator(trade_rate=30.0) as sim, httpx.AsyncClient(timeout=10) as http:
            run = start(sim, db, ops_config(port, tmp_path / "spill"), options=options)
            stop_scraping = asyncio.Event()

            async def scraper() -> None:
                while not stop_scraping.is_set():
                    took, counters = await _scrape_timed(http, port)
                    scrapes.append((time.monotonic(), took, counters))
                    await asyncio.sleep(0.3)

            try:
                await run.until(lambda h: h.state == "live")
                scraping = asyncio.create_task(scraper())
                for _ in range(2):
                    await add_fault(sim, {"kind": "drop"})
                    await asyncio.sleep(2.0)
                await run.until(lambda h: h.state == "live" and h.gaps_open == 0, wait_s=30)

                drop_database(name)  # the writer stalls: rows wait (and spill)
                outage_started = time.monotonic()
                await asyncio.sleep(3.0)
                # three scrapes during the outage (asserted below): up to 30 s more when scrapes are slow
                for _ in range(300):
                    if sum(1 for when, _, _ in scrapes if when >= outage_started) >= 3:
                        break
                    assert not scraping.done(), scraping
                    await asyncio.sleep(0.1)
                status, ready = await get(port, "/ready")
                assert status == 503, ready
                assert any(r.startswith("database unreachable:") for r in ready["reasons"]), ready
                assert (await get(port, "/health"))[0] == 200
                with _admin_connect() as admin:
                    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                upgrade(db)
                outage_ended = time.monotonic()
                back_at = None
                for _ in range(60):
                    if (await get(port, "/ready"))[0] == 200:
                        back_at = time.monotonic()
                        break
                    await asyncio.sleep(0.5)
                await asyncio.sleep(1.0)
                # 15 scrapes in all (asserted below): up to 60 s more when scrapes are slow
                for _ in range(600):
                    if len(scrapes) >= 15:
                        break
                    assert not scraping.done(), scraping
                    await asyncio.sleep(0.1)
                stop_scraping.set()
                await scraping
            finally:
                stop_scraping.set()
                await run.stop()

    assert back_at is not None, "/ready never came back to 200 after the database returned"
    during = [took for when, took, _ in scrapes if outage_started <= when <= outage_ended]
    assert len(during) >= 3 and max(during) < 2.0, (
        during
    )  # /metrics answers while the writer is stalled (0.55 s max seen under load)
    assert len(scrapes) >= 15
    for (_, _, earlier), (_, _, later) in itertools.pairwise(scrapes):
        for series, value in earlier.items():
            assert series in later, f"{series} vanished"
            assert later[series] >= value, (series, value, later[series])
    last = scrapes[-1][2]
    reconnects = [v for (n, _), v in last.items() if n == "okx_collector_reconnects_total"]
    assert reconnects and min(reconnects) >= 2, reconnects
    retries = last[("okx_collector_writer_retries_total", ())]
    assert retries >= 1, retries
    assert {
        p
        for (n, labels), _ in last.items()
        if n == "okx_collector_messages_total"
        for k, p in labels
        if k == "pair"
    } == set(PAIRS)


async def test_ready_names_the_one_pair_down_while_the_others_collect(tmp_path: Path) -> None:
    """A pair the exchange does not list (no trade stream comes: the pair stays down) beside two live ones:
    /ready is 503 naming only that pair, /health stays 200, the metrics show each pair's state."""
    from collectors.config import parse_config
    from tests.ops.ops_helpers import scrape, value

    port = free_port()
    config = parse_config(
        {
            "exchanges": {
                "okx": {"channels": ["trades"], "timeframes": ["1m"], "pairs": [*PAIRS, "XRP-USDT"]}
            },
            "live": {"raw_archive": "none"},
            "batching": {"spill_dir": str(tmp_path / "spill")},
            "ops": {"metrics_port": port},
        }
    )
    with own_database() as (_, db):
        async with simulator() as sim:  # lists BTC-USDT and ETH-USDT only
            run = start(sim, db, config)
            try:
                async with asyncio.timeout(30):
                    while not (
                        run.health.get("XRP-USDT") is not None
                        and run.health["XRP-USDT"].state in ("down", "failed")
                        and all(
                            run.health.get(p) is not None and run.health[p].state == "live" for p in PAIRS
                        )
                    ):
                        assert not run.task.done(), run.task
                        await asyncio.sleep(0.1)
                status, ready = await get(port, "/ready")
                health_status = (await get(port, "/health"))[0]
                samples = await scrape(port)
            finally:
                await run.stop()
    assert health_status == 200
    assert status == 503 and len(ready["reasons"]) == 1, ready
    xrp_state = ready["reasons"][0].removeprefix("XRP-USDT: trade stream ").split(" ", 1)[0]
    assert xrp_state in ("down", "failed"), ready
    assert value(samples, "okx_collector_pair_state", pair="XRP-USDT", state=xrp_state) == 1
    for inst in PAIRS:
        assert value(samples, "okx_collector_pair_state", pair=inst, state="live") == 1
