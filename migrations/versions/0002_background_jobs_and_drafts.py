"""The job queue's records and the optimizer's drafts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app.db.tables, written out so this revision never changes with the models.
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "background_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("attempt_log", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.CheckConstraint(
            "status in ('waiting', 'active', 'done', 'failed', 'cancelled')",
            name="background_job_status",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_background_jobs_status", "background_jobs", ["status", "created_at"])
    op.create_table(
        "drafts",
        sa.Column("schedule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("solver_status", sa.String(length=20), nullable=False),
        sa.Column("kpis", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("applied_at", UTCDateTime, nullable=True),
        sa.Column("applied_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedules.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_id"),
    )
    op.create_index("ix_drafts_run_id", "drafts", ["run_id"])
    op.create_table(
        "draft_tasks",
        sa.Column("schedule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["schedule_id"], ["drafts.schedule_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_id", "task_id"),
    )


def downgrade() -> None:
    op.drop_table("draft_tasks")
    op.drop_table("drafts")
    op.drop_table("background_jobs")
