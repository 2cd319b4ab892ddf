"""What depends on a machine or an operator: the words of a refused delete.

"3 tasks of job J-104 and 1 task of job J-105 are planned on Mill 1; move them
first" tells a manager where to look; "equipment 7 has 4 assignments" did not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables as t
from app.services.errors import StateConflict

SHOWN_JOBS = 3


async def planned_by_job(session: AsyncSession, column: Any, row_id: int) -> list[tuple[str, int]]:
    """(job label, tasks planned) for the assignments whose `column` is `row_id`, most first."""
    a = t.Assignment
    count = func.count(a.task_id)
    query = (
        select(t.Job.id, t.Job.reference, t.Job.name, count)
        .select_from(a)
        .join(t.Task, t.Task.id == a.task_id)
        .join(t.Job, t.Job.id == t.Task.job_id)
        .where(column == row_id)
        .group_by(t.Job.id, t.Job.reference, t.Job.name)
        .order_by(count.desc(), t.Job.id)
    )
    rows = await session.execute(query)
    return [(reference or name, int(n)) for _, reference, name, n in rows]


def planned_message(by_job: list[tuple[str, int]], where: str) -> str:
    """ "3 tasks of job J-104 and 1 task of job J-105 are planned on Mill 1; move them first"."""
    parts = [f"{n} task{'s' if n != 1 else ''} of job {label}" for label, n in by_job[:SHOWN_JOBS]]
    if len(by_job) > SHOWN_JOBS:
        rest = sum(n for _, n in by_job[SHOWN_JOBS:])
        parts.append(f"{rest} more of {len(by_job) - SHOWN_JOBS} other jobs")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    total = sum(n for _, n in by_job)
    verb = "is" if total == 1 else "are"
    return f"{listed} {verb} planned {where}; move them first"


async def refuse_planned(session: AsyncSession, column: Any, row_id: int, where: str) -> None:
    """Refuse (409) to delete the resource whose `column` is `row_id` while work is planned
    on it, naming the jobs; `where` ends the message ("on Mill 1", "for this operator")."""
    by_job = await planned_by_job(session, column, row_id)
    if by_job:
        raise StateConflict(
            planned_message(by_job, where),
            {"assignments": sum(n for _, n in by_job), "jobs": [j for j, _ in by_job]},
        )
