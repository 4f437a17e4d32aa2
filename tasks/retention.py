"""Prefect task of the ``retention`` flow: purge one archive table in short batches.

A thin adapter over :func:`collectors.storage.retention.purge_batch` on the settings' database: batches of
``batch_rows`` rows, each its own transaction, with a pause between them so the collectors' writes get the
database in between (on SQLite the one write lock; on PostgreSQL short row locks and WAL bursts). Retried only
when the error can pass; a retry resumes where the purge stopped (the deleted rows are gone).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from collectors.settings import load_settings
from collectors.storage.engine import make_engine
from collectors.storage.retention import purge_batch
from tasks.retry import retryable

__all__ = ["purge_table_task"]


@task(
    name="purge-table",
    task_run_name="purge-{table}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=retryable,
)
async def purge_table_task(*, table: str, cutoff_ms: int, batch_rows: int, pause_s: float) -> dict[str, Any]:
    """Delete every row of ``table`` older than ``cutoff_ms``, ``batch_rows`` per transaction; returns
    ``{"table", "deleted", "batches", "seconds"}``."""
    engine = make_engine(load_settings().database_url, create=False)
    started = time.monotonic()
    deleted = batches = 0
    try:
        while True:
            n = await asyncio.to_thread(purge_batch, engine, table, cutoff_ms=cutoff_ms, limit=batch_rows)
            deleted, batches = deleted + n, batches + 1
            if n < batch_rows:
                break
            await asyncio.sleep(pause_s)
    finally:
        engine.dispose()
    return {
        "table": table,
        "deleted": deleted,
        "batches": batches,
        "seconds": round(time.monotonic() - started, 3),
    }
