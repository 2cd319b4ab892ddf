"""Tasks: what they are, where they sit on the plan, and who works on them.

Placing a task (assign/unschedule) is a scheduler's move; start/pause/complete
are an operator's, on their own tasks only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables as t
from app.domain.bounds import slot_error
from app.domain.conflicts import Conflict
from app.domain.critical_path import find_cycle
from app.domain.plan import Task as PlanTask, TaskStatus
from app.services import schedule
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import (
    InvalidInput,
    NotFound,
    StateConflict,
)
from app.services.jsonable import jsonable
from app.services.placing import (
    Placement as Placement,
    slot_of,
)  # Placement: assign_task's argument
from app.services.views import (
    TASK_COLUMNS,
    TaskView,
    alternatives_of,
    predecessors_of,
    task_view_of_row,
    task_views,
)
from app.services.window_conflicts import keep_task_conflicts
from app.services.write_path import Transaction, change, require_version

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class TaskFilter:
    job_id: int | None = None
    status: str | None = None
    operator_id: int | None = None
    equipment_id: int | None = None
    scheduled: bool | None = None
    starts_before: datetime | None = None
    ends_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class Placed:
    task: TaskView
    conflicts: list[Conflict]
    revision: int


# --- reading ---------------------------------------------------------------------------------


async def list_tasks(
    *, services: Services, actor: Actor, filters: TaskFilter, limit: int, offset: int
) -> tuple[list[TaskView], int]:
    schedule_id = await services.live_schedule_id()
    if actor.role == "operator":
        # Operators see their own assignments, whatever the filter asks for.
        filters = replace(filters, operator_id=actor.operator_id or -1)
    else:
        require(actor, "plan.read")
    tk, a = t.Task.__table__.c, t.Assignment.__table__.c
    counted = _filtered(select(tk.id), filters, schedule_id).subquery()
    page = (
        _filtered(select(*(tk[name] for name in TASK_COLUMNS)), filters, schedule_id)
        .order_by(tk.job_id, tk.sequence, tk.id)
        .limit(min(limit, MAX_PAGE))
        .offset(offset)
        .subquery()
    )
    # The page first, then its assignments: joining before the OFFSET would join
    # every skipped row too.
    query = (
        select(page, a.operator_id, a.equipment_id, a.start, a.end)
        .outerjoin(t.Assignment, (a.task_id == page.c.id) & (a.schedule_id == schedule_id))
        .order_by(page.c.job_id, page.c.sequence, page.c.id)
    )
    async with services.db.read() as session:
        # The busiest read: three Core statements (was four, with ORM objects).
        total = await session.scalar(select(func.count()).select_from(counted))
        rows = (await session.execute(query)).all()
        predecessors = await predecessors_of(session, [row.id for row in rows])
        alternatives = await alternatives_of(session, [row.id for row in rows])
    views = [task_view_of_row(row, predecessors[row.id], alternatives[row.id]) for row in rows]
    return views, int(total or 0)


def _filtered(query: Any, filters: TaskFilter, schedule_id: int) -> Any:
    a = t.Assignment
    placed = (a.task_id == t.Task.id) & (a.schedule_id == schedule_id)
    by_assignment = {
        "operator_id": lambda v: a.operator_id == v,
        "equipment_id": lambda v: a.equipment_id == v,
        "starts_before": lambda v: a.start < v,
        "ends_after": lambda v: a.end > v,
    }
    wanted = {k: v for k, v in asdict(filters).items() if v is not None}
    if filters.scheduled is False:
        query = query.outerjoin(a, placed).where(a.task_id.is_(None))
    elif filters.scheduled or wanted.keys() & by_assignment.keys():
        query = query.join(a, placed)
    for name, value in wanted.items():
        if name in by_assignment:
            query = query.where(by_assignment[name](value))
    if filters.job_id is not None:
        query = query.where(t.Task.job_id == filters.job_id)
    if filters.status is not None:
        query = query.where(t.Task.status == filters.status)
    return query


async def get_task(*, services: Services, actor: Actor, task_id: int) -> TaskView:
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session:
        row = await session.get(t.Task, task_id)
        if row is None:
            raise NotFound("tasks", task_id)
        view = (await task_views(session, schedule_id, [row]))[0]
    _check_can_see(actor, view)
    return view


def _check_can_see(actor: Actor, view: TaskView) -> None:
    if actor.role != "operator":
        require(actor, "plan.read")
        return
    placed = view["assignment"]
    if placed is None or placed["operator_id"] != actor.operator_id:
        # Not "forbidden": an operator must not learn that the task exists.
        raise NotFound("tasks", view["id"])


async def _view_in(tx: Transaction, row: t.Task) -> TaskView:
    """The task as this transaction leaves it: the answer to a write is built before
    commit, so a committed write is never answered with an error by a re-read."""
    await tx.session.flush()
    return (await task_views(tx.session, tx.schedule_id, [row]))[0]


# --- defining tasks --------------------------------------------------------------------------


async def create_task(*, services: Services, actor: Actor, data: dict[str, Any]) -> TaskView:
    require(actor, "resources.manage")
    predecessors = list(dict.fromkeys(data.pop("predecessors", [])))
    alternatives = data.pop("alternatives", [])
    async with change(services, actor, "task.created") as tx:
        if await tx.session.get(t.Job, data["job_id"]) is None:
            raise InvalidInput("job does not exist", {"job_id": data["job_id"]})
        row = t.Task(**data)
        tx.session.add(row)
        await tx.session.flush()
        await _set_predecessors(tx.session, row, predecessors)
        await _set_alternatives(tx.session, row.id, alternatives)
        after = {**data, "predecessors": predecessors, "alternatives": alternatives}
        tx.audit("tasks", row.id, before=None, after=jsonable(after))
        view = await _view_in(tx, row)
    return view


async def update_task(
    *,
    services: Services,
    actor: Actor,
    task_id: int,
    expected_version: int | None,
    changes: dict[str, Any],
) -> TaskView:
    require(actor, "resources.manage")
    require_version(expected_version)
    async with change(services, actor, "task.updated") as tx:
        row = await tx.claim(t.Task, task_id, expected_version)
        links = ("predecessors", "alternatives")
        before = {key: getattr(row, key) for key in changes if key not in links}
        if "predecessors" in changes:
            before["predecessors"] = await _predecessor_ids(tx.session, task_id)
            await _set_predecessors(tx.session, row, list(dict.fromkeys(changes["predecessors"])))
        if "alternatives" in changes:
            before["alternatives"] = (await alternatives_of(tx.session, [task_id]))[task_id]
            await _set_alternatives(tx.session, task_id, changes["alternatives"])
        for key, value in changes.items():
            if key not in links:
                setattr(row, key, value)
        tx.audit("tasks", task_id, before=jsonable(before), after=jsonable(changes))
        if {"duration_minutes", "alternatives"} & changes.keys():
            await _slot_follows_duration(tx, row)
        view = await _view_in(tx, row)
    return view


async def _slot_follows_duration(tx: Transaction, task: t.Task) -> None:
    """A booked task that has not started keeps its start and takes its new length (its
    minutes on its machine where it has routings); a started one keeps its slot."""
    if task.status != TaskStatus.SCHEDULED:
        return
    slot = await slot_of(tx, task.id)
    if slot is None:
        return
    ta = t.TaskAlternative
    routed = await tx.session.scalar(
        select(ta.duration_minutes).where(
            ta.task_id == task.id, ta.equipment_id == slot.equipment_id
        )
    )
    end = slot.start + timedelta(minutes=routed or task.duration_minutes)
    if end != slot.end:
        placement = Placement(slot.operator_id, slot.equipment_id, slot.start, end)
        await tx.place(task, placement, slot=slot)


async def delete_task(
    *, services: Services, actor: Actor, task_id: int, expected_version: int | None
) -> None:
    require(actor, "resources.manage")
    require_version(expected_version)
    async with change(services, actor, "task.deleted") as tx:
        row = await tx.claim(t.Task, task_id, expected_version)
        if row.status in (TaskStatus.IN_PROGRESS, TaskStatus.DONE):
            raise StateConflict(f"task {task_id} is {row.status} and cannot be deleted")
        await tx.session.delete(row)
        tx.audit("tasks", task_id, before={"job_id": row.job_id}, after=None)


async def _set_alternatives(
    session: AsyncSession, task_id: int, alternatives: list[dict[str, int]]
) -> None:
    """Replace the task's alternative routings (equipment id, minutes there)."""
    wanted = [a["equipment_id"] for a in alternatives]
    if len(set(wanted)) != len(wanted):
        raise InvalidInput("an equipment is named twice in the alternatives", {"equipment": wanted})
    known = set(
        (await session.execute(select(t.Equipment.id).where(t.Equipment.id.in_(wanted)))).scalars()
    )
    if unknown := sorted(set(wanted) - known):
        raise InvalidInput(
            "alternative routings name equipment that does not exist", {"unknown": unknown}
        )
    ta = t.TaskAlternative
    await session.execute(delete(ta).where(ta.task_id == task_id))
    session.add_all(
        ta(task_id=task_id, equipment_id=a["equipment_id"], duration_minutes=a["duration_minutes"])
        for a in alternatives
    )
    await session.flush()


