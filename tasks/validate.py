"""Prefect tasks of the ``validate`` flow: one task per pair, one to record the run, and its artifacts.

Thin adapters over :mod:`collectors.quality`; each task opens the settings' database (``DATABASE_URL``) and runs
the blocking check in a thread. A task is retried only when its error can pass (a transient
:class:`~collectors.errors.StorageError`: the database restarting). Artifacts: per pair a table of its findings
(key ``validation-<pair>``) and a markdown summary (key ``validation-summary-<pair>``), so the UI keeps each
pair's history.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from collectors.quality.findings import Finding, iso
from collectors.quality.runs import RunRecord, by_pair, record_run
from collectors.quality.validate import PairCheck, validate_pair
from collectors.settings import load_settings
from collectors.storage.engine import make_engine
from tasks.retry import retryable

__all__ = ["artifact_key", "database", "publish_run", "record_run_task", "validate_pair_task"]

_TABLE_ROWS = 200  # findings shown per pair in its table artifact (all of them are in validation_findings)


@contextmanager
def database() -> Iterator[Engine]:
    """An engine on the settings' database, disposed afterwards."""
    engine = make_engine(load_settings().database_url, create=False)
    try:
        yield engine
    finally:
        engine.dispose()


@task(
    name="validate-pair",
    task_run_name="validate-{check.inst_id}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retryable,
)
async def validate_pair_task(check: PairCheck) -> list[Finding]:
    """Every finding of one pair over the check's range."""
    with database() as engine:
        return await asyncio.to_thread(validate_pair, engine, check)


@task(
    name="validate-record",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retryable,
)
async def record_run_task(run: RunRecord) -> None:
    """Store the run in ``validation_runs`` and its findings in ``validation_findings``."""
    with database() as engine:
        await asyncio.to_thread(record_run, engine, run)


def artifact_key(prefix: str, pair: str) -> str:
    """``validation``, ``BTC-USDT`` -> ``validation-btc-usdt`` (Prefect keys: lowercase letters, digits, dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{pair}".lower()).strip("-")


async def publish_run(run: RunRecord) -> None:
    """A table artifact and a markdown summary per pair of ``run``."""
    for pair, findings in by_pair(run.findings, run.pairs).items():
        rows = [f.to_json() for f in findings[:_TABLE_ROWS]]
        kinds: dict[str, int] = {}
        for f in findings:
            kinds[f.kind.value] = kinds.get(f.kind.value, 0) + 1
        summary = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "none"
        await acreate_table_artifact(
            table=rows
            or [{"pair": pair, "kind": "none", "start": iso(run.start_ms), "end": iso(run.end_ms)}],
            key=artifact_key("validation", pair),
            description=f"{pair}: {len(findings)} findings, run {run.run_id}",
        )
        await acreate_markdown_artifact(
            markdown=_markdown(run, pair, findings, summary), key=artifact_key("validation-summary", pair)
        )


def _markdown(run: RunRecord, pair: str, findings: list[Finding], summary: str) -> str:
    lines = [
        f"# Validation of {pair}",
        "",
        f"Range {iso(run.start_ms)} .. {iso(run.end_ms)}, run `{run.run_id}`: **{run.status}** "
        f"({len(run.findings)} findings over all pairs, tolerance {run.tolerance}).",
        "",
        f"Findings of {pair}: {len(findings)} ({summary}).",
    ]
    if findings:
        lines += ["", "| kind | start | end | timeframe | field | detail |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {f.kind.value} | {iso(f.start_ms)} | {iso(f.end_ms)} | {f.timeframe or ''} | {f.field or ''} | "
            f"{f.detail} |"
            for f in findings[:_TABLE_ROWS]
        ]
    return "\n".join(lines) + "\n"
