"""SQLAlchemy tables of the plant, the schedule, users and the audit trail.

Every row a user can edit carries `version`, bumped by the service layer on
each change (optimistic locking). Time columns are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.clock import as_utc

# BigInteger primary keys that still autoincrement on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; always returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, time: Time}


class Versioned:
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)


# --- the schedule aggregate ------------------------------------------------------------------


class Schedule(Base):
    """The live plan (kind=live, exactly one) or a draft proposed by the optimizer."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="live")
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # For drafts: the live revision the draft was computed from.
    base_revision: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("kind in ('live', 'draft')", name="schedule_kind"),)


class ChangeLogEntry(Base):
    """One committed change of a schedule: the feed clients resume from."""

    __tablename__ = "schedule_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(30))
    entity_ids: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("schedule_id", "revision", name="uq_change_revision"),)


# --- resources -------------------------------------------------------------------------------


class Equipment(Versioned, Base):
    __tablename__ = "equipment"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="available")
    expected_back: Mapped[datetime | None]
    downtime: Mapped[list[EquipmentDowntime]] = relationship(
        back_populates="equipment", cascade="all, delete-orphan", order_by="EquipmentDowntime.start"
    )
    __table_args__ = (
        CheckConstraint("status in ('available', 'down', 'maintenance')", name="equipment_status"),
    )


class EquipmentDowntime(Base):
    __tablename__ = "equipment_downtime"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    equipment_id: Mapped[int] = mapped_column(
        ForeignKey("equipment.id", ondelete="CASCADE"), index=True
    )
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200), default="")
    equipment: Mapped[Equipment] = relationship(back_populates="downtime")
    __table_args__ = (CheckConstraint('"end" > start', name="downtime_positive"),)


class Operator(Versioned, Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Personal contact data, AES-256-GCM encrypted (see app.db.encryption).
    contact_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    skills: Mapped[list[OperatorSkill]] = relationship(
        back_populates="operator", cascade="all, delete-orphan", order_by="OperatorSkill.skill"
    )
    shifts: Mapped[list[WeeklyShift]] = relationship(
        back_populates="operator",
        cascade="all, delete-orphan",
        order_by="(WeeklyShift.weekday, WeeklyShift.start)",
    )
    exceptions: Mapped[list[CalendarException]] = relationship(
        back_populates="operator", cascade="all, delete-orphan", order_by="CalendarException.start"
    )


class OperatorSkill(Base):
    __tablename__ = "operator_skills"
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True
    )
    skill: Mapped[str] = mapped_column(String(100), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)
    operator: Mapped[Operator] = relationship(back_populates="skills")
    __table_args__ = (
        CheckConstraint("level between 1 and 5", name="skill_level_range"),
        Index("ix_operator_skills_skill", "skill"),
    )


class WeeklyShift(Base):
    """A shift of the operator's weekly pattern, in the plant's local time."""

    __tablename__ = "operator_shifts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start: Mapped[time]
    end: Mapped[time]
    operator: Mapped[Operator] = relationship(back_populates="shifts")
    __table_args__ = (CheckConstraint("weekday between 0 and 6", name="shift_weekday"),)


class CalendarException(Base):
    """Time off (vacation, sickness) or an extra shift outside the weekly pattern."""

    __tablename__ = "operator_calendar_exceptions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200), default="")
    operator: Mapped[Operator] = relationship(back_populates="exceptions")
    __table_args__ = (
        CheckConstraint("kind in ('time_off', 'extra_shift')", name="calendar_exception_kind"),
        CheckConstraint('"end" > start', name="calendar_exception_positive"),
    )


# --- work ------------------------------------------------------------------------------------


