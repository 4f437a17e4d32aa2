"""Validation runs: check several pairs, record the run and its findings, decide pass or fail."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors.quality.findings import Finding, exceeds
from collectors.quality.validate import PairCheck, validate_pair
from collectors.storage.engine import storage_error
from collectors.storage.schema import ValidationFindingRow, ValidationRunRow

__all__ = ["RunRecord", "by_pair", "new_run_id", "record_run", "run_checks"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """A finished run as stored in ``validation_runs``; ``status`` is ``passed`` or ``failed``."""

    run_id: str
    exchange: str
    pairs: tuple[str, ...]
    start_ms: int
    end_ms: int
    started_ms: int
    finished_ms: int
    findings: tuple[Finding, ...]
    tolerance: int

    @property
    def failed(self) -> bool:
        return exceeds(self.findings, self.tolerance)

    @property
    def status(self) -> str:
        return "failed" if self.failed else "passed"


def new_run_id() -> str:
    return uuid.uuid4().hex


def record_run(engine: Engine, run: RunRecord) -> None:
    """Store the run and one row per finding in one transaction; raises ``StorageError``."""
    rows: list[object] = [
        ValidationRunRow(
            run_id=run.run_id,
            exchange=run.exchange,
            pairs=",".join(run.pairs),
            range_start=run.start_ms,
            range_end=run.end_ms,
            started_at=run.started_ms,
            finished_at=run.finished_ms,
            findings=len(run.findings),
            tolerance=run.tolerance,
            status=run.status,
        )
    ]
    rows += [
        ValidationFindingRow(
            run_id=run.run_id,
            seq=seq,
            exchange=f.exchange,
            inst_id=f.inst_id,
            kind=f.kind.value,
            timeframe=f.timeframe,
            field=f.field,
            start_time=f.start_ms,
            end_time=f.end_ms,
            detail=f.detail,
        )
        for seq, f in enumerate(run.findings)
    ]
    try:
        with Session(engine) as session, session.begin():
            session.add_all(rows)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="validation_runs") from exc


def by_pair(findings: Sequence[Finding], pairs: Sequence[str]) -> dict[str, list[Finding]]:
    """Findings grouped by pair, every pair present (an empty list when it has none)."""
    grouped: dict[str, list[Finding]] = {pair: [] for pair in pairs}
    for finding in findings:
        grouped.setdefault(finding.inst_id, []).append(finding)
    return grouped


def run_checks(
    engine: Engine,
    checks: Sequence[PairCheck],
    *,
    tolerance: int,
    started_ms: int,
    finished_ms: Callable[[], int],
) -> RunRecord:
    """Validate every pair in turn, then record the run (``finished_ms()`` is read once all checks are done).
    An empty ``checks`` raises ``ValueError``; a failing read raises ``StorageError`` and records nothing."""
    if not checks:
        raise ValueError("no pair to validate")
    findings = [f for check in checks for f in validate_pair(engine, check)]
    run = RunRecord(
        run_id=new_run_id(),
        exchange=checks[0].exchange,
        pairs=tuple(c.inst_id for c in checks),
        start_ms=min(c.start_ms for c in checks),
        end_ms=max(c.end_ms for c in checks),
        started_ms=started_ms,
        finished_ms=finished_ms(),
        findings=tuple(findings),
        tolerance=tolerance,
    )
    record_run(engine, run)
    return run
