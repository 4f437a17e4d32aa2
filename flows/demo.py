"""The demo's Prefect part: a hole cut into the collected trades, then validate, backfill, validate and
reaggregate as real flow runs, and their results as short tables.

``okx-collector demo`` calls :func:`quality_demo` after its live collection, while the simulator still serves
REST history. The runs go to the user's Prefect: the server of ``PREFECT_API_URL`` when it is set, otherwise
Prefect's ephemeral mode (a server in a subprocess of this process, on ``$PREFECT_HOME/prefect.db``), the
database a later ``prefect server start`` opens, so the UI at http://127.0.0.1:4200 shows the four runs, their
task runs and artifacts. The flows read their database, config and REST URL from the environment
(``collectors/settings.py``), so this module points those at the demo's for the runs and restores them after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.client.schemas.objects import State
from prefect.settings import get_current_settings
from sqlalchemy import Engine

from collectors.errors import CollectorError
from collectors.live.demo import Hole, collected_span, cut_hole, findings_of, rows_table
from collectors.model import Timeframe
from collectors.quality.findings import iso
from collectors.quality.plan import parse_instant
from flows.backfill import backfill
from flows.reaggregate import reaggregate
from flows.validate import validate
from tasks.validate import artifact_key

__all__ = [
    "QualityDemo",
    "Validation",
    "prefect_ready",
    "problems",
    "quality_demo",
    "report",
    "where_runs_are",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Validation:
    """One ``validate`` flow run: its final state and the findings it recorded."""

    state: str
    run_id: str
    findings: list[dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityDemo:
    """What the four flow runs reported."""

    hole: Hole
    start_ms: int
    end_ms: int
    before: Validation
    backfill_state: str
    backfill: list[dict[str, Any]]
    after: Validation
    reaggregate_state: str
    reaggregate: dict[str, dict[str, int]]
    changes: list[dict[str, Any]]


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def _validation(db: Engine, start_ms: int, end_ms: int) -> Validation:
    state: State[Any] = await validate(start=iso(start_ms), end=iso(end_ms), return_state=True)
    summary = await state.aresult(raise_on_failure=False)
    if not isinstance(summary, dict):  # the run crashed: its exception, not a summary
        raise CollectorError(f"demo: validate ended {state.name}: {state.message}")
    findings = await asyncio.to_thread(findings_of, db, str(summary["run_id"]))
    return Validation(state=state.name or state.type.value, run_id=str(summary["run_id"]), findings=findings)


class _ExpectedFailure(logging.Filter):
    """Drops the engine's ERROR line about the first validation's Failed state: the demo expects it and prints
    every run's state itself (the UI still shows the state and the flow's own log line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Finished in state Failed('validation ")


async def _changed_candles(flow_run_id: UUID | None, key: str) -> list[dict[str, Any]]:
    """The rows of the re-aggregation's table artifact ``key`` (what the UI shows), ``kind: none`` rows left out."""
    if flow_run_id is None:
        return []
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=[key])
            )
        )
    rows = [row for a in found for row in json.loads(str(a.data))]
    return [row for row in rows if row.get("kind") != "none"]


