"""Validation runs: check several pairs, record the run and its findings, decide pass or fail."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors.quality.findings import Finding, exceeds
from collectors.storage.engine import storage_error
from collectors.storage.schema import ValidationFindingRow, ValidationRunRow

__all__ = ["RunRecord", "by_pair", "new_run_id", "record_run"]


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
