"""An operator's own work: today's tasks and the next shift's (the "My tasks" screen).

Ownership lives in one WHERE clause: only assignments made to the actor's
operator are read, so nothing here can return another operator's task. The
list covers what is running or paused whatever its slot, everything booked
today in the plant's time zone, and the next working day that has any work
within a week ("next shift").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from app import clock
from app.clock import as_utc
from app.db import tables as t
from app.db.plan_queries import schedule_revision, schedule_timezone
from app.domain.plan import TaskStatus
from app.services.access import require
from app.services.context import Actor, Services

LOOK_AHEAD = timedelta(days=7)
ACTIVE = (TaskStatus.IN_PROGRESS, TaskStatus.PAUSED)


@dataclass(frozen=True, slots=True)
class MyTask:
    id: int
    name: str
    status: str
    version: int
    instructions: str
    job_id: int
    job_name: str
    equipment_id: int
    equipment_name: str
    equipment_status: str
    equipment_back: datetime | None
    start: datetime
    end: datetime
    actual_start: datetime | None
    actual_end: datetime | None


@dataclass(frozen=True, slots=True)
class MyWork:
    """What the operator sees, and what it depends on (for the live channel)."""

    operator_id: int
    revision: int
    timezone: str
    now: datetime
    today: list[MyTask] = field(default_factory=list)
    next_shift: list[MyTask] = field(default_factory=list)

    @property
    def tasks(self) -> list[MyTask]:
        return [*self.today, *self.next_shift]

    @property
    def task_ids(self) -> frozenset[int]:
        return frozenset(task.id for task in self.tasks)

    @property
    def equipment_ids(self) -> frozenset[int]:
        return frozenset(task.equipment_id for task in self.tasks)

    @property
    def job_ids(self) -> frozenset[int]:
        return frozenset(task.job_id for task in self.tasks)


async def my_work(*, services: Services, actor: Actor, now: datetime | None = None) -> MyWork:
    """The actor's own tasks for today and the next shift (an operator account only)."""
    require(actor, "own_tasks.read")
    now = as_utc(now or clock.now())
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session:
        timezone = await schedule_timezone(session, schedule_id)
        revision = await schedule_revision(session, schedule_id)
        if actor.operator_id is None:
            return MyWork(operator_id=0, revision=revision, timezone=timezone, now=now)
        zone = ZoneInfo(timezone)
        day_start = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        a, task, job, eq = t.Assignment, t.Task, t.Job, t.Equipment
        query = (
            select(a, task, job.name, eq.name, eq.status, eq.expected_back)
            .join(task, task.id == a.task_id)
            .join(job, job.id == task.job_id)
            .join(eq, eq.id == a.equipment_id)
            .where(a.schedule_id == schedule_id, a.operator_id == actor.operator_id)
            .where(
                or_(
                    task.status.in_(ACTIVE),
                    (a.end > day_start) & (a.start < day_start + LOOK_AHEAD),
                )
            )
            .order_by(a.start, task.id)
        )
        rows = (await session.execute(query)).all()
    found = [
        MyTask(
            id=row.Task.id,
            name=row.Task.name,
            status=row.Task.status,
            version=row.Task.version,
            instructions=row.Task.instructions or "",
            job_id=row.Task.job_id,
            job_name=row[2],
            equipment_id=row.Assignment.equipment_id,
            equipment_name=row[3],
            equipment_status=row[4],
            equipment_back=_utc(row[5]),
            start=as_utc(row.Assignment.start),
            end=as_utc(row.Assignment.end),
            actual_start=_utc(row.Task.actual_start),
            actual_end=_utc(row.Task.actual_end),
        )
        for row in rows
    ]
    today, next_shift = _split(found, day_start, zone)
    return MyWork(actor.operator_id, revision, timezone, now, today, next_shift)


def _split(
    found: list[MyTask], day_start: datetime, zone: ZoneInfo
) -> tuple[list[MyTask], list[MyTask]]:
    """Today (and anything running), then the first later day with work."""
    tomorrow = (day_start + timedelta(days=1, hours=3)).astimezone(zone)
    tomorrow = tomorrow.replace(hour=0, minute=0, second=0, microsecond=0)
    today = [task for task in found if task.status in ACTIVE or task.start < tomorrow]
    later = [task for task in found if task not in today]
    if not later:
        return today, []
    next_day = later[0].start.astimezone(zone).date()
    return today, [task for task in later if task.start.astimezone(zone).date() == next_day]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)
