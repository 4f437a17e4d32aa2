"""validation runs and findings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Hand-reviewed: two new tables only (nothing existing changes), so no batch copy is needed on SQLite; each
index is created after its table and dropped before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import collectors.storage.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "validation_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("pairs", sa.Text(), nullable=False),
        sa.Column("range_start", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("range_end", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("started_at", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("finished_at", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("tolerance", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_validation_runs_started", "validation_runs", ["exchange", "started_at"], unique=False)
    op.create_table(
        "validation_findings",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=True),
        sa.Column("start_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("end_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq"),
    )
    op.create_index(
        "ix_validation_findings_pair",
        "validation_findings",
        ["exchange", "inst_id", "kind", "start_time"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_validation_findings_pair", table_name="validation_findings")
    op.drop_table("validation_findings")
    op.drop_index("ix_validation_runs_started", table_name="validation_runs")
    op.drop_table("validation_runs")
