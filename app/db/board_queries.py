"""What the board reads: its rows, the bars of a window, the unscheduled tray.

Plain Core selects returning small frozen records, so a board of a large
plant costs a handful of queries whose size follows the visible window, not
the plant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import as_utc
from app.db import tables as t
from app.domain.plan import TaskStatus


@dataclass(frozen=True, slots=True)
class BoardFilter:
    job_id: int | None = None
    skill: str | None = None
    equipment_type: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A row of the board: a machine or a person."""

    id: int
    name: str
    # Equipment: its type; operators: their skills, e.g. "milling 3 · welding 2".
    detail: str
    status: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlacedTask:
    """A task on the plan: what one bar shows."""

    task_id: int
    version: int
    name: str
    status: str
    job_id: int
    job_name: str
    reference: str
    customer: str
    duration_minutes: int
    required_skill: str | None
    required_capability: str | None
    operator_id: int
    equipment_id: int
    equipment_type: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class TrayTask:
    """An unscheduled task waiting in the tray."""

    task_id: int
    version: int
    name: str
    status: str
    job_id: int
    job_name: str
    reference: str
    customer: str
    due: datetime | None
    duration_minutes: int
    required_skill: str | None
    min_level: int
    required_capability: str | None


async def equipment_rows(session: AsyncSession, equipment_type: str | None) -> list[Resource]:
    eq = t.Equipment.__table__.c
    query = select(eq.id, eq.name, eq.type, eq.status, eq.capabilities).order_by(eq.type, eq.name)
    if equipment_type:
        query = query.where(eq.type == equipment_type)
    return [
        Resource(row.id, row.name, row.type, row.status, tuple(sorted(row.capabilities or ())))
        for row in await session.execute(query)
    ]


async def operator_rows(session: AsyncSession, skill: str | None) -> list[Resource]:
    op, sk = t.Operator.__table__.c, t.OperatorSkill.__table__.c
    skills: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for row in await session.execute(select(sk.operator_id, sk.skill, sk.level)):
        skills[row.operator_id].append((row.skill, row.level))
    query = select(op.id, op.name).order_by(op.name, op.id)
    if skill:
        query = query.where(op.id.in_(select(sk.operator_id).where(sk.skill == skill)))
    return [
        Resource(
            row.id,
            row.name,
            " · ".join(f"{name} {level}" for name, level in sorted(skills[row.id])),
            "available",
            tuple(sorted(name for name, _ in skills[row.id])),
        )
        for row in await session.execute(query)
    ]


def _placed_query(schedule_id: int) -> Select[tuple[object, ...]]:
    a, tk = t.Assignment.__table__.c, t.Task.__table__.c
    jb, eq = t.Job.__table__.c, t.Equipment.__table__.c
    return (
        select(
            tk.id,
            tk.version,
            tk.name,
            tk.status,
            tk.job_id,
            jb.name.label("job_name"),
            jb.reference,
            jb.customer,
            tk.duration_minutes,
            tk.required_skill,
            tk.required_capability,
            a.operator_id,
            a.equipment_id,
            eq.type.label("equipment_type"),
            a.start,
            a.end,
        )
        .join_from(t.Assignment.__table__, t.Task.__table__, a.task_id == tk.id)
        .join(t.Job.__table__, jb.id == tk.job_id)
        .join(t.Equipment.__table__, eq.id == a.equipment_id)
        .where(a.schedule_id == schedule_id)
    )


def _placed(row: object) -> PlacedTask:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["task_id"] = values.pop("id")
    values["start"], values["end"] = as_utc(values["start"]), as_utc(values["end"])
    return PlacedTask(**values)


def bar_filter_clauses(filters: BoardFilter) -> list[ColumnElement[bool]]:
    tk, eq = t.Task.__table__.c, t.Equipment.__table__.c
    clauses: list[ColumnElement[bool]] = []
    if filters.job_id is not None:
        clauses.append(tk.job_id == filters.job_id)
    if filters.skill:
        clauses.append(tk.required_skill == filters.skill)
    if filters.equipment_type:
        clauses.append(eq.type == filters.equipment_type)
    return clauses


