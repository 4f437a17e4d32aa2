"""The live-collection flow's adapter (``tasks.live.collect_live``, what the Prefect flow runs in its thread)
serves the same endpoint as ``collect``, on the port its settings name (``COLLECTOR_METRICS_PORT``)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from collectors.live.health import PairHealth
from collectors.settings import load_settings
from tasks.live import collect_live
from tests.live.sim_run import FAST, PAIRS, simulator
from tests.ops.ops_helpers import free_port, own_database, scrape, value, write_config


async def test_the_live_flows_collectors_serve_metrics_on_the_settings_port(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "c.json", PAIRS)  # the file says nothing: the environment names the port
    latest: dict[str, PairHealth] = {}
    with own_database() as (_, db):
        async with simulator() as sim:
            settings = load_settings(
                database_url=db.url.render_as_string(hide_password=False),
                okx_rest_url=sim.rest_url, okx_ws_public_url=sim.ws_public_url,
                okx_ws_business_url=sim.ws_business_url, collector_config=config, collector_metrics_port=port,
            )  # fmt: skip
            stop = asyncio.Event()
            run = asyncio.create_task(
                collect_live(
                    settings=settings,
                    pairs=None,
                    channels=None,
                    max_runtime_s=None,
                    stop=stop,
                    on_status=lambda items: latest.update({h.inst_id: h for h in items}),
                    options=FAST,
                    collector_id="flow-run",
                )
            )
            try:
                async with asyncio.timeout(20):
                    while not (len(latest) == len(PAIRS) and all(h.state == "live" for h in latest.values())):
                        assert not run.done(), run
                        await asyncio.sleep(0.05)
                samples = await scrape(port)
            finally:
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    result = await run
    assert value(samples, "okx_collector_info", collector_id="flow-run") == 1
    for inst in PAIRS:
        assert value(samples, "okx_collector_pair_state", pair=inst, state="live") == 1
        scraped = value(samples, "okx_collector_trades_stored_total", pair=inst, channel="trades-all")
        final = next(h for h in result.health if h.inst_id == inst).trades_stored
        assert 0 < scraped <= final
