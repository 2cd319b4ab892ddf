"""Finished jobs leave the live tables for archive files after their age; the rest stays.

The world: a three-job shop loaded now, its jobs' tasks marked as they ran,
relative to now: job A done 200 days ago, job B done 10 days ago, job C done
200 days ago but for one task still open. With a 180-day age only A goes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app import clock
from app.db import tables as t
from app.db.audit_archive import file_digest
from app.db.session import Database
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.realtime.hub import MemoryHub
from app.services import retention
from app.services.audit import verify_chain
from app.services.context import SYSTEM, Services
from app.services.job_archive import archive_finished_jobs
from app.services.plant_loading import load_plant
from app.settings import Settings

SHOP = """\
3 2
0 3  1 2
1 2  0 1
0 1  1 1
"""


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(database_url=database_url, var_dir=tmp_path / "var", redis_url=None)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    yield services
    await services.db.dispose()


async def shop(services: Services) -> list[int]:
    """The three jobs (ids in order), their tasks run as the module docstring says."""
    plant = to_plant_data(parse_jssp(SHOP, name="s"), start=clock.now() + timedelta(hours=1))
    await load_plant(services=services, actor=SYSTEM, plant=plant)
    async with services.db.write() as session:
        jobs = list((await session.execute(select(t.Job.id).order_by(t.Job.id))).scalars())
        for job_id, days_ago in zip(jobs, (200, 10, 200), strict=True):
            await finish(session, job_id, clock.now() - timedelta(days=days_ago))
        first_task = await session.scalar(
            select(func.min(t.Task.id)).where(t.Task.job_id == jobs[2])
        )
        await session.execute(
            update(t.Task)
            .where(t.Task.id == first_task)
            .values(status="in_progress", actual_end=None)
        )
    return jobs


async def finish(session: object, job_id: int, ended: datetime) -> None:
    await session.execute(  # type: ignore[attr-defined]
        update(t.Task)
        .where(t.Task.job_id == job_id)
        .values(status="done", actual_start=ended - timedelta(hours=1), actual_end=ended)
    )


async def rows(services: Services, table: type[t.Base], **where: int) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(getattr(table, name) == value)
    async with services.db.read() as session:
        return int(await session.scalar(query) or 0)


async def test_only_jobs_finished_before_the_cut_go_whole_to_a_file(
    services: Services, tmp_path: Path
) -> None:
    a, b, c = await shop(services)
    tasks_of_a = await rows(services, t.Task, job_id=a)
    deps_before = await rows(services, t.TaskDependency)
    folder = tmp_path / "archive"

    count, files = await archive_finished_jobs(
        services=services, actor=SYSTEM, before=clock.now() - timedelta(days=180), into=folder
    )

    assert count == 1 and len(files) == 1
    assert await rows(services, t.Job, id=a) == 0
    assert await rows(services, t.Task, job_id=a) == 0
    assert await rows(services, t.Job, id=b) == 1 and await rows(services, t.Job, id=c) == 1
    assert await rows(services, t.TaskDependency) == deps_before - (tasks_of_a - 1)
    with gzip.open(folder / files[0], "rt", encoding="utf-8") as lines:
        archived = [json.loads(line) for line in lines]
    assert [line["job"]["id"] for line in archived] == [a]
    assert len(archived[0]["tasks"]) == tasks_of_a
    assert archived[0]["tasks"][1]["predecessors"] == [archived[0]["tasks"][0]["id"]]
    assert all(task["status"] == "done" for task in archived[0]["tasks"])

    async with services.db.read() as session:
        entry = await session.scalar(
            select(t.AuditEntry).where(t.AuditEntry.action == "jobs.archived")
        )
    assert entry is not None and entry.after is not None
    assert entry.after["file"] == files[0]
    assert entry.after["sha256"] == file_digest(folder / files[0])
    assert (await verify_chain(services)).intact

    again = await archive_finished_jobs(
        services=services, actor=SYSTEM, before=clock.now() - timedelta(days=180), into=folder
    )
    assert again == (0, [])


async def test_retention_archives_finished_jobs_by_the_configured_age(
    services: Services,
) -> None:
    *_, c = await shop(services)
    services.settings.finished_jobs_keep_days = 5
    done = await retention.run_retention(services=services)
    assert done.archived_jobs == 2  # A and B; C still has a task open
    assert await rows(services, t.Job) == 1 and await rows(services, t.Job, id=c) == 1
    assert (retention.archive_folder(services) / done.job_files[0]).is_file()
