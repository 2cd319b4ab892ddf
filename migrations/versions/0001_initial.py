"""The initial schema, and the one live schedule.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in app.db.tables, written out so this revision never changes with the models.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_plant_tables()
    create_work_tables()
    create_access_tables()
    create_audit_table()
    insert_live_schedule()


def create_plant_tables() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("base_revision", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("kind in ('live', 'draft')", name="schedule_kind"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "schedule_changes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("schedule_id", BigId, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("entity", sa.String(length=30), nullable=False),
        sa.Column("entity_ids", sa.JSON(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedules.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "revision", name="uq_change_revision"),
    )
    op.create_table(
        "equipment",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expected_back", UTCDateTime, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status in ('available', 'down', 'maintenance')", name="equipment_status"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_equipment_type", "equipment", ["type"])
    op.create_table(
        "equipment_downtime",
        sa.Column("id", BigId, nullable=False),
        sa.Column("equipment_id", BigId, nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.CheckConstraint('"end" > start', name="downtime_positive"),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_equipment_downtime_equipment_id", "equipment_downtime", ["equipment_id"])
    op.create_table(
        "operators",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "operator_skills",
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("skill", sa.String(length=100), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.CheckConstraint("level between 1 and 5", name="skill_level_range"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("operator_id", "skill"),
    )
    op.create_index("ix_operator_skills_skill", "operator_skills", ["skill"])
    op.create_table(
        "operator_shifts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.CheckConstraint("weekday between 0 and 6", name="shift_weekday"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_operator_shifts_operator_id", "operator_shifts", ["operator_id"])
    op.create_table(
        "operator_calendar_exceptions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.CheckConstraint("kind in ('time_off', 'extra_shift')", name="calendar_exception_kind"),
        sa.CheckConstraint('"end" > start', name="calendar_exception_positive"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_operator_calendar_exceptions_operator_id",
        "operator_calendar_exceptions",
        ["operator_id"],
    )


def create_work_tables() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("customer", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("release", UTCDateTime, nullable=True),
        sa.Column("due", UTCDateTime, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("status in ('open', 'done', 'cancelled')", name="job_status"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_due", "jobs", ["due"])
    op.create_table(
        "tasks",
        sa.Column("id", BigId, nullable=False),
        sa.Column("job_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("required_skill", sa.String(length=100), nullable=True),
        sa.Column("min_level", sa.Integer(), nullable=False),
        sa.Column("required_capability", sa.String(length=100), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("actual_start", UTCDateTime, nullable=True),
        sa.Column("actual_end", UTCDateTime, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status in ('pending', 'scheduled', 'in_progress', 'paused', 'done')",
            name="task_status",
        ),
        sa.CheckConstraint("duration_minutes > 0", name="task_duration_positive"),
        sa.CheckConstraint("min_level between 1 and 5", name="task_min_level_range"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tasks_job_id", "tasks", ["job_id"])
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_table(
        "task_dependencies",
        sa.Column("task_id", BigId, nullable=False),
        sa.Column("predecessor_id", BigId, nullable=False),
        sa.CheckConstraint("task_id <> predecessor_id", name="no_self_dependency"),
        sa.ForeignKeyConstraint(["predecessor_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "predecessor_id"),
    )
    op.create_index("ix_task_dependencies_predecessor_id", "task_dependencies", ["predecessor_id"])
    op.create_table(
        "assignments",
        sa.Column("schedule_id", BigId, nullable=False),
        sa.Column("task_id", BigId, nullable=False),
        sa.Column("operator_id", BigId, nullable=False),
        sa.Column("equipment_id", BigId, nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("assigned_by", sa.BigInteger(), nullable=True),
        sa.Column("assigned_at", UTCDateTime, nullable=False),
        sa.CheckConstraint('"end" > start', name="assignment_positive"),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"]),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"]),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedules.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_id", "task_id"),
    )
    op.create_index(
        "ix_assignments_equipment_time", "assignments", ["schedule_id", "equipment_id", "start"]
    )
    op.create_index(
        "ix_assignments_operator_time", "assignments", ["schedule_id", "operator_id", "start"]
    )
    op.create_index("ix_assignments_time", "assignments", ["schedule_id", "start", "end"])


def create_access_tables() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("operator_id", BigId, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "role in ('operator', 'scheduler', 'manager', 'admin')", name="user_role"
        ),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("operator_id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family"])
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("response_headers", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("principal", "key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def create_audit_table() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity", sa.String(length=30), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_audit_entity", "audit_entries", ["entity", "entity_id"])
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])


def insert_live_schedule() -> None:
    """The write path needs exactly one live schedule; `takt demo` sets its timezone.

    The id is left to the database (1 in a fresh table) so PostgreSQL's
    sequence stays in step for the drafts inserted later.
    """
    schedules = sa.table(
        "schedules",
        sa.column("name", sa.String),
        sa.column("kind", sa.String),
        sa.column("revision", sa.BigInteger),
        sa.column("timezone", sa.String),
        sa.column("created_at", UTCDateTime),
    )
    op.execute(
        schedules.insert().values(
            name="Live plan",
            kind="live",
            revision=0,
            timezone="UTC",
            created_at=sa.func.current_timestamp(),
        )
    )


def downgrade() -> None:
    # Children before parents; a table's indexes go with it.
    for table in (
        "audit_entries",
        "idempotency_keys",
        "api_keys",
        "refresh_tokens",
        "users",
        "assignments",
        "task_dependencies",
        "tasks",
        "jobs",
        "operator_calendar_exceptions",
        "operator_shifts",
        "operator_skills",
        "operators",
        "equipment_downtime",
        "equipment",
        "schedule_changes",
        "schedules",
    ):
        op.drop_table(table)