async def placed_in_window(
    session: AsyncSession,
    schedule_id: int,
    *,
    start: datetime,
    end: datetime,
    filters: BoardFilter,
    rows: str = "equipment",
    row_ids: Collection[int] | None = None,
) -> list[PlacedTask]:
    """The bars of the window; with `row_ids`, only those on these rows (by `rows`)."""
    a = t.Assignment.__table__.c
    query = _placed_query(schedule_id).where(a.start < end, a.end > start)
    if row_ids is not None:
        row = a.equipment_id if rows == "equipment" else a.operator_id
        query = query.where(row.in_(set(row_ids)))
    query = query.where(*bar_filter_clauses(filters)).order_by(a.start, a.task_id)
    return [_placed(row) for row in await session.execute(query)]


async def placed_ids_in_window(
    session: AsyncSession,
    schedule_id: int,
    *,
    start: datetime,
    end: datetime,
    filters: BoardFilter,
    rows: str,
    shown: Collection[int],
    among: Collection[int] | None = None,
) -> set[int]:
    """The ids of the bars `placed_in_window` would return on the rows `shown` (ids only:
    what a live change needs to tell which conflicts concern the board), of the tasks
    `among` when given."""
    a, tk, eq = t.Assignment.__table__.c, t.Task.__table__.c, t.Equipment.__table__.c
    row = a.equipment_id if rows == "equipment" else a.operator_id
    query = select(a.task_id, row.label("row")).where(
        a.schedule_id == schedule_id, a.start < end, a.end > start
    )
    if among is not None:
        query = query.where(a.task_id.in_(set(among)))
    if filters.job_id is not None or filters.skill:
        query = query.join(t.Task.__table__, tk.id == a.task_id)
    if filters.equipment_type:
        query = query.join(t.Equipment.__table__, eq.id == a.equipment_id)
    query = query.where(*bar_filter_clauses(filters))
    wanted = set(shown)
    return {found.task_id for found in await session.execute(query) if found.row in wanted}


async def booked_in_window(
    session: AsyncSession,
    schedule_id: int,
    *,
    start: datetime,
    end: datetime,
    rows: str,
    row_ids: Collection[int] | None = None,
) -> dict[int, list[tuple[datetime, datetime]]]:
    """Per row (machine or operator; of `row_ids` when given), the times booked in the
    window (every bar, no filter)."""
    a = t.Assignment.__table__.c
    row = a.equipment_id if rows == "equipment" else a.operator_id
    query = select(row.label("row"), a.start, a.end).where(
        a.schedule_id == schedule_id, a.start < end, a.end > start
    )
    if row_ids is not None:
        query = query.where(row.in_(set(row_ids)))
    booked: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for found in await session.execute(query):
        booked[found.row].append((as_utc(found.start), as_utc(found.end)))
    return booked


async def placed_tasks(
    session: AsyncSession, schedule_id: int, task_ids: Collection[int]
) -> dict[int, PlacedTask]:
    """Where these tasks are now (tasks that are not on the plan are left out)."""
    query = _placed_query(schedule_id).where(t.Assignment.__table__.c.task_id.in_(set(task_ids)))
    return {placed.task_id: placed for placed in map(_placed, await session.execute(query))}


def _tray_query(schedule_id: int, filters: BoardFilter) -> Select[tuple[object, ...]]:
    a, tk, jb = t.Assignment.__table__.c, t.Task.__table__.c, t.Job.__table__.c
    query = (
        select(
            tk.id,
            tk.version,
            tk.name,
            tk.status,
            tk.job_id,
            jb.name.label("job_name"),
            jb.reference,
            jb.customer,
            jb.due,
            tk.duration_minutes,
            tk.required_skill,
            tk.min_level,
            tk.required_capability,
        )
        .join_from(t.Task.__table__, t.Job.__table__, jb.id == tk.job_id)
        .outerjoin(t.Assignment.__table__, (a.task_id == tk.id) & (a.schedule_id == schedule_id))
        .where(a.task_id.is_(None), tk.status != TaskStatus.DONE)
    )
    if filters.job_id is not None:
        query = query.where(tk.job_id == filters.job_id)
    if filters.skill:
        query = query.where(tk.required_skill == filters.skill)
    return query


