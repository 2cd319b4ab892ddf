"""How the plant's rows are shown to clients: plain JSON-ready dicts.

Pages and the API render the same views, so a task looks the same on the
board, on a phone and in `GET /api/v1/tasks/{id}`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables as t

View = dict[str, Any]


def equipment_view(row: t.Equipment) -> View:
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "capabilities": sorted(row.capabilities or []),
        "status": row.status,
        "expected_back": row.expected_back,
        "downtime": [{"start": w.start, "end": w.end, "reason": w.reason} for w in row.downtime],
        "version": row.version,
    }


def operator_view(row: t.Operator, contact: dict[str, Any] | None) -> View:
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


def job_view(row: t.Job) -> View:
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
    alternatives: Sequence[View] = (),
) -> View:
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


def task_view_of_row(row: Any, predecessors: Sequence[int], alternatives: Sequence[View]) -> View:
    """`task_view` of a Core row: `TASK_COLUMNS` plus the assignment's
    `operator_id`, `equipment_id`, `start`, `end` (all None: not scheduled).
    """
    placed = (
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
    row: Any, predecessors: Sequence[int], placed: View | None, alternatives: Sequence[View]
) -> View:
    """One task's view from an ORM row or a Core row: both carry `TASK_COLUMNS`."""
    view: View = {name: getattr(row, name) for name in TASK_COLUMNS}
    view["predecessors"] = sorted(predecessors)
    view["alternatives"] = list(alternatives)
    view["assignment"] = placed
    return view


def assignment_view(row: t.Assignment | None) -> View | None:
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


async def alternatives_of(session: AsyncSession, ids: list[int]) -> dict[int, list[View]]:
    """Each task's alternative routings, by equipment id (a defaultdict: none is [])."""
    found: dict[int, list[View]] = defaultdict(list)
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


async def task_views(session: AsyncSession, schedule_id: int, rows: Iterable[t.Task]) -> list[View]:
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
