"""Audit retention: `audit_archives`, the stretches of the trail moved out to files.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app.db.tables, written out so this revision never changes with the models.
UTCDateTime = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_archives",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("archived_at", UTCDateTime, nullable=False),
        sa.Column("first_entry_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("last_entry_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("first_prev_hash", sa.String(64), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_archives")
