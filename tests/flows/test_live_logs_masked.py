"""The ``live-collection`` flow masks the OKX API secrets in every log of its run.

A worker's process has Prefect's handlers (the console and the API handler of the run logger and of the extra
loggers ``collectors`` and ``tasks``, prefect.yaml), never ``okx-collector``'s ``configure_logging``: the flow
installs the secret mask of collectors/logs.py on them. The run below (against the simulator, with the three
secrets in the environment) logs the secrets through a ``collectors.*`` logger and the run logger, in the
message, an argument and a traceback; the run's logs read back from the Prefect API show ``***`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine

from okx_simulator import Credentials
from tests.flows.test_live_flow import live_env  # noqa: F401  (the fixture: config and database)
from tests.live.sim_run import PAIRS, simulator

KEY = "k3y-0f-the-test"
SECRET = 'S3cr3t/with+and%and"quote'
PASSPHRASE = "pass phrase 42"


@pytest.fixture
def collectors_to_api(prefect_harness: None) -> Iterator[None]:
    """``PREFECT_LOGGING_EXTRA_LOGGERS=collectors`` as a worker has it: the ``prefect.extra`` handlers (the
    API handler) on the ``collectors`` logger, the way Prefect's logging setup adds them; removed afterwards."""
    import prefect.main  # noqa: F401  (Prefect's logging setup, as at a worker's start)

    extra = logging.getLogger("prefect.extra").handlers
    assert extra, "Prefect's logging is not set up"
    target = logging.getLogger("collectors")
    added = [h for h in extra if h not in target.handlers]
    for handler in added:
        target.addHandler(handler)
    try:
        yield
    finally:
        for handler in added:
            target.removeHandler(handler)
        _remove_masks()


def _remove_masks() -> None:
    """The process's mask off every handler again: later tests of the session see their records as logged."""
    from collectors.logs import SecretMask

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            for mask in [f for f in handler.filters if isinstance(f, SecretMask)]:
                handler.removeFilter(mask)


async def test_no_secret_reaches_the_runs_logs(
    live_env: Path,  # noqa: F811
    pg_engine: Engine,
    collectors_to_api: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect import get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    import tasks.live
    from collectors.logs import SecretMask
    from flows.live import live_collection

    real_run_collectors = tasks.live.run_collectors

    async def leaky_run_collectors(**kwargs: Any) -> Any:
        # the kind of line the net is for: a library logger showing a credential (in its message, an
        # argument, a traceback), in the collectors' thread of the run
        library = logging.getLogger("collectors.exchanges.okx.rest")
        library.warning(f"signing with key {KEY}")
        library.warning("login %s", {"apiKey": KEY, "passphrase": PASSPHRASE, "secret": SECRET})
        try:
            raise ValueError(f"refused secret {quote(SECRET, safe='')}")
        except ValueError:
            library.exception("login failed")
        get_run_logger().warning("run logger: %s %s", KEY, SECRET)
        return await real_run_collectors(**kwargs)

    monkeypatch.setattr(tasks.live, "run_collectors", leaky_run_collectors)
    monkeypatch.setenv("OKX_API_KEY", KEY)
    monkeypatch.setenv("OKX_API_SECRET", SECRET)
    monkeypatch.setenv("OKX_API_PASSPHRASE", PASSPHRASE)
    console = [h for h in logging.getLogger().handlers]
    formats = [h.formatter for h in console]
    # the simulator accepts these credentials: the collectors really log in with them
    async with simulator(
        trade_rate=20.0, credentials=Credentials(api_key=KEY, secret_key=SECRET, passphrase=PASSPHRASE)
    ) as sim:
        monkeypatch.setenv("OKX_REST_URL", sim.rest_url)
        monkeypatch.setenv("OKX_WS_PUBLIC_URL", sim.ws_public_url)
        monkeypatch.setenv("OKX_WS_BUSINESS_URL", sim.ws_business_url)
        state = await live_collection(
            pairs=[PAIRS[0]], max_runtime_s=2.0, summary_interval_s=1.0, budget_limit="", return_state=True
        )
        # a second run in the same process: the mask is installed once
        again = await live_collection(
            pairs=[PAIRS[0]], max_runtime_s=1.0, summary_interval_s=1.0, budget_limit="", return_state=True
        )
    assert state.is_completed() and again.is_completed(), (state, again)
    run_ids = [state.state_details.flow_run_id, again.state_details.flow_run_id]
    async with get_client() as client:
        logs = []
        for _ in range(50):  # the API handler ships in batches
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids)))
            if sum("login failed" in log.message for log in logs) == 2:
                break
            await asyncio.sleep(0.2)
    messages = [log.message for log in logs]
    text = "\n".join(messages)
    for secret in (KEY, SECRET, PASSPHRASE):
        for disguise in (secret, quote(secret, safe=""), repr(secret)[1:-1]):
            assert disguise not in text, disguise
    per_run = [m for m in messages if m.startswith("signing with key ")]
    assert per_run == ["signing with key ***"] * 2, per_run
    assert [m for m in messages if m.startswith("run logger: ")] == ["run logger: *** ***"] * 2
    assert "{'apiKey': '***', 'passphrase': '***', 'secret': '***'}" in text
    failed = [m for m in messages if m.startswith("login failed")]
    assert len(failed) == 2 and all("ValueError: refused secret ***" in m for m in failed), failed
    # the filter sits once on each handler Prefect uses; Prefect's own format is untouched
    api_handlers = logging.getLogger("prefect.flow_runs").handlers + logging.getLogger("collectors").handlers
    for handler in api_handlers + console:
        masks = [f for f in handler.filters if isinstance(f, SecretMask)]
        assert len(masks) == 1, (handler, handler.filters)
    assert [h.formatter for h in logging.getLogger().handlers] == formats