async def _predecessor_ids(session: AsyncSession, task_id: int) -> list[int]:
    query = select(t.TaskDependency.predecessor_id).where(t.TaskDependency.task_id == task_id)
    return sorted((await session.execute(query)).scalars())


async def _set_predecessors(session: AsyncSession, row: t.Task, predecessors: list[int]) -> None:
    if row.id in predecessors:
        raise InvalidInput("a task cannot precede itself", {"predecessors": predecessors})
    known = set(
        (await session.execute(select(t.Task.id).where(t.Task.id.in_(predecessors)))).scalars()
    )
    if unknown := sorted(set(predecessors) - known):
        raise InvalidInput("predecessor tasks do not exist", {"unknown": unknown})
    await session.execute(delete(t.TaskDependency).where(t.TaskDependency.task_id == row.id))
    session.add_all(t.TaskDependency(task_id=row.id, predecessor_id=p) for p in predecessors)
    await session.flush()
    edges = (await session.execute(select(t.TaskDependency))).scalars()
    graph: dict[int, list[int]] = {}
    for edge in edges:
        graph.setdefault(edge.task_id, []).append(edge.predecessor_id)
    cycle = find_cycle(
        [
            PlanTask(id=tid, job_id=0, name="", duration_minutes=1, predecessors=tuple(preds))
            for tid, preds in graph.items()
        ]
    )
    if cycle:
        raise InvalidInput("predecessors would form a cycle", {"cycle": cycle})