async def unscheduled_tasks(
    session: AsyncSession,
    schedule_id: int,
    *,
    filters: BoardFilter,
    capabilities: Collection[str] | None,
    limit: int,
    offset: int,
) -> tuple[list[TrayTask], int]:
    """A page of unscheduled tasks, most urgent job first; and how many there are.

    `capabilities`: only tasks one of these serves (the equipment-type filter).
    """
    tk, jb = t.Task.__table__.c, t.Job.__table__.c
    query = _tray_query(schedule_id, filters)
    if capabilities is not None:
        query = query.where(tk.required_capability.in_(set(capabilities)))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    page = query.order_by(jb.due.is_(None), jb.due, tk.job_id, tk.sequence, tk.id)
    rows = await session.execute(page.limit(limit).offset(offset))
    tray = [
        TrayTask(
            task_id=row.id,
            version=row.version,
            name=row.name,
            status=row.status,
            job_id=row.job_id,
            job_name=row.job_name,
            reference=row.reference,
            customer=row.customer,
            due=None if row.due is None else as_utc(row.due),
            duration_minutes=row.duration_minutes,
            required_skill=row.required_skill,
            min_level=row.min_level,
            required_capability=row.required_capability,
        )
        for row in rows
    ]
    return tray, int(total or 0)


async def capabilities_of_type(session: AsyncSession, equipment_type: str) -> set[str]:
    eq = t.Equipment.__table__.c
    found = await session.execute(select(eq.capabilities).where(eq.type == equipment_type))
    return {tag for (tags,) in found for tag in tags or ()}


async def plan_totals(session: AsyncSession, schedule_id: int) -> tuple[int, int]:
    """(tasks on the plan, tasks waiting to be scheduled)."""
    # One statement: this is asked for on every live change (board_changes.py). Waiting
    # is what the unfiltered tray (`_tray_query`) counts: not done and not on the plan.
    a, tk = t.Assignment.__table__.c, t.Task.__table__.c
    on_plan = (a.task_id == tk.id) & (a.schedule_id == schedule_id)
    scheduled = select(func.count()).select_from(t.Assignment.__table__)
    waiting = select(func.count()).select_from(t.Task.__table__)
    found = await session.execute(
        select(
            scheduled.where(a.schedule_id == schedule_id).scalar_subquery(),
            waiting.where(tk.status != TaskStatus.DONE, ~exists().where(on_plan)).scalar_subquery(),
        )
    )
    scheduled_count, waiting_count = found.one()
    return int(scheduled_count or 0), int(waiting_count or 0)


async def filter_choices(session: AsyncSession) -> tuple[list[str], list[str]]:
    """(equipment types, skills) the filters offer."""
    eq, sk = t.Equipment.__table__.c, t.OperatorSkill.__table__.c
    types = (await session.execute(select(eq.type).distinct().order_by(eq.type))).scalars()
    skills = (await session.execute(select(sk.skill).distinct().order_by(sk.skill))).scalars()
    return list(types), list(skills)


async def job_filter_label(session: AsyncSession, job_id: int) -> str | None:
    """A job as the job filter names it: "SO-24394 · Pump shaft PS-400" (None: no such job)."""
    jb = t.Job.__table__.c
    row = (await session.execute(select(jb.reference, jb.name).where(jb.id == job_id))).first()
    if row is None:
        return None
    return " · ".join(part for part in (row.reference, row.name) if part)


async def job_references(session: AsyncSession, task_ids: Collection[int]) -> dict[int, str]:
    """Per task, its job's order reference and customer ("SO-10234 · Keller AG")."""
    tk, jb = t.Task.__table__.c, t.Job.__table__.c
    rows = await session.execute(
        select(tk.id, jb.name, jb.reference, jb.customer)
        .join_from(t.Task.__table__, t.Job.__table__, jb.id == tk.job_id)
        .where(tk.id.in_(set(task_ids)))
    )
    return {row.id: job_label(row.reference, row.customer, row.name) for row in rows}


def job_label(reference: str, customer: str, name: str) -> str:
    """How a job is named where space is short: its order reference and customer."""
    return " · ".join(part for part in (reference, customer) if part) or name


async def user_name(session: AsyncSession, user_id: int) -> str | None:
    found = (
        await session.execute(
            select(t.User.display_name, t.User.username).where(t.User.id == user_id)
        )
    ).first()
    return None if found is None else (found.display_name or found.username)
