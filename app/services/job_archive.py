"""Archiving finished work orders: done jobs leave the live tables after a while.

    count, files = await archive_finished_jobs(services=s, actor=SYSTEM, before=cut, into=folder)

A job is finished when every one of its tasks is done; it is archived once
its last task ended before `before` (`TAKT_FINISHED_JOBS_KEEP_DAYS`, 180 by
default). Up to `JOBS_PER_FILE` jobs at a time go, whole, to one gzip'd
JSON-lines file in the archive folder (one line per job: the job, its tasks
with their dependencies and alternatives, and where and when each ran), and
are deleted from the live tables in the same transaction, under the
schedule's row lock (`write_path.upkeep`), with one audit entry naming the
file and its sha256. The audit trail keeps its entries about those jobs (ids
only), so the history stays verifiable; the board, the optimizer and the
plant's lists no longer carry years of finished work.

Cancelled jobs, and jobs with a task not done, stay.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, delete, func, inspect, select

from app.db import tables as t
from app.db.audit_archive import write_entries
from app.domain.plan import TaskStatus
from app.services.context import Actor, Services
from app.services.write_path import upkeep

JOBS_PER_FILE = 500


async def archive_finished_jobs(
    *, services: Services, actor: Actor, before: datetime, into: Path
) -> tuple[int, list[str]]:
    """Archive every finished job whose last task ended before `before`; how many, the files."""
    total, files = 0, []
    while (batch := await _archive_batch(services, actor, before, into)) is not None:
        total += batch[0]
        files.append(batch[1])
    return total, files


def finished_before(before: datetime) -> Any:
    """The ids of jobs whose every task is done, the last of them ended before `before`."""
    task = t.Task
    return (
        select(task.job_id)
        .group_by(task.job_id)
        .having(
            func.sum(case((task.status != TaskStatus.DONE.value, 1), else_=0)) == 0,
            func.max(task.actual_end) < before,
        )
    )


async def _archive_batch(
    services: Services, actor: Actor, before: datetime, into: Path
) -> tuple[int, str] | None:
    async with upkeep(services, actor, "jobs.archived") as work:
        session = work.session
        job_ids = list(
            (
                await session.execute(
                    select(t.Job.id)
                    .where(t.Job.id.in_(finished_before(before)), t.Job.status != "cancelled")
                    .order_by(t.Job.id)
                    .limit(JOBS_PER_FILE)
                )
            ).scalars()
        )
        if not job_ids:
            return None
        lines = await _lines(session, job_ids)
        name = f"jobs-{job_ids[0]:012d}-{job_ids[-1]:012d}-{before:%Y%m%d}.jsonl.gz"
        digest = await asyncio.to_thread(write_entries, into / name, lines)
        task_ids = select(t.Task.id).where(t.Task.job_id.in_(job_ids))
        for table, column in (
            (t.Assignment, t.Assignment.task_id),
            (t.TaskAlternative, t.TaskAlternative.task_id),
            (t.DraftTask, t.DraftTask.task_id),
        ):
            await session.execute(delete(table).where(column.in_(task_ids)))
        deps = t.TaskDependency
        await session.execute(
            delete(deps).where(deps.task_id.in_(task_ids) | deps.predecessor_id.in_(task_ids))
        )
        await session.execute(delete(t.Task).where(t.Task.job_id.in_(job_ids)))
        await session.execute(delete(t.Job).where(t.Job.id.in_(job_ids)))
        work.done = {
            "jobs": len(job_ids),
            "first_job_id": job_ids[0],
            "last_job_id": job_ids[-1],
            "file": name,
            "sha256": digest,
        }
    return len(job_ids), name


async def _lines(session: Any, job_ids: list[int]) -> list[dict[str, Any]]:
    jobs = (await session.execute(select(t.Job).where(t.Job.id.in_(job_ids)))).scalars()
    tasks = list(
        (await session.execute(select(t.Task).where(t.Task.job_id.in_(job_ids)))).scalars()
    )
    ids = [task.id for task in tasks]
    placed = {
        row.task_id: row
        for row in (
            await session.execute(select(t.Assignment).where(t.Assignment.task_id.in_(ids)))
        ).scalars()
    }
    after: dict[int, list[int]] = {}
    for task_id, predecessor in await session.execute(
        select(t.TaskDependency.task_id, t.TaskDependency.predecessor_id).where(
            t.TaskDependency.task_id.in_(ids)
        )
    ):
        after.setdefault(task_id, []).append(predecessor)
    routes: dict[int, list[dict[str, int]]] = {}
    for alt in (
        await session.execute(select(t.TaskAlternative).where(t.TaskAlternative.task_id.in_(ids)))
    ).scalars():
        routes.setdefault(alt.task_id, []).append(
            {"equipment_id": alt.equipment_id, "duration_minutes": alt.duration_minutes}
        )
    by_job: dict[int, list[dict[str, Any]]] = {}
    for task in tasks:
        by_job.setdefault(task.job_id, []).append(
            _columns(task)
            | {
                "predecessors": sorted(after.get(task.id, [])),
                "alternatives": routes.get(task.id, []),
                "assignment": _columns(placed[task.id]) if task.id in placed else None,
            }
        )
    return [
        {"job": _columns(job), "tasks": sorted(by_job.get(job.id, []), key=lambda x: x["id"])}
        for job in jobs
    ]


def _columns(row: Any) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}
