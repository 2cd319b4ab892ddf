"""Read the plan out of the database as the domain's `Plan`.

Full-plan loads use plain Core selects (no ORM identity map): 10,000 tasks
load in one pass per table. `load_neighbourhood` reads only what one
assignment's validation can touch, so a drag costs a handful of small queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import as_utc
from app.db import tables as t
from app.domain import plan as d


async def load_plan(session: AsyncSession, schedule_id: int) -> d.Plan:
    timezone = await schedule_timezone(session, schedule_id)
    equipment = await _equipment(session, None)
    operators = await _operators(session, None)
    jobs = await _jobs(session, None)
    tasks = await _tasks(session)
    assignments = await _assignments(session, t.Assignment.schedule_id == schedule_id)
    return d.Plan(equipment, operators, jobs, tasks, assignments, timezone)


async def load_neighbourhood(
    session: AsyncSession,
    schedule_id: int,
    *,
    task_id: int,
    operator_id: int,
    equipment_id: int,
    window: d.Interval,
    timezone: str | None = None,
) -> d.Plan:
    """The part of the plan that validating one task's assignment can see:
    the task's job (for `late`), its predecessors and successors, and what the
    operator and equipment do around `window`. `timezone`: the schedule's, if
    the caller has read it already.
    """
    if timezone is None:
        timezone = await schedule_timezone(session, schedule_id)
    tk, dp = t.Task.__table__.c, t.TaskDependency.__table__.c
    # The task, the rest of its job, its predecessors and successors: one select
    # (subqueries instead of reading the task and its links first).
    tasks = await _tasks(
        session,
        or_(
            tk.id == task_id,
            # correlate(None): these read their own tables, not the outer row.
            tk.job_id
            == select(tk.job_id).where(tk.id == task_id).correlate(None).scalar_subquery(),
            tk.id.in_(select(dp.predecessor_id).where(dp.task_id == task_id).correlate(None)),
            tk.id.in_(select(dp.task_id).where(dp.predecessor_id == task_id).correlate(None)),
        ),
    )
    if task_id not in tasks:
        return d.Plan(timezone=timezone)
    assignments = await _assignments(
        session,
        t.Assignment.schedule_id == schedule_id,
        or_(
            t.Assignment.task_id.in_(set(tasks)),
            (
                or_(
                    t.Assignment.operator_id == operator_id,
                    t.Assignment.equipment_id == equipment_id,
                )
                & (t.Assignment.start < window.end)
                & (t.Assignment.end > window.start)
            ),
        ),
    )
    # Tasks of the resources' other assignments are needed for their names.
    missing = set(assignments) - set(tasks)
    if missing:
        tasks.update(await _tasks(session, t.Task.id.in_(missing)))
    job_ids = {task.job_id for task in tasks.values()}
    operator_ids = {operator_id} | {a.operator_id for a in assignments.values()}
    equipment_ids = {equipment_id} | {a.equipment_id for a in assignments.values()}
    return d.Plan(
        equipment=await _equipment(session, equipment_ids),
        operators=await _operators(session, operator_ids),
        jobs=await _jobs(session, job_ids),
        tasks=tasks,
        assignments=assignments,
        timezone=timezone,
    )


async def schedule_timezone(session: AsyncSession, schedule_id: int) -> str:
    found = await session.scalar(select(t.Schedule.timezone).where(t.Schedule.id == schedule_id))
    return found or "UTC"


async def schedule_revision_and_timezone(
    session: AsyncSession, schedule_id: int
) -> tuple[int, str]:
    """Both in one round trip (a proposal's validation needs both)."""
    found = (
        await session.execute(
            select(t.Schedule.revision, t.Schedule.timezone).where(t.Schedule.id == schedule_id)
        )
    ).first()
    return (int(found.revision or 0), found.timezone or "UTC") if found else (0, "UTC")


async def schedule_revision(session: AsyncSession, schedule_id: int) -> int:
    found = await session.scalar(select(t.Schedule.revision).where(t.Schedule.id == schedule_id))
    return int(found or 0)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _in(column: ColumnElement[int], ids: Iterable[int] | None) -> list[ColumnElement[bool]]:
    return [] if ids is None else [column.in_(set(ids))]


async def _equipment(session: AsyncSession, ids: Iterable[int] | None) -> dict[int, d.Equipment]:
    downtime: dict[int, list[d.Interval]] = defaultdict(list)
    dt = t.EquipmentDowntime.__table__.c
    for row in await session.execute(
        select(dt.equipment_id, dt.start, dt.end).where(*_in(dt.equipment_id, ids))
    ):
        downtime[row.equipment_id].append(d.Interval(as_utc(row.start), as_utc(row.end)))
    eq = t.Equipment.__table__.c
    rows = await session.execute(
        select(eq.id, eq.name, eq.type, eq.capabilities, eq.status, eq.expected_back).where(
            *_in(eq.id, ids)
        )
    )
    return {
        row.id: d.Equipment(
            id=row.id,
            name=row.name,
            type=row.type,
            capabilities=frozenset(row.capabilities or ()),
            status=d.EquipmentStatus(row.status),
            expected_back=_utc(row.expected_back),
            downtime=tuple(sorted(downtime.get(row.id, ()))),
        )
        for row in rows
    }


async def _operators(session: AsyncSession, ids: Iterable[int] | None) -> dict[int, d.Operator]:
    skills: dict[int, dict[str, int]] = defaultdict(dict)
    sk = t.OperatorSkill.__table__.c
    for row in await session.execute(
        select(sk.operator_id, sk.skill, sk.level).where(*_in(sk.operator_id, ids))
    ):
        skills[row.operator_id][row.skill] = row.level
    shifts: dict[int, list[d.WeeklyShift]] = defaultdict(list)
    sh = t.WeeklyShift.__table__.c
    for shift in await session.execute(
        select(sh.operator_id, sh.weekday, sh.start, sh.end).where(*_in(sh.operator_id, ids))
    ):
        shifts[shift.operator_id].append(d.WeeklyShift(shift.weekday, shift.start, shift.end))
    time_off: dict[int, list[d.Interval]] = defaultdict(list)
    extra: dict[int, list[d.Interval]] = defaultdict(list)
    ex = t.CalendarException.__table__.c
    for exception in await session.execute(
        select(ex.operator_id, ex.kind, ex.start, ex.end).where(*_in(ex.operator_id, ids))
    ):
        target = time_off if exception.kind == "time_off" else extra
        target[exception.operator_id].append(
            d.Interval(as_utc(exception.start), as_utc(exception.end))
        )
    op = t.Operator.__table__.c
    rows = await session.execute(select(op.id, op.name).where(*_in(op.id, ids)))
    return {
        row.id: d.Operator(
            id=row.id,
            name=row.name,
            skills=skills.get(row.id, {}),
            weekly_shifts=tuple(shifts.get(row.id, ())),
            time_off=tuple(sorted(time_off.get(row.id, ()))),
            extra_shifts=tuple(sorted(extra.get(row.id, ()))),
        )
        for row in rows
    }


async def _jobs(session: AsyncSession, ids: Iterable[int] | None) -> dict[int, d.Job]:
    jb = t.Job.__table__.c
    rows = await session.execute(
        select(jb.id, jb.name, jb.priority, jb.release, jb.due, jb.status, jb.reference).where(
            *_in(jb.id, ids)
        )
    )
    return {
        row.id: d.Job(
            id=row.id,
            name=row.name,
            priority=row.priority,
            release=_utc(row.release),
            due=_utc(row.due),
            status=d.JobStatus(row.status),
            reference=row.reference or "",
        )
        for row in rows
    }


async def _tasks(session: AsyncSession, *where: ColumnElement[bool]) -> dict[int, d.Task]:
    tk = t.Task.__table__.c
    rows = (
        await session.execute(
            select(
                tk.id,
                tk.job_id,
                tk.name,
                tk.duration_minutes,
                tk.required_skill,
                tk.min_level,
                tk.required_capability,
                tk.status,
                tk.actual_start,
                tk.actual_end,
            ).where(*where)
        )
    ).all()
    deps: dict[int, list[int]] = defaultdict(list)
    dp = t.TaskDependency.__table__.c
    dep_query = select(dp.task_id, dp.predecessor_id)
    if where:
        dep_query = dep_query.where(dp.task_id.in_(select(tk.id).where(*where)))
    for dep in await session.execute(dep_query):
        deps[dep.task_id].append(dep.predecessor_id)
    alternatives = await task_alternatives(
        session, None if not where else select(tk.id).where(*where)
    )
    return {
        row.id: d.Task(
            id=row.id,
            job_id=row.job_id,
            name=row.name,
            duration_minutes=row.duration_minutes,
            required_skill=row.required_skill,
            min_level=row.min_level,
            required_capability=row.required_capability,
            predecessors=tuple(sorted(deps.get(row.id, ()))),
            status=d.TaskStatus(row.status),
            actual_start=_utc(row.actual_start),
            actual_end=_utc(row.actual_end),
            alternatives=alternatives.get(row.id, ()),
        )
        for row in rows
    }


async def task_alternatives(
    session: AsyncSession, task_ids: Any
) -> dict[int, tuple[d.Alternative, ...]]:
    """Each task's alternative routings, by equipment id; `task_ids` a list or a
    subquery of ids, None for every task."""
    ta = t.TaskAlternative.__table__.c
    query = select(ta.task_id, ta.equipment_id, ta.duration_minutes).order_by(
        ta.task_id, ta.equipment_id
    )
    if task_ids is not None:
        query = query.where(ta.task_id.in_(task_ids))
    found: dict[int, list[d.Alternative]] = defaultdict(list)
    for row in await session.execute(query):
        found[row.task_id].append(d.Alternative(row.equipment_id, row.duration_minutes))
    return {task_id: tuple(alternatives) for task_id, alternatives in found.items()}


async def _assignments(
    session: AsyncSession, *where: ColumnElement[bool]
) -> dict[int, d.Assignment]:
    a = t.Assignment.__table__.c
    rows = await session.execute(
        select(a.task_id, a.operator_id, a.equipment_id, a.start, a.end).where(*where)
    )
    return {
        row.task_id: d.Assignment(
            task_id=row.task_id,
            operator_id=row.operator_id,
            equipment_id=row.equipment_id,
            start=as_utc(row.start),
            end=as_utc(row.end),
        )
        for row in rows
    }


async def load_window(session: AsyncSession, schedule_id: int, window: d.Interval) -> d.Plan:
    """What validating every assignment overlapping `window` needs, and little more:
    those assignments, whatever overlaps them on their resources, their
    predecessors' and successors' assignments, and the rest of their jobs'
    assignments (for `late`). Conflicts of the result that involve a task in
    the window are exactly that task's conflicts in the whole plan.

    This runs on every board page load, so each assignment row comes with its
    task's columns (one join, one pass), rows in the window are read once, and
    "in the window" stays a subquery rather than thousands of bound ids.
    """
    timezone = await schedule_timezone(session, schedule_id)
    a, tk, dp = t.Assignment.__table__.c, t.Task.__table__.c, t.TaskDependency.__table__.c
    overlaps_window = (a.start < window.end) & (a.end > window.start)
    in_window = select(a.task_id).where(a.schedule_id == schedule_id, overlaps_window)
    deps = (
        await session.execute(
            select(dp.task_id, dp.predecessor_id).where(
                or_(dp.task_id.in_(in_window), dp.predecessor_id.in_(in_window))
            )
        )
    ).all()
    predecessors: dict[int, list[int]] = defaultdict(list)
    for dep in deps:
        predecessors[dep.task_id].append(dep.predecessor_id)
    placed = await _placed(session, schedule_id, predecessors, overlaps_window)
    if not placed:
        return d.Plan(timezone=timezone)
    # An assignment overlapping a visible one may itself lie outside the window.
    starts, ends = zip(*((p.start, p.end) for p, _ in placed.values()), strict=True)
    reach = d.Interval(min(starts), max(ends))
    busy = select(a.operator_id, a.equipment_id).where(
        a.schedule_id == schedule_id, overlaps_window
    )
    jobs = select(tk.job_id).join_from(t.Task.__table__, t.Assignment.__table__, a.task_id == tk.id)
    linked = {task_id for dep in deps for task_id in dep}
    placed |= await _placed(
        session,
        schedule_id,
        predecessors,
        ~overlaps_window,
        or_(
            (a.start < reach.end)
            & (a.end > reach.start)
            & or_(
                a.operator_id.in_(busy.with_only_columns(a.operator_id)),
                a.equipment_id.in_(busy.with_only_columns(a.equipment_id)),
            ),
            tk.job_id.in_(jobs.where(a.schedule_id == schedule_id, overlaps_window)),
            a.task_id.in_(linked),
        ),
    )
    assignments = {task_id: p for task_id, (p, _) in placed.items()}
    tasks = {task_id: task for task_id, (_, task) in placed.items()}
    if unplaced := linked - set(tasks):
        tasks.update(await _tasks(session, tk.id.in_(unplaced)))
    for task_id, routings in (await task_alternatives(session, in_window)).items():
        if task_id in tasks:
            tasks[task_id] = replace(tasks[task_id], alternatives=routings)
    return d.Plan(
        equipment=await _equipment(session, {p.equipment_id for p in assignments.values()}),
        operators=await _operators(session, {p.operator_id for p in assignments.values()}),
        jobs=await _jobs(session, {task.job_id for task in tasks.values()}),
        tasks=tasks,
        assignments=assignments,
        timezone=timezone,
    )


async def _placed(
    session: AsyncSession,
    schedule_id: int,
    predecessors: dict[int, list[int]],
    *where: ColumnElement[bool],
) -> dict[int, tuple[d.Assignment, d.Task]]:
    """Assignments with their tasks; `predecessors` holds the links the caller knows of."""
    a, tk = t.Assignment.__table__.c, t.Task.__table__.c
    rows = await session.execute(
        select(
            a.task_id,
            a.operator_id,
            a.equipment_id,
            a.start,
            a.end,
            tk.job_id,
            tk.name,
            tk.duration_minutes,
            tk.required_skill,
            tk.min_level,
            tk.required_capability,
            tk.status,
        )
        .join_from(t.Assignment.__table__, t.Task.__table__, tk.id == a.task_id)
        .where(a.schedule_id == schedule_id, *where)
    )
    return {
        row.task_id: (
            d.Assignment(
                row.task_id, row.operator_id, row.equipment_id, as_utc(row.start), as_utc(row.end)
            ),
            d.Task(
                row.task_id,
                row.job_id,
                row.name,
                row.duration_minutes,
                row.required_skill,
                row.min_level,
                row.required_capability,
                tuple(sorted(predecessors.get(row.task_id, ()))),
                d.TaskStatus(row.status),
            ),
        )
        for row in rows
    }


async def load_job(session: AsyncSession, schedule_id: int, job_id: int) -> d.Plan:
    """One job, its tasks and their assignments: all its critical path needs."""
    tasks = await _tasks(session, t.Task.job_id == job_id)
    return d.Plan(
        jobs=await _jobs(session, {job_id}),
        tasks=tasks,
        assignments=await _assignments(
            session, t.Assignment.schedule_id == schedule_id, t.Assignment.task_id.in_(set(tasks))
        ),
        timezone=await schedule_timezone(session, schedule_id),
    )


async def load_operators(session: AsyncSession, ids: Iterable[int]) -> dict[int, d.Operator]:
    """These operators with their skills, shifts and time off."""
    return await _operators(session, ids)


async def load_equipment(session: AsyncSession, ids: Iterable[int]) -> dict[int, d.Equipment]:
    """These machines with their status and downtime."""
    return await _equipment(session, ids)