async def quality_demo(
    *, db: Engine, database_url: str, rest_url: str, config_path: Path, hole_pair: str
) -> QualityDemo:
    """Cut a hole into ``hole_pair``'s stored trades, then run validate, backfill, validate, reaggregate.

    Both validations check the span of the stored trades (an explicit end: no freshness check, the collection is
    over). The backfill runs as scheduled (every open gap of the last hour, every pair). The re-aggregation
    rebuilds the hole's 1m candles of ``hole_pair`` from the stored trades (a coarser bucket holds the
    collection's first, partial minute, which the recomputation counts complete: docs/demo.md, Limits).
    """
    start_ms, end_ms = await asyncio.to_thread(collected_span, db)
    hole = await asyncio.to_thread(cut_hole, db, hole_pair)
    env = {"DATABASE_URL": database_url, "COLLECTOR_CONFIG": str(config_path), "OKX_REST_URL": rest_url}
    engine_log, quiet = logging.getLogger("prefect.flow_runs"), _ExpectedFailure()
    with _environment(env):
        engine_log.addFilter(quiet)
        try:
            before = await _validation(db, start_ms, end_ms)
        finally:
            engine_log.removeFilter(quiet)
        filled: State[Any] = await backfill(gaps_lookback_hours=1.0, concurrency=2, return_state=True)
        rows = await filled.aresult(raise_on_failure=False)
        after = await _validation(db, start_ms, end_ms)
        redone: State[Any] = await reaggregate(
            pairs=[hole_pair],
            timeframes=[_MINUTE],
            start=iso(hole.start_ms),
            end=iso(hole.end_ms + 1),
            return_state=True,
        )
        totals = await redone.aresult(raise_on_failure=False)
        changes = await _changed_candles(
            redone.state_details.flow_run_id, artifact_key("reaggregate", hole_pair)
        )
    return QualityDemo(
        hole=hole,
        start_ms=start_ms,
        end_ms=end_ms,
        before=before,
        backfill_state=filled.name or filled.type.value,
        backfill=rows if isinstance(rows, list) else [],
        after=after,
        reaggregate_state=redone.name or redone.type.value,
        reaggregate=totals["pairs"] if isinstance(totals, dict) else {},
        changes=changes,
    )


def prefect_ready() -> None:
    """Connect to the user's Prefect, starting the ephemeral server when no ``PREFECT_API_URL`` is set (10 to 30 s
    on a busy machine: the demo calls this in a thread while it collects)."""
    with get_client(sync_client=True) as client:
        failed = client.api_healthcheck()
    if failed is not None:
        raise CollectorError(f"demo: the Prefect API {client.api_url} does not answer: {failed}")


def where_runs_are() -> str:
    """Where the flow runs just made can be seen, in words for the demo's last lines."""
    settings = get_current_settings()
    if settings.api.url:
        ui = settings.ui_url or settings.api.url.removesuffix("/api")
        return f"the flow runs are on the Prefect server {settings.api.url}: open {ui}"
    database = settings.server.database.connection_url
    where = database.get_secret_value() if database is not None else f"{settings.home}/prefect.db"
    return (
        f"the flow runs are stored by Prefect's ephemeral mode in {where.removeprefix('sqlite+aiosqlite:///')};\n"
        "to see them: `prefect server start` (the same PREFECT_HOME), then open http://127.0.0.1:4200"
    )


_MINUTE: Final = "1m"
_FINDING_COLUMNS: Final = ("pair", "kind", "timeframe", "field", "start", "end", "detail")
_BACKFILL_COLUMNS: Final = ("pair", "holes", "ids", "trades", "requests", "unrecoverable", "candles_changed")
_REAGGREGATE_COLUMNS: Final = ("pair", "trades", "candles", "new", "changed", "unbacked", "written")
_CHANGE_COLUMNS: Final = ("pair", "timeframe", "open_time", "kind", "fields")


def _findings_table(found: Validation) -> str:
    if not found.findings:
        return "  (no finding)"
    rows = [{**f, "start": iso(f["start_ms"]), "end": iso(f["end_ms"])} for f in found.findings]
    return rows_table(rows, _FINDING_COLUMNS)


