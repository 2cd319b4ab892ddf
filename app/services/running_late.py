"""Tasks running late: started, and still not done after their booked end.

    late = await running_late_in(session, schedule_id, window=w, among=visible, now=now)
    ids = await became_late(services, after=last_look, until=now)

The plan does not know a task overran: its slot still ends when it was
booked to, so no validation rule fires. The floor knows (the task is in
progress past that end), and what is booked after it on its machine and
with its operator is about to be hit. The board lists these beside the
conflicts, each with "Review repair" (`repair.TaskLate`). Since no change
makes a task late, the live boards ask `became_late` every little while
(`realtime/live.py`) and re-send the list when a task of theirs has.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import as_utc
from app.db import tables as t
from app.db.board_queries import job_label
from app.domain.plan import Interval, TaskStatus
from app.services.context import Services

__all__ = ["RunningLate", "became_late", "late_in_window", "running_late_in", "shown_of"]

# A board lists at most this many (a plant with more has a bigger problem than a list).
SHOWN = 50


@dataclass(frozen=True, slots=True)
class RunningLate:
    task_id: int
    name: str
    job: str  # its order reference and customer, else the job's name
    operator_id: int
    equipment_id: int
    booked_end: datetime


async def running_late_in(
    session: AsyncSession,
    schedule_id: int,
    *,
    window: Interval,
    among: Collection[int],
    now: datetime,
) -> list[RunningLate]:
    """The tasks of `among` in progress past their booked end, which ends in `window`."""
    if not among:
        return []
    return shown_of(await late_in_window(session, schedule_id, window=window, now=now), among)


def shown_of(late: list[RunningLate], among: Collection[int]) -> list[RunningLate]:
    """Of `late`, those of `among` (a board's bars), as many as a board lists."""
    return [r for r in late if r.task_id in among][:SHOWN]


async def late_in_window(
    session: AsyncSession, schedule_id: int, *, window: Interval, now: datetime
) -> list[RunningLate]:
    """Every task in progress past its booked end, which ends in `window`, by that end
    (on any row, in any filter: `shown_of` keeps a board's)."""
    tk, jb, a = t.Task.__table__.c, t.Job.__table__.c, t.Assignment.__table__.c
    rows = await session.execute(
        select(
            tk.id,
            tk.name,
            jb.name.label("job_name"),
            jb.reference,
            jb.customer,
            a.operator_id,
            a.equipment_id,
            a.end,
        )
        .join_from(t.Task.__table__, t.Job.__table__, jb.id == tk.job_id)
        .join(t.Assignment.__table__, (a.task_id == tk.id) & (a.schedule_id == schedule_id))
        .where(tk.status == TaskStatus.IN_PROGRESS, a.end < now, a.end > window.start)
        .order_by(a.end, tk.id)
    )
    return [
        RunningLate(
            task_id=row.id,
            name=row.name,
            job=job_label(row.reference, row.customer, row.job_name),
            operator_id=row.operator_id,
            equipment_id=row.equipment_id,
            booked_end=as_utc(row.end),
        )
        for row in rows
    ]


async def became_late(services: Services, *, after: datetime, until: datetime) -> set[int]:
    """The tasks in progress whose booked end fell in (`after`, `until`] of the live plan."""
    schedule_id = await services.live_schedule_id()
    tk, a = t.Task.__table__.c, t.Assignment.__table__.c
    async with services.db.read() as session:
        rows = await session.execute(
            select(tk.id)
            .join_from(t.Task.__table__, t.Assignment.__table__, a.task_id == tk.id)
            .where(
                a.schedule_id == schedule_id,
                tk.status == TaskStatus.IN_PROGRESS,
                a.end > after,
                a.end <= until,
            )
        )
        return {task_id for (task_id,) in rows}
