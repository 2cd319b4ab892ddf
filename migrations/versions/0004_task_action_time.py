"""When a task's last start, pause or complete happened (as tapped, not as synced).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app.db.tables, written out so this revision never changes with the models.
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("last_action_at", UTCDateTime, nullable=True))
    # Tasks run before this revision: their last recorded moment.
    op.execute("UPDATE tasks SET last_action_at = COALESCE(actual_end, actual_start)")


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("last_action_at")
