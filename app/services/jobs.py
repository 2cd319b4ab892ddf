"""Jobs: what the plant has to make, for whom, and by when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app.db import tables as t
from app.db.text_search import contains
from app.domain.plan import TaskStatus
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import InvalidInput, NotFound, StateConflict
from app.services.jsonable import jsonable
from app.services.views import JobView, job_view
from app.services.write_path import change, require_version

MAX_PAGE = 100


async def list_jobs(
    *,
    services: Services,
    actor: Actor,
    status: str | None,
    due_before: datetime | None,
    limit: int,
    offset: int,
    search: str | None = None,
) -> tuple[list[JobView], int]:
    require(actor, "plan.read")
    query = select(t.Job)
    if search:
        # Reference, name or customer: what a manager types to find an order.
        query = query.where(
            contains(t.Job.reference, search)
            | contains(t.Job.name, search)
            | contains(t.Job.customer, search)
        )
    if status:
        query = query.where(t.Job.status == status)
    if due_before:
        query = query.where(t.Job.due < due_before)
    async with services.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows = (
            await session.execute(
                query.order_by(t.Job.due.is_(None), t.Job.due, t.Job.id)
                .limit(min(limit, MAX_PAGE))
                .offset(offset)
            )
        ).scalars()
        return [job_view(row) for row in rows], int(total or 0)


async def task_counts(*, services: Services, actor: Actor, job_ids: list[int]) -> dict[int, int]:
    """How many tasks each of these jobs has (the plant pages' job list)."""
    require(actor, "plan.read")
    if not job_ids:
        return {}
    query = (
        select(t.Task.job_id, func.count())
        .where(t.Task.job_id.in_(job_ids))
        .group_by(t.Task.job_id)
    )
    async with services.db.read() as session:
        found = {int(job_id): int(count) for job_id, count in await session.execute(query)}
    return {job_id: found.get(job_id, 0) for job_id in job_ids}


async def get_job(*, services: Services, actor: Actor, job_id: int) -> JobView:
    require(actor, "plan.read")
    async with services.db.read() as session:
        row = await session.get(t.Job, job_id)
    if row is None:
        raise NotFound("jobs", job_id)
    return job_view(row)


async def create_job(*, services: Services, actor: Actor, data: dict[str, Any]) -> JobView:
    require(actor, "resources.manage")
    async with change(services, actor, "job.created") as tx:
        row = t.Job(**data)
        tx.session.add(row)
        await tx.session.flush()
        tx.audit("jobs", row.id, before=None, after=jsonable(data))
    return job_view(row)


async def update_job(
    *,
    services: Services,
    actor: Actor,
    job_id: int,
    expected_version: int | None,
    changes: dict[str, Any],
) -> JobView:
    require(actor, "resources.manage")
    require_version(expected_version)
    async with change(services, actor, "job.updated") as tx:
        row = await tx.claim(t.Job, job_id, expected_version)
        before = jsonable({key: getattr(row, key) for key in changes})
        for key, value in changes.items():
            setattr(row, key, value)
        if row.release and row.due and row.due <= row.release:
            raise InvalidInput("due must be after release", {"release": str(row.release)})
        tx.audit("jobs", job_id, before=before, after=jsonable(changes))
    return job_view(row)


async def delete_job(
    *, services: Services, actor: Actor, job_id: int, expected_version: int | None
) -> None:
    require(actor, "resources.manage")
    require_version(expected_version)
    async with change(services, actor, "job.deleted") as tx:
        row = await tx.claim(t.Job, job_id, expected_version)
        started = await tx.session.scalar(
            select(func.count()).where(
                t.Task.job_id == job_id,
                t.Task.status.in_((TaskStatus.IN_PROGRESS, TaskStatus.DONE)),
            )
        )
        if started:
            raise StateConflict(
                f"job {job_id} has {started} started or done tasks; cancel it instead",
                {"started_tasks": started},
            )
        task_ids = list(
            (await tx.session.execute(select(t.Task.id).where(t.Task.job_id == job_id))).scalars()
        )
        await tx.session.delete(row)
        tx.touch("tasks", *task_ids)
        tx.audit("jobs", job_id, before={"tasks": task_ids}, after=None)
