"""Alternative routings: a task's duration on particular equipment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app.db.tables, written out so this revision never changes with the models.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_alternatives",
        sa.Column("task_id", BigId, nullable=False),
        sa.Column("equipment_id", BigId, nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.CheckConstraint("duration_minutes > 0", name="task_alternative_duration_positive"),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "equipment_id"),
    )
    op.create_index("ix_task_alternatives_equipment_id", "task_alternatives", ["equipment_id"])


def downgrade() -> None:
    op.drop_index("ix_task_alternatives_equipment_id", table_name="task_alternatives")
    op.drop_table("task_alternatives")