# --- placing tasks on the plan ---------------------------------------------------------------


async def assign_task(
    *,
    services: Services,
    actor: Actor,
    task_id: int,
    expected_version: int | None,
    placement: Placement,
) -> Placed:
    require(actor, "assignment.write")
    require_version(expected_version)
    if (error := slot_error(placement.start, placement.end)) is not None:
        raise InvalidInput(error, {"start": str(placement.start), "end": str(placement.end)})
    async with change(services, actor, "assignment.set") as tx:
        task = await tx.claim(t.Task, task_id, expected_version)
        if task.status == TaskStatus.DONE:
            raise StateConflict(f"task {task_id} is done; it cannot be moved")
        await _check_resources_exist(tx.session, placement)
        await tx.place(task, placement)
        view = await _view_in(tx, task)
        conflicts = await schedule.conflicts_in(tx.session, tx.schedule_id, task_id)
        tx.found(task_id, conflicts)
    assert tx.revision is not None
    keep_task_conflicts(services, tx.schedule_id, tx.revision, task_id, conflicts)
    return Placed(task=view, conflicts=conflicts, revision=tx.revision)


async def unschedule_task(
    *, services: Services, actor: Actor, task_id: int, expected_version: int | None
) -> TaskView:
    require(actor, "assignment.write")
    require_version(expected_version)
    async with change(services, actor, "assignment.removed") as tx:
        task = await tx.claim(t.Task, task_id, expected_version)
        await tx.unplace(task)
        view = await _view_in(tx, task)
    return view


async def routed_end(
    *, services: Services, task_id: int, equipment_id: int, start: datetime, end: datetime
) -> datetime:
    """Where a slot from `start` on that equipment ends: the task's duration there when
    it has alternative routings (the board's drop carries the bar's old length),
    else `end` as given."""
    ta = t.TaskAlternative
    async with services.db.read() as session:
        query = select(ta.equipment_id, ta.duration_minutes).where(ta.task_id == task_id)
        routings = {row.equipment_id: row.duration_minutes for row in await session.execute(query)}
        if not routings:
            return end
        minutes = routings.get(equipment_id) or await session.scalar(
            select(t.Task.duration_minutes).where(t.Task.id == task_id)
        )
    return end if minutes is None else start + timedelta(minutes=minutes)


async def _check_resources_exist(session: AsyncSession, placement: Placement) -> None:
    missing = {}
    if await session.get(t.Operator, placement.operator_id) is None:
        missing["operator_id"] = placement.operator_id
    if await session.get(t.Equipment, placement.equipment_id) is None:
        missing["equipment_id"] = placement.equipment_id
    if missing:
        raise InvalidInput("the assignment names resources that do not exist", missing)
