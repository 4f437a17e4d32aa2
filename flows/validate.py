"""The ``validate`` flow: the completeness check of the configured pairs, hourly by default and ad hoc.

One task per pair (:func:`tasks.validate.validate_pair_task`), then the run is recorded (``validation_runs`` +
``validation_findings``) and published as a table artifact and a markdown summary per pair. The run ends
``Failed`` when the findings exceed ``tolerance``; the UI shows it red and keeps each pair's artifacts history.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Failed

from collectors.config import load_config
from collectors.errors import ConfigError
from collectors.logs import install_mask, settings_secrets
from collectors.quality.findings import DEFAULT_MAX_STALENESS_S, DEFAULT_TOLERANCE, iso
from collectors.quality.plan import pair_checks, parse_instant, validation_range
from collectors.quality.runs import RunRecord, new_run_id
from collectors.settings import load_settings
from tasks.validate import publish_run, record_run_task, validate_pair_task

__all__ = ["validate"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@flow(name="validate", log_prints=False)
async def validate(
    pairs: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    lookback_minutes: int = 60,
    tolerance: int = DEFAULT_TOLERANCE,
    max_staleness_s: float = DEFAULT_MAX_STALENESS_S,
) -> dict[str, Any] | State[Any]:
    """Check completeness and candles of pairs over a range; Failed when findings exceed the tolerance.

    Args:
        pairs: instIds to check; empty or null for every pair of the collectors config.
        start: ISO 8601 start (UTC unless an offset is given); null for `lookback_minutes` before the end.
        end: ISO 8601 end; null for the start of the current minute, and then live stream freshness is checked.
        lookback_minutes: length of the range when `start` is null (an hourly schedule checks the last hour).
        tolerance: findings allowed before the run fails (0: any finding fails it).
        max_staleness_s: seconds after which a live stream without new rows is a finding.
    """
    log = get_run_logger()
    if tolerance < 0:
        raise ConfigError(f"tolerance must be 0 or more findings, got {tolerance}")
    now = _now_ms()
    start_ms, end_ms = validation_range(
        now,
        start_ms=parse_instant(start) if start else None,
        end_ms=parse_instant(end) if end else None,
        lookback_ms=lookback_minutes * 60_000,
    )
    settings = load_settings()
    # a worker's handlers are Prefect's, not configure_logging's: mask the OKX secrets in them too
    install_mask(settings_secrets(settings))
    config = load_config(settings.collector_config)
    checks = pair_checks(
        config, pairs=pairs or None, start_ms=start_ms, end_ms=end_ms, now_ms=now,
        freshness=end is None, max_staleness_s=max_staleness_s,
    )  # fmt: skip
    results = await asyncio.gather(*(validate_pair_task(check) for check in checks))
    run = RunRecord(
        run_id=new_run_id(), exchange=checks[0].exchange, pairs=tuple(c.inst_id for c in checks),
        start_ms=start_ms, end_ms=end_ms, started_ms=now, finished_ms=_now_ms(),
        findings=tuple(f for found in results for f in found), tolerance=tolerance,
    )  # fmt: skip
    await record_run_task(run)
    await publish_run(run)
    message = (
        f"validation {run.run_id} {iso(start_ms)} .. {iso(end_ms)}: {len(run.findings)} findings over "
        f"{len(run.pairs)} pairs, tolerance {tolerance}: {run.status}"
    )
    log.info(message)
    summary = {
        "run_id": run.run_id,
        "status": run.status,
        "findings": len(run.findings),
        "pairs": list(run.pairs),
    }
    if run.failed:
        return Failed(message=message, data=summary)
    return summary