class Job(Versioned, Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    customer: Mapped[str] = mapped_column(String(200), default="")
    reference: Mapped[str] = mapped_column(String(100), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    release: Mapped[datetime | None]
    due: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    __table_args__ = (
        CheckConstraint("status in ('open', 'done', 'cancelled')", name="job_status"),
    )


class TaskDependency(Base):
    """Finish-to-start: `task_id` may start only after `predecessor_id` ends."""

    __tablename__ = "task_dependencies"
    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    predecessor_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    __table_args__ = (CheckConstraint("task_id <> predecessor_id", name="no_self_dependency"),)


class TaskAlternative(Base):
    """An alternative routing: how long the task takes on that equipment.

    Capable equipment without a row takes the task's own `duration_minutes`.
    """

    __tablename__ = "task_alternatives"
    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    equipment_id: Mapped[int] = mapped_column(
        ForeignKey("equipment.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    duration_minutes: Mapped[int] = mapped_column(Integer)
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="task_alternative_duration_positive"),
    )


class Task(Versioned, Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    required_skill: Mapped[str | None] = mapped_column(String(100))
    min_level: Mapped[int] = mapped_column(Integer, default=1)
    required_capability: Mapped[str | None] = mapped_column(String(100))
    instructions: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    actual_start: Mapped[datetime | None]
    actual_end: Mapped[datetime | None]
    # The moment of the last start/pause/complete as the operator tapped it (offline too).
    last_action_at: Mapped[datetime | None]
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="task_duration_positive"),
        CheckConstraint("min_level between 1 and 5", name="task_min_level_range"),
        CheckConstraint(
            "status in ('pending', 'scheduled', 'in_progress', 'paused', 'done')",
            name="task_status",
        ),
    )


class Assignment(Base):
    """A task placed on a schedule. Its version is the task's version."""

    __tablename__ = "assignments"
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"))
    start: Mapped[datetime]
    end: Mapped[datetime]
    assigned_by: Mapped[int | None] = mapped_column(BigInteger)
    assigned_at: Mapped[datetime]
    __table_args__ = (
        CheckConstraint('"end" > start', name="assignment_positive"),
        Index("ix_assignments_operator_time", "schedule_id", "operator_id", "start"),
        Index("ix_assignments_equipment_time", "schedule_id", "equipment_id", "start"),
        Index("ix_assignments_time", "schedule_id", "start", "end"),
    )


# --- people and access -----------------------------------------------------------------------


class User(Versioned, Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", ondelete="SET NULL"), unique=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # The single sign-on account this user is (app/services/sso_accounts.py), if any.
    oidc_issuer: Mapped[str | None] = mapped_column(String(300))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    __table_args__ = (
        CheckConstraint("role in ('operator', 'scheduler', 'manager', 'admin')", name="user_role"),
        UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_account"),
    )


class RefreshToken(Base):
    """One issued refresh token; `family` ties a login's rotations together."""

    __tablename__ = "refresh_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PageSessionRecord(Base):
    """One signed-in browser (or wall screen): the session cookie names it by `id`.

    Live while `ended_at` is empty and `expires_at` is ahead; logging out,
    disabling the user or changing their role ends it (app/services/sessions.py).
    """

    __tablename__ = "page_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    # "browser", or "wall": a screen left open for days, kept signed in while it asks.
    device: Mapped[str] = mapped_column(String(20), default="browser")
    # How the person signed in: "password" or "oidc".
    method: Mapped[str] = mapped_column(String(20), default="password")
    started_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(40))


class ApiKey(Base):
    """A service key: requests are signed with HMAC-SHA256 over the secret."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # None: the key lasts until it is revoked.
    expires_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The first response to a state-changing request carrying `Idempotency-Key`."""

    __tablename__ = "idempotency_keys"
    principal: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# --- audit trail -----------------------------------------------------------------------------


class AuditEntry(Base):
    """Append-only, hash-chained record of who changed what. Ids only, no PII.

    `hash` = sha256(prev_hash + canonical JSON of the entry); the service layer
    writes entries while it holds the schedule's revision lock, so the chain is
    linear. Kept in its own table, never updated or deleted by the app.
    """

    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    revision: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)


class AuditArchive(Base):
    """A stretch of the audit trail moved out to a file by retention (`services.retention`).

    The entries `first_entry_id`..`last_entry_id` left `audit_entries` for
    `file_name` (JSON lines, gzip; its sha256 here). `first_prev_hash` links the
    stretch to the one before (or the genesis), `last_hash` to the entries after:
    the chain verifies across the cut from these rows alone, and the files
    verify on their own (`takt audit verify --archives`).
    """

    __tablename__ = "audit_archives"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    archived_at: Mapped[datetime]
    first_entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    last_entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    entries: Mapped[int] = mapped_column(BigInteger)
    first_prev_hash: Mapped[str] = mapped_column(String(64))
    last_hash: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(200))
    file_sha256: Mapped[str] = mapped_column(String(64))


# --- background work and optimizer drafts ----------------------------------------------------


class BackgroundRun(Base):
    """One piece of heavy work on the run queue (an optimizer run, a bulk operation).

    Bookkeeping, not plan data: written directly, never through the write path.
    The dead-letter record is the rows with status `failed` and their `error`.
    """

    __tablename__ = "background_jobs"
    # The taskiq task id: one per job, kept across its retries.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    priority: Mapped[int] = mapped_column(Integer, default=5)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    timeout_s: Mapped[float] = mapped_column(Float)
    # The first retry's delay; each later one doubles it.
    backoff_s: Mapped[float] = mapped_column(Float, default=1.0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Every failed attempt: {"attempt", "error", "retry_in_s"} (None: not retried).
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    # When its broker message was (re)queued, or is due for a delayed retry: a job
    # waiting well past it whose message is not in the broker lost it (the sweep).
    due_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    # While active: the worker running it ("host:pid") and its last sign of life.
    worker: Mapped[str | None] = mapped_column(String(120))
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    __table_args__ = (
        CheckConstraint(
            "status in ('waiting', 'active', 'done', 'failed', 'cancelled')",
            name="background_job_status",
        ),
        Index("ix_background_jobs_status", "status", "created_at"),
    )


class Draft(Base):
    """What an optimizer run proposed: a draft schedule and how it compares to the live one."""

    __tablename__ = "drafts"
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    solver_status: Mapped[str] = mapped_column(String(20))
    # {"weighted_lateness": {"before", "after"}, "makespan": ..., "utilization": ...}
    kpis: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    applied_by: Mapped[int | None] = mapped_column(BigInteger)


class StoredSlot(TypedDict):
    """A slot as a draft task's `before` and the audit trail hold it: times as ISO text."""

    operator_id: int
    equipment_id: int
    start: str
    end: str


class DraftTask(Base):
    """A task a draft changes, with the version and slot the run saw (None: in the tray)."""

    __tablename__ = "draft_tasks"
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("drafts.schedule_id", ondelete="CASCADE"), primary_key=True
    )
    task_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    base_version: Mapped[int] = mapped_column(Integer)
    before: Mapped[StoredSlot | None] = mapped_column(JSON)
