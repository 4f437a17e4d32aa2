"""The ``retention`` flow: delete expired archive rows (the config's ``retention`` section) in batches.

The same rule as ``okx-collector db purge`` (:mod:`collectors.storage.retention`: archive tables only; trades,
candles and the coverage ledger are kept forever), run as one task per table that deletes ``batch_rows`` rows
per transaction and pauses between batches, so a large backlog never blocks the collectors' writers.
Scheduled daily in prefect.yaml.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from collectors.config import load_config
from collectors.errors import ConfigError
from collectors.settings import load_settings
from collectors.storage.retention import DEFAULT_BATCH_ROWS, DEFAULT_PAUSE_S, cutoffs
from tasks.retention import purge_table_task

__all__ = ["retention"]


@flow(name="retention", log_prints=False)
async def retention(
    batch_rows: int = DEFAULT_BATCH_ROWS, pause_s: float = DEFAULT_PAUSE_S
) -> list[dict[str, Any]]:
    """Delete archive rows older than the collectors config's retention, in short batches.

    Args:
        batch_rows: rows deleted per transaction (each batch is one short transaction).
        pause_s: seconds between two batches of one table, so collectors' writes get in between.
    """
    if batch_rows <= 0 or pause_s < 0:
        raise ConfigError(f"batch_rows must be above 0 and pause_s at least 0, got {batch_rows}, {pause_s}")
    settings = load_settings()
    config = load_config(settings.collector_config)
    rows: list[dict[str, Any]] = []
    for table, cutoff_ms in cutoffs(config.retention, now_ms=time.time_ns() // 1_000_000).items():
        if cutoff_ms is None:
            rows.append(
                {"table": table, "deleted": 0, "batches": 0, "seconds": 0.0, "deleted_before": "never"}
            )
            continue
        result = await purge_table_task(
            table=table, cutoff_ms=cutoff_ms, batch_rows=batch_rows, pause_s=pause_s
        )
        rows.append({**result, "deleted_before": datetime.fromtimestamp(cutoff_ms / 1000, UTC).isoformat()})
    get_run_logger().info(
        "retention: %s",
        ", ".join(f"{r['table']} {r['deleted']} rows in {r['batches']} batches" for r in rows),
    )
    await acreate_table_artifact(
        key="retention",
        table=rows,
        description=f"# retention\n{sum(r['deleted'] for r in rows)} archive rows deleted",
    )
    return rows
