"""What the queue's sweep needs: when a job's message was queued, its worker's heartbeat.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app.db.tables, written out so this revision never changes with the models.
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.add_column(sa.Column("backoff_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("due_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("worker", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime, nullable=True))
    # Jobs queued before this revision: the default backoff, due when they were
    # created, and a running one last seen when it started.
    op.execute("UPDATE background_jobs SET backoff_s = 1.0, due_at = created_at")
    op.execute("UPDATE background_jobs SET heartbeat_at = started_at WHERE status = 'active'")
    with op.batch_alter_table("background_jobs") as batch:
        batch.alter_column("backoff_s", existing_type=sa.Float(), nullable=False)
        batch.alter_column("due_at", existing_type=UTCDateTime, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("worker")
        batch.drop_column("due_at")
        batch.drop_column("backoff_s")
