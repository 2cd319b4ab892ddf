"""Reading the board: one window of the plan, its conflicts, the tray.

Everything here reads; the board's edits go through `tasks.assign_task` like
any other. Each read happens in one transaction, so the bars, the conflicts
and the revision they carry describe the same moment of the plan.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.clock import as_utc
from app.db import board_queries as q, tables as t
from app.db.plan_queries import schedule_revision, schedule_timezone
from app.domain.conflicts import Conflict
from app.domain.plan import Interval
from app.domain.validation import capable as is_capable, qualified as is_qualified
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import InvalidInput, NotFound
from app.services.row_availability import RowAvailability, row_availability
from app.services.running_late import RunningLate, running_late_in
from app.services.window_conflicts import window_conflicts

TRAY_PAGE = 50
# Rows whose bars come with the page (most of a screen); board.js fetches the rest
# in blocks of as many as they scroll into sight (app/services/board_rows.py).
ROW_PAGE = 16


@dataclass(frozen=True, slots=True)
class BoardScope:
    """What part of the plan a board looks at (the service-side twin of `BoardView`)."""

    window: Interval
    rows: str  # "equipment" | "operator"
    filters: q.BoardFilter = field(default_factory=q.BoardFilter)

    def row_of(self, placed: q.PlacedTask) -> int:
        return placed.equipment_id if self.rows == "equipment" else placed.operator_id


@dataclass(frozen=True, slots=True)
class Tray:
    tasks: list[q.TrayTask]
    total: int
    offset: int = 0

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.tasks)
        return following if following < self.total else None


@dataclass(frozen=True, slots=True)
class Board:
    revision: int
    timezone: str
    resources: list[q.Resource]
    # The bars of the first ROW_PAGE rows (the rest come as the board scrolls), or of
    # every row when the view has few (settings.board_whole_up_to; `whole`).
    bars: list[q.PlacedTask]
    # Conflicts that involve at least one bar of the board.
    conflicts: list[Conflict]
    scheduled: int
    unscheduled: int
    tray: Tray
    equipment_types: list[str]
    skills: list[str]
    # Per conflict's first task: its job's reference and customer (the panel names it).
    refs: dict[int, str] = field(default_factory=dict)
    # Per row (resource id): its unavailable time and utilization in the window.
    availability: dict[int, RowAvailability] = field(default_factory=dict)
    # The filtered job's order reference and name ("SO-24394 · Pump shaft PS-400"), the
    # job filter's words (it suggests jobs as one types: GET /board/search?kind=job).
    job_label: str | None = None
    whole: bool = True
    # Tasks of the board in progress past their booked end (`running_late.py`).
    running_late: list[RunningLate] = field(default_factory=list)
    # How many of the (non out-of-service) conflicts the panel lists at first.
    conflicts_page: int = 50


async def load_board(*, services: Services, actor: Actor, scope: BoardScope) -> Board:
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.snapshot() as session:
        revision = await schedule_revision(session, schedule_id)
        resources = await rows_of(session, scope)
        shown = {resource.id for resource in resources}
        visible = await bar_ids(session, schedule_id, scope, shown)
        # A view of few bars (a small plant, one job) comes whole; a big one by rows.
        few = len(visible) <= services.settings.board_whole_up_to
        drawn = shown if few else {resource.id for resource in resources[:ROW_PAGE]}
        bars = await bars_on(session, schedule_id, scope, drawn)
        conflicts = await conflicts_on(services, session, schedule_id, revision, scope, visible)
        scheduled, unscheduled = await q.plan_totals(session, schedule_id)
        tray = await tray_of(session, schedule_id, scope.filters, offset=0)
        types, skills = await q.filter_choices(session)
        timezone = await schedule_timezone(session, schedule_id)
        refs = await conflict_refs(session, conflicts)
        availability = await row_availability(
            session,
            schedule_id,
            rows=scope.rows,
            window=scope.window,
            resources=resources,
            timezone=timezone,
        )
        job_label = (
            await q.job_filter_label(session, scope.filters.job_id)
            if scope.filters.job_id is not None
            else None
        )
        late = await running_late_in(
            session, schedule_id, window=scope.window, among=visible, now=clock.now()
        )
    return Board(
        revision,
        timezone,
        resources,
        bars,
        conflicts,
        scheduled,
        unscheduled,
        tray,
        types,
        skills,
        refs,
        availability,
        job_label,
        few,
        late,
        services.settings.board_conflicts_page,
    )


async def tray_page(
    *, services: Services, actor: Actor, filters: q.BoardFilter, offset: int
) -> Tray:
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session:
        return await tray_of(session, schedule_id, filters, offset=max(0, offset))


async def changed_by_name(*, services: Services, user_id: int | None) -> str | None:
    """The display name of whoever made a change (for the stale-edit notice)."""
    if user_id is None:
        return None
    async with services.db.read() as session:
        return await q.user_name(session, user_id)


async def resources(*, services: Services, actor: Actor) -> tuple[list[q.Resource], ...]:
    """(operators, equipment): every resource a task could be placed on."""
    require(actor, "plan.read")
    async with services.db.read() as session:
        return await q.operator_rows(session, None), await q.equipment_rows(session, None)


async def suggest_partner(
    *,
    services: Services,
    actor: Actor,
    task_id: int,
    operator_id: int | None,
    equipment_id: int | None,
    start: datetime,
    end: datetime,
) -> tuple[int, int]:
    """Complete a placement that names only one resource (a drop onto a row).

    The other resource stays what the task has now; a task without one gets
    the first qualified resource free at that time, else the first
    qualified, else the first there is (validation will say what is wrong).
    """
    require(actor, "plan.read")
    if operator_id is not None and equipment_id is not None:
        return operator_id, equipment_id
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        task = await session.get(t.Task, task_id)
        if task is None:
            raise NotFound("tasks", task_id)
        current = await session.get(t.Assignment, {"schedule_id": schedule_id, "task_id": task_id})
        if current is not None:
            return operator_id or current.operator_id, equipment_id or current.equipment_id
        busy = await _busy(session, schedule_id, Interval(as_utc(start), as_utc(end)))
        if operator_id is None:
            operators = await q.operator_rows(session, task.required_skill)
            levels = await _levels(session, task.required_skill)
            qualified = [
                op.id
                for op in operators
                if is_qualified(
                    _skills_of(op.id, task.required_skill, levels),
                    skill=task.required_skill,
                    min_level=task.min_level,
                )
            ]
            operator_id = _first(qualified, busy[0]) or _first(
                [op.id for op in await q.operator_rows(session, None)], set()
            )
        if equipment_id is None:
            machines = await q.equipment_rows(session, None)
            capable = [
                m.id
                for m in machines
                if m.status == "available"
                and is_capable(m.tags, capability=task.required_capability)
            ]
            equipment_id = _first(capable, busy[1]) or _first([m.id for m in machines], set())
    if operator_id is None or equipment_id is None:
        raise InvalidInput("the plant has no operators or no equipment to place the task on")
    return operator_id, equipment_id


# --- internals -------------------------------------------------------------------------------


async def bars_on(
    session: AsyncSession, schedule_id: int, scope: BoardScope, row_ids: Collection[int]
) -> list[q.PlacedTask]:
    """The board's bars on the rows `row_ids` (the page's first rows, or a block of them)."""
    return await q.placed_in_window(
        session,
        schedule_id,
        start=scope.window.start,
        end=scope.window.end,
        filters=scope.filters,
        rows=scope.rows,
        row_ids=row_ids,
    )


async def bar_ids(
    session: AsyncSession,
    schedule_id: int,
    scope: BoardScope,
    shown: Collection[int],
    among: Collection[int] | None = None,
) -> set[int]:
    """The ids of the board's bars on the rows `shown` (of the tasks `among` when given)."""
    return await q.placed_ids_in_window(
        session,
        schedule_id,
        start=scope.window.start,
        end=scope.window.end,
        filters=scope.filters,
        rows=scope.rows,
        shown=shown,
        among=among,
    )


