"""Server-side browser sessions: `page_sessions` (the cookie names a record that can be
ended); users linked to a single sign-on account: `users.oidc_issuer`, `users.oidc_subject`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app.db.tables, written out so this revision never changes with the models.
UTCDateTime = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "page_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("device", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("ended_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_page_sessions_user_id", "page_sessions", ["user_id"])
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("oidc_issuer", sa.String(length=300), nullable=True))
        table.add_column(sa.Column("oidc_subject", sa.String(length=255), nullable=True))
        table.create_unique_constraint("uq_users_oidc_account", ["oidc_issuer", "oidc_subject"])


def downgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.drop_constraint("uq_users_oidc_account", type_="unique")
        table.drop_column("oidc_subject")
        table.drop_column("oidc_issuer")
    op.drop_index("ix_page_sessions_user_id", table_name="page_sessions")
    op.drop_table("page_sessions")
