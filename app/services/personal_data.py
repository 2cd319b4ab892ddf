"""GDPR: an operator's personal data exported whole, or erased for good.

    found = await export_personal_data(services=s, actor=a, operator_id=7)
    done = await erase_personal_data(services=s, actor=a, operator_id=7, expected_version=4)

What is personal here: the operator's name and contact data, their weekly
shifts, time off (with its reason) and skills, the login linked to them, and
the work they were given (their assignments). The audit trail holds ids
only, never names, contact data or reasons (`resources._audit_safe`), so
erasure leaves it untouched and its hash chain still verifies.

Erasure keeps the operator's id, so the plan's history (who did which task)
stays whole but names no one: the name becomes "Erased operator <id>", the
contact data, skills, shifts and time off go, a linked login is renamed,
emptied and disabled. An operator with work still open is refused: reassign
it first. Afterwards the database's own files no longer hold what was erased
(SQLite overwrites freed space and truncates its log; PostgreSQL rewrites
the tables); backups taken before keep it until they age out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import func, select, text

from app import clock
from app.db import tables as t
from app.domain.plan import TaskStatus
from app.security.crypto import DataCipher
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import NotFound, StateConflict
from app.services.resources import operator_query
from app.services.sessions import announce_ended, end_sessions_in
from app.services.views import SkillView
from app.services.write_path import change, record_access, require_version

__all__ = ["Erased", "erase_personal_data", "export_personal_data"]

_SCRUBBED_TABLES = ("operators", "users", "operator_calendar_exceptions", "operator_skills")


# The export, as the operator gets it: times as ISO 8601 text, not the views' datetimes.
class ExportedShift(TypedDict):
    weekday: int
    start: str
    end: str


class ExportedCalendarEntry(TypedDict):
    kind: str
    start: str
    end: str
    reason: str


class ExportedOperator(TypedDict):
    id: int
    name: str
    # As it was given (`views.OperatorView.contact`).
    contact: dict[str, Any] | None
    skills: list[SkillView]
    weekly_shifts: list[ExportedShift]
    calendar: list[ExportedCalendarEntry]


class ExportedLogin(TypedDict):
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: str
    audit_entries_as_actor: int


class ExportedAssignment(TypedDict):
    task_id: int
    task: str
    job: str
    job_reference: str
    equipment_id: int
    start: str
    end: str
    status: str
    actual_start: str | None
    actual_end: str | None


class PersonalDataExport(TypedDict):
    exported_at: str
    operator: ExportedOperator
    login: ExportedLogin | None
    assignments: list[ExportedAssignment]


@dataclass(frozen=True, slots=True)
class Erased:
    operator_id: int
    user_id: int | None
    version: int


async def export_personal_data(
    *, services: Services, actor: Actor, operator_id: int
) -> PersonalDataExport:
    """Everything Takt holds about the operator, as JSON-ready data (the access is audited)."""
    require(actor, "personal_data.manage")
    async with services.db.read() as session:
        operator = await session.scalar(operator_query().where(t.Operator.id == operator_id))
        if operator is None:
            raise NotFound("operators", operator_id)
        user = await session.scalar(select(t.User).where(t.User.operator_id == operator_id))
        work = (
            await session.execute(
                select(t.Assignment, t.Task, t.Job)
                .join(t.Schedule, t.Schedule.id == t.Assignment.schedule_id)
                .join(t.Task, t.Task.id == t.Assignment.task_id)
                .join(t.Job, t.Job.id == t.Task.job_id)
                .where(t.Schedule.kind == "live", t.Assignment.operator_id == operator_id)
                .order_by(t.Assignment.start)
            )
        ).all()
        acted = 0
        if user is not None:
            acted = int(
                await session.scalar(
                    select(func.count())
                    .select_from(t.AuditEntry)
                    .where(t.AuditEntry.actor_id == user.id)
                )
                or 0
            )
    await record_access(
        services, actor, "personal_data.exported", "operators", details={"operator_id": operator_id}
    )
    contact = None
    if operator.contact_encrypted is not None:
        contact = DataCipher(services.settings.data_keys).decrypt_json(operator.contact_encrypted)
    return {
        "exported_at": clock.now().isoformat(),
        "operator": {
            "id": operator.id,
            "name": operator.name,
            "contact": contact,
            "skills": [{"skill": s.skill, "level": s.level} for s in operator.skills],
            "weekly_shifts": [
                {"weekday": s.weekday, "start": s.start.isoformat(), "end": s.end.isoformat()}
                for s in operator.shifts
            ],
            "calendar": [
                {
                    "kind": e.kind,
                    "start": e.start.isoformat(),
                    "end": e.end.isoformat(),
                    "reason": e.reason,
                }
                for e in operator.exceptions
            ],
        },
        "login": None
        if user is None
        else {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
            "active": user.active,
            "created_at": user.created_at.isoformat(),
            "audit_entries_as_actor": acted,
        },
        "assignments": [
            {
                "task_id": task.id,
                "task": task.name,
                "job": job.name,
                "job_reference": job.reference,
                "equipment_id": slot.equipment_id,
                "start": slot.start.isoformat(),
                "end": slot.end.isoformat(),
                "status": task.status,
                "actual_start": _iso(task.actual_start),
                "actual_end": _iso(task.actual_end),
            }
            for slot, task, job in work
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


async def erase_personal_data(
    *, services: Services, actor: Actor, operator_id: int, expected_version: int | None
) -> Erased:
    """Erase the operator's personal data (module docstring); refused while work is open."""
    require(actor, "personal_data.manage")
    require_version(expected_version)
    async with change(services, actor, "operator.erased") as tx:
        if services.db.is_sqlite:
            # Freed space is overwritten with zeros, not left for a file reader to find.
            await tx.session.execute(text("PRAGMA secure_delete = ON"))
        row = await tx.claim(t.Operator, operator_id, expected_version)
        await _refuse_open_work(tx.session, operator_id)
        operator = await tx.session.scalar(operator_query().where(t.Operator.id == operator_id))
        assert operator is not None  # claimed above
        operator.name = f"Erased operator {operator_id}"
        operator.contact_encrypted = None
        operator.skills.clear()
        operator.shifts.clear()
        operator.exceptions.clear()
        user = await tx.session.scalar(select(t.User).where(t.User.operator_id == operator_id))
        ended: list[str] = []
        if user is not None:
            user.username = f"erased-{user.id}"
            user.display_name = ""
            user.password_hash = None
            user.oidc_issuer = user.oidc_subject = None  # the single sign-on account's id
            user.active = False
            user.version += 1
            ended = await end_sessions_in(tx.session, user_id=user.id, reason="user erased")
            tx.audit("users", user.id, before=None, after={"erased": True, "active": False})
        tx.touch("operators", operator_id)
        tx.audit("operators", operator_id, before=None, after={"erased": True})
        await tx.session.flush()
        version = row.version
    if user is not None:
        await announce_ended(services, user_id=user.id, session_ids=ended, everywhere=True)
    await _scrub(services)
    return Erased(operator_id, None if user is None else user.id, version)


async def _refuse_open_work(session: Any, operator_id: int) -> None:
    open_work = await session.scalar(
        select(func.count())
        .select_from(t.Assignment)
        .join(t.Schedule, t.Schedule.id == t.Assignment.schedule_id)
        .join(t.Task, t.Task.id == t.Assignment.task_id)
        .where(
            t.Schedule.kind == "live",
            t.Assignment.operator_id == operator_id,
            t.Task.status != TaskStatus.DONE,
        )
    )
    if open_work:
        raise StateConflict(
            f"operator {operator_id} still has {open_work} open tasks: reassign them "
            "before erasing the operator's personal data",
            {"open_tasks": int(open_work)},
        )


async def _scrub(services: Services) -> None:
    """Leave no copy of the erased values in the database's own files."""
    async with services.db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if services.db.is_sqlite:
            await autocommit.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return
        for table in _SCRUBBED_TABLES:
            await autocommit.execute(text(f"VACUUM FULL {table}"))