def report(q: QualityDemo) -> str:
    """The demo's text about the four flow runs."""
    h = q.hole
    touched = [r for r in q.backfill if r["holes"]]
    redone = [{"pair": pair, **counts} for pair, counts in q.reaggregate.items()]
    return "\n".join([
        f"hole cut: {h.trades} stored trades of {h.inst_id} deleted (ids {h.first_id}-{h.last_id}, "
        f"{iso(h.start_ms)} .. {iso(h.end_ms)})",
        "",
        f"validate before the backfill ({iso(q.start_ms)} .. {iso(q.end_ms)}): {q.before.state}, "
        f"{len(q.before.findings)} findings",
        _findings_table(q.before),
        "",
        f"backfill (every open gap of the last hour): {q.backfill_state}, "
        f"{len(touched)} of {len(q.backfill)} pairs had a hole",
        rows_table(touched, _BACKFILL_COLUMNS) if touched else "  (no hole found)",
        "",
        f"validate after the backfill: {q.after.state}, {len(q.after.findings)} findings",
        _findings_table(q.after),
        "",
        f"reaggregate {h.inst_id} {_MINUTE} over the hole (from the stored trades): {q.reaggregate_state}",
        rows_table(redone, _REAGGREGATE_COLUMNS),
        *(["  (no candle compared: the hole's minute had not ended; an open candle belongs to the live engine)"]
          if not any(r["candles"] for r in redone) else []),
        *(["", "changed candles (the reaggregate-" + h.inst_id.lower() + " artifact):",
           rows_table(q.changes, _CHANGE_COLUMNS)] if q.changes else []),
    ])  # fmt: skip


def problems(q: QualityDemo) -> list[str]:
    """What went wrong, in words; empty when the flows did what the demo promises."""
    h = q.hole
    gap = f"trade ids {h.first_id}-{h.last_id} missing ({h.trades})"
    wrong: list[str] = []
    gaps = [f for f in q.before.findings if f["kind"] == "trade_gap"]
    if [(f["pair"], f["detail"]) for f in gaps] != [(h.inst_id, gap)]:
        wrong.append(f"validate before did not report exactly the hole ({gap})")
    # a minute watched whole holding the hole: its stored candles count the deleted trades, nothing else differs
    beside = [f for f in q.before.findings if f["kind"] != "trade_gap" and not _overlaps(f, h)]
    if beside:
        wrong.append(f"validate before reported more than the hole: {beside}")
    filled = {r["pair"]: r for r in q.backfill}
    row = filled.get(h.inst_id, {})
    if (row.get("holes"), row.get("trades"), row.get("unrecoverable")) != (1, h.trades, 0):
        wrong.append(f"backfill did not store the {h.trades} trades of the hole: {row}")
    if any(r["holes"] for r in q.backfill if r["pair"] != h.inst_id):
        wrong.append("backfill found a hole the demo did not cut")
    if q.after.findings or q.after.state != "Completed":
        wrong.append(f"validate after the backfill: {q.after.state}, {len(q.after.findings)} findings")
    if q.reaggregate_state != "Completed" or h.inst_id not in q.reaggregate:
        wrong.append(f"reaggregate ended {q.reaggregate_state} without {h.inst_id}")
    unexpected = [c for c in q.changes if not _closes_hole_candle(c, h, q.start_ms)]
    if unexpected:
        wrong.append(f"reaggregate changed more than the flags of the hole's candle: {unexpected}")
    return wrong


def _overlaps(finding: dict[str, Any], hole: Hole) -> bool:
    return bool(
        finding["pair"] == hole.inst_id and finding["start_ms"] <= hole.end_ms < finding["end_ms"] + 1
    )


_FLAGS: Final = frozenset({"is_closed", "is_complete"})


def _closes_hole_candle(change: dict[str, Any], hole: Hole, first_ms: int) -> bool:
    """The changes a re-aggregation may make here, to the candle of the hole's bucket only, and to its flags only
    (the backfill restored exactly the trades the live engine had seen, so values were already right):
    ``is_closed``, when the live collector left it open at its stop and the minute has ended since;
    ``is_complete``, when the live engine marked a minute with a reconnect incomplete and the catch-up (the
    ledger's ``backfilled`` span) made it whole; never for the bucket the collection began in (``first_ms``
    inside it: partial by nature)."""
    tf = Timeframe.parse(str(change["timeframe"]))
    start = parse_instant(str(change["open_time"]))
    inside = start <= hole.end_ms and hole.start_ms < start + tf.duration_ms
    fields = set(str(change["fields"]).split(","))
    partial = start < first_ms and "is_complete" in fields
    return inside and not partial and change["kind"] == "changed" and fields <= _FLAGS
