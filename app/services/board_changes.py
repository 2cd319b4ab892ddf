"""How some tasks now look on one board: what a move's answer and the live feed
re-render (`board_changes`), read in one transaction like the board itself.

Besides the tasks' bars, tray entries and the counts, it carries what the
conflicts panel needs to re-send only the changed tasks' conflicts (their
jobs, for `late`) and the availability of the rows the change touched (their
load strips).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.db import board_queries as q, tables as t
from app.db.plan_queries import schedule_revision, schedule_timezone
from app.domain.conflicts import Conflict, ConflictType
from app.domain.plan import Interval
from app.services.access import require
from app.services.board import (
    BoardScope,
    Tray,
    bar_ids,
    conflict_refs,
    rows_of,
    tray_of,
    tray_total_of,
)
from app.services.context import Actor, Services
from app.services.row_availability import RowAvailability, row_availability
from app.services.running_late import RunningLate, late_in_window, shown_of
from app.services.window_conflicts import involves, window_conflicts


@dataclass(frozen=True, slots=True)
class BoardChanges:
    """How some tasks now look on one board (what the live feed re-renders)."""

    revision: int
    timezone: str
    resources: list[q.Resource]
    # Tasks now on this board, and tasks that must leave it.
    bars: list[q.PlacedTask]
    gone: set[int]
    conflicts: list[Conflict]
    scheduled: int
    unscheduled: int
    # The tray's first page when a task came back to it, else None.
    tray: Tray | None
    tray_total: int
    refs: dict[int, str] = field(default_factory=dict)
    # The jobs of the changed tasks (their `late` conflicts changed with them).
    jobs: set[int] = field(default_factory=set)
    # The tasks the change was about (in view or not).
    changed: set[int] = field(default_factory=set)
    # The touched rows of the board: their unavailable time and load now.
    availability: dict[int, RowAvailability] = field(default_factory=dict)
    # Tasks of the board in progress past their booked end (`running_late.py`).
    running_late: list[RunningLate] = field(default_factory=list)


BLOCKED = ConflictType.EQUIPMENT_UNAVAILABLE


async def board_changes(
    *,
    services: Services,
    actor: Actor,
    scope: BoardScope,
    task_ids: set[int],
    rows: Collection[int] = (),
) -> BoardChanges:
    """How `task_ids` now look on the board of `scope`, with the availability (load
    strip) of its `rows` among those the change touched."""
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.snapshot() as session:
        revision = await schedule_revision(session, schedule_id)
        resources = await rows_of(session, scope)
        shown = {resource.id for resource in resources}
        now_placed = await q.placed_tasks(session, schedule_id, task_ids)
        wanted = set((await session.execute(_matching(task_ids, scope.filters))).scalars())
        bars = [
            placed
            for placed in now_placed.values()
            if placed.task_id in wanted and _on_board(placed, scope, shown)
        ]
        found = await window_conflicts(services, session, schedule_id, revision, scope.window)
        late_anywhere = await late_in_window(
            session, schedule_id, window=scope.window, now=clock.now()
        )
        # Which of the conflicts' and the late tasks are bars of the board (not every
        # bar id of the window: a week has ~4,800, its conflicts' tasks a few hundred).
        visible = {bar.task_id for bar in bars}
        asked = {task_id for c in found for task_id in c.task_ids}
        visible |= await bar_ids(
            session, schedule_id, scope, shown, among=asked | {r.task_id for r in late_anywhere}
        )
        conflicts = [c for c in found if any(task_id in visible for task_id in c.task_ids)]
        scheduled, unscheduled = await q.plan_totals(session, schedule_id)
        back_in_tray = (task_ids - set(now_placed)) & wanted
        tray = await tray_of(session, schedule_id, scope.filters, 0) if back_in_tray else None
        if tray is not None:
            tray_total = tray.total
        elif scope.filters == q.BoardFilter():
            tray_total = unscheduled  # an unfiltered tray holds every task waiting
        else:
            tray_total = await tray_total_of(session, schedule_id, scope.filters)
        timezone = await schedule_timezone(session, schedule_id)
        jobs = await _jobs_of(session, task_ids)
        touched = [resource for resource in resources if resource.id in set(rows)]
        availability = (
            await row_availability(
                session,
                schedule_id,
                rows=scope.rows,
                window=scope.window,
                resources=touched,
                timezone=timezone,
            )
            if touched
            else {}
        )
        # Names only for what the answer re-sends: the changed tasks' conflicts and
        # the out-of-service group (web/board_conflicts.py conflicts_changed).
        refs = await conflict_refs(
            session, [c for c in conflicts if involves(c, task_ids, jobs) or c.type is BLOCKED]
        )
        late = shown_of(late_anywhere, visible)
    gone = set(task_ids) - {bar.task_id for bar in bars}
    return BoardChanges(
        revision,
        timezone,
        resources,
        bars,
        gone,
        conflicts,
        scheduled,
        unscheduled,
        tray,
        tray_total,
        refs,
        jobs,
        set(task_ids),
        availability,
        late,
    )


async def _jobs_of(session: AsyncSession, task_ids: set[int]) -> set[int]:
    tk = t.Task.__table__.c
    return set((await session.execute(select(tk.job_id).where(tk.id.in_(task_ids)))).scalars())


def _on_board(placed: q.PlacedTask, scope: BoardScope, shown: set[int]) -> bool:
    wanted_type = scope.filters.equipment_type
    return (
        scope.row_of(placed) in shown
        and (not wanted_type or placed.equipment_type == wanted_type)
        and Interval(placed.start, placed.end).overlaps(scope.window)
    )


def _matching(task_ids: set[int], filters: q.BoardFilter) -> Select[Any]:
    """Which of these tasks pass the board's job/skill filters (type is checked on the bar)."""
    tk = t.Task.__table__.c
    query = select(tk.id).where(tk.id.in_(task_ids))
    if filters.job_id is not None:
        query = query.where(tk.job_id == filters.job_id)
    if filters.skill:
        query = query.where(tk.required_skill == filters.skill)
    return query
