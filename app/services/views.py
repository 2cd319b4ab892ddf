"""How the plant's rows are shown to clients: JSON-ready typed dicts.

Pages and the API render the same views, so a task looks the same on the
board, on a phone and in `GET /api/v1/tasks/{id}`. Each view is a TypedDict
(a plain dict at run time, so the JSON is what it always was); the keys are
built in the order the API has always sent them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, time
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables as t


class ItemView(TypedDict):
    """What every plant item's view has: its id and the version an edit must name."""

    id: int
    version: int


class DowntimeView(TypedDict):
    start: datetime
    end: datetime
    reason: str


class EquipmentView(ItemView):
    name: str
    type: str
    capabilities: list[str]
    status: str
    expected_back: datetime | None
    downtime: list[DowntimeView]


class SkillView(TypedDict):
    skill: str
    level: int


class ShiftView(TypedDict):
    weekday: int
    start: time
    end: time


class CalendarExceptionView(TypedDict):
    kind: str
    start: datetime
    end: datetime
    reason: str


class OperatorView(ItemView):
    name: str
    skills: list[SkillView]
    shifts: list[ShiftView]
    exceptions: list[CalendarExceptionView]
    # As it was given: the API writes phone and e-mail, a plant file any keys.
    contact: dict[str, Any] | None


class JobView(ItemView):
    name: str
    customer: str
    reference: str
    priority: int
    release: datetime | None
    due: datetime | None
    status: str


class AssignmentView(TypedDict):
    operator_id: int
    equipment_id: int
    start: datetime
    end: datetime


class AlternativeView(TypedDict):
    """An alternative routing: the task takes `duration_minutes` on this equipment."""

    equipment_id: int
    duration_minutes: int


class TaskView(ItemView):
    job_id: int
    name: str
    sequence: int
    duration_minutes: int
    required_skill: str | None
    min_level: int
    required_capability: str | None
    instructions: str
    status: str
    actual_start: datetime | None
    actual_end: datetime | None
    predecessors: list[int]
    alternatives: list[AlternativeView]
    assignment: AssignmentView | None


def equipment_view(row: t.Equipment) -> EquipmentView:
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "capabilities": sorted(row.capabilities or []),
        "status": row.status,
        "expected_back": row.expected_back,
        "downtime": downtime_views(row),
        "version": row.version,
    }


def downtime_views(row: t.Equipment) -> list[DowntimeView]:
    return [{"start": w.start, "end": w.end, "reason": w.reason} for w in row.downtime]


def operator_view(row: t.Operator, contact: dict[str, Any] | None) -> OperatorView:
    return {
        "id": row.id,
        "name": row.name,
        "skills": [{"skill": s.skill, "level": s.level} for s in row.skills],
        "shifts": [{"weekday": s.weekday, "start": s.start, "end": s.end} for s in row.shifts],
        "exceptions": [
            {"kind": e.kind, "start": e.start, "end": e.end, "reason": e.reason}
            for e in row.exceptions
        ],
        "contact": contact,
        "version": row.version,
    }


def job_view(row: t.Job) -> JobView:
    return {
        "id": row.id,
        "name": row.name,
        "customer": row.customer,
        "reference": row.reference,
        "priority": row.priority,
        "release": row.release,
        "due": row.due,
        "status": row.status,
        "version": row.version,
    }


def task_view(
    row: t.Task,
    predecessors: Sequence[int],
    assignment: t.Assignment | None,
    alternatives: Sequence[AlternativeView] = (),
) -> TaskView:
    return _task_fields(row, predecessors, assignment_view(assignment), alternatives)


# What a task view reads of a tasks row (ORM or a Core select).
TASK_COLUMNS = (
    "id",
    "job_id",
    "name",
    "sequence",
    "duration_minutes",
    "required_skill",
    "min_level",
    "required_capability",
    "instructions",
    "status",
    "actual_start",
    "actual_end",
    "version",
)


def task_view_of_row(
    row: Any, predecessors: Sequence[int], alternatives: Sequence[AlternativeView]
) -> TaskView:
    """`task_view` of a Core row: `TASK_COLUMNS` plus the assignment's
    `operator_id`, `equipment_id`, `start`, `end` (all None: not scheduled).
    """
    placed: AssignmentView | None = (
        None
        if row.operator_id is None
        else {
            "operator_id": row.operator_id,
            "equipment_id": row.equipment_id,
            "start": row.start,
            "end": row.end,
        }
    )
    return _task_fields(row, predecessors, placed, alternatives)


def _task_fields(
    row: Any,
    predecessors: Sequence[int],
    placed: AssignmentView | None,
    alternatives: Sequence[AlternativeView],
) -> TaskView:
    """One task's view from an ORM row or a Core row: both carry `TASK_COLUMNS`,
    read here in that order."""
    return {
        "id": row.id,
        "job_id": row.job_id,
        "name": row.name,
        "sequence": row.sequence,
        "duration_minutes": row.duration_minutes,
        "required_skill": row.required_skill,
        "min_level": row.min_level,
        "required_capability": row.required_capability,
        "instructions": row.instructions,
        "status": row.status,
        "actual_start": row.actual_start,
        "actual_end": row.actual_end,
        "version": row.version,
        "predecessors": sorted(predecessors),
        "alternatives": list(alternatives),
        "assignment": placed,
    }


def assignment_view(row: t.Assignment | None) -> AssignmentView | None:
    if row is None:
        return None
    return {
        "operator_id": row.operator_id,
        "equipment_id": row.equipment_id,
        "start": row.start,
        "end": row.end,
    }


async def predecessors_of(session: AsyncSession, ids: list[int]) -> dict[int, list[int]]:
    """Each task's predecessors (a defaultdict: tasks without any get [])."""
    predecessors: dict[int, list[int]] = defaultdict(list)
    if not ids:
        return predecessors
    dp = t.TaskDependency.__table__.c
    for dep in await session.execute(
        select(dp.task_id, dp.predecessor_id).where(dp.task_id.in_(ids))
    ):
        predecessors[dep.task_id].append(dep.predecessor_id)
    return predecessors


async def alternatives_of(
    session: AsyncSession, ids: list[int]
) -> dict[int, list[AlternativeView]]:
    """Each task's alternative routings, by equipment id (a defaultdict: none is [])."""
    found: dict[int, list[AlternativeView]] = defaultdict(list)
    if not ids:
        return found
    ta = t.TaskAlternative.__table__.c
    query = (
        select(ta.task_id, ta.equipment_id, ta.duration_minutes)
        .where(ta.task_id.in_(ids))
        .order_by(ta.task_id, ta.equipment_id)
    )
    for row in await session.execute(query):
        found[row.task_id].append(
            {"equipment_id": row.equipment_id, "duration_minutes": row.duration_minutes}
        )
    return found


async def task_views(
    session: AsyncSession, schedule_id: int, rows: Iterable[t.Task]
) -> list[TaskView]:
    """Views of many tasks with three extra queries, not three per task."""
    rows = list(rows)
    ids = [row.id for row in rows]
    if not ids:
        return []
    predecessors = await predecessors_of(session, ids)
    alternatives = await alternatives_of(session, ids)
    assignments = {
        a.task_id: a
        for a in (
            await session.execute(
                select(t.Assignment).where(
                    t.Assignment.schedule_id == schedule_id, t.Assignment.task_id.in_(ids)
                )
            )
        ).scalars()
    }
    return [
        task_view(row, predecessors[row.id], assignments.get(row.id), alternatives[row.id])
        for row in rows
    ]