async def rows_of(session: AsyncSession, scope: BoardScope) -> list[q.Resource]:
    if scope.rows == "operator":
        return await q.operator_rows(session, scope.filters.skill)
    return await q.equipment_rows(session, scope.filters.equipment_type)


async def conflicts_on(
    services: Services,
    session: AsyncSession,
    schedule_id: int,
    revision: int,
    scope: BoardScope,
    visible: set[int],
) -> list[Conflict]:
    if not visible:
        return []
    found = await window_conflicts(services, session, schedule_id, revision, scope.window)
    return [c for c in found if any(task_id in visible for task_id in c.task_ids)]


async def conflict_refs(session: AsyncSession, conflicts: list[Conflict]) -> dict[int, str]:
    firsts = {c.task_ids[0] for c in conflicts if c.task_ids}
    return await q.job_references(session, firsts) if firsts else {}


async def tray_of(
    session: AsyncSession, schedule_id: int, filters: q.BoardFilter, offset: int
) -> Tray:
    capabilities = await _capabilities(session, filters)
    tasks, total = await q.unscheduled_tasks(
        session,
        schedule_id,
        filters=filters,
        capabilities=capabilities,
        limit=TRAY_PAGE,
        offset=offset,
    )
    return Tray(tasks, total, offset)


async def tray_total_of(session: AsyncSession, schedule_id: int, filters: q.BoardFilter) -> int:
    capabilities = await _capabilities(session, filters)
    _, total = await q.unscheduled_tasks(
        session, schedule_id, filters=filters, capabilities=capabilities, limit=0, offset=0
    )
    return total


async def _capabilities(session: AsyncSession, filters: q.BoardFilter) -> set[str] | None:
    if not filters.equipment_type:
        return None
    return await q.capabilities_of_type(session, filters.equipment_type)


async def _busy(
    session: AsyncSession, schedule_id: int, slot: Interval
) -> tuple[set[int], set[int]]:
    a = t.Assignment.__table__.c
    rows = await session.execute(
        select(a.operator_id, a.equipment_id).where(
            a.schedule_id == schedule_id, a.start < slot.end, a.end > slot.start
        )
    )
    operators: set[int] = set()
    equipment: set[int] = set()
    for row in rows:
        operators.add(row.operator_id)
        equipment.add(row.equipment_id)
    return operators, equipment


async def _levels(session: AsyncSession, skill: str | None) -> dict[int, int]:
    if skill is None:
        return {}
    sk = t.OperatorSkill.__table__.c
    rows = await session.execute(select(sk.operator_id, sk.level).where(sk.skill == skill))
    return {row.operator_id: row.level for row in rows}


def _skills_of(operator_id: int, skill: str | None, levels: dict[int, int]) -> dict[str, int]:
    return {skill: levels[operator_id]} if skill is not None and operator_id in levels else {}


def _first(candidates: list[int], busy: set[int]) -> int | None:
    free = [candidate for candidate in candidates if candidate not in busy]
    found = free or candidates
    return found[0] if found else None


async def plant_timezone(*, services: Services) -> str:
    """The plant's time zone (IANA name): shifts, the axis and form times are in it."""
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session:
        return await schedule_timezone(session, schedule_id)
