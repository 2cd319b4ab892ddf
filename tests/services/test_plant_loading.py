from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app import clock
from app.db import tables
from app.db.session import Database
from app.domain.plants.demo_plant import DEMO_PASSWORD, demo_plant
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.domain.plants.plant_data import PlantData
from app.realtime.hub import MemoryHub
from app.security.crypto import DataCipher
from app.security.passwords import verify_password
from app.services.context import SYSTEM, Actor, Services
from app.services.errors import Forbidden, InvalidInput, StateConflict
from app.services.plant_loading import load_plant, plant_is_empty
from app.services.write_path import schedule_channel
from app.settings import Settings

START = datetime(2026, 3, 2, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    """An empty plant on a throwaway SQLite file: the schema and one live schedule."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'takt.db'}",
        redis_url=None,
        var_dir=tmp_path,
        plant_timezone="Europe/Berlin",
    )
    db = Database(settings.database_url)
    async with db.engine.begin() as connection:
        await connection.run_sync(tables.Base.metadata.create_all)
    async with db.write() as session:
        session.add(tables.Schedule(name="Live plan", kind="live", created_at=clock.now()))
    yield Services(settings=settings, db=db, hub=MemoryHub())
    await db.dispose()


@pytest.fixture(scope="module")
def small_demo() -> PlantData:
    return demo_plant("small", start=START)


async def count(services: Services, table: type[tables.Base]) -> int:
    async with services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_small_demo_loads_in_one_change(services: Services, small_demo: PlantData) -> None:
    assert await plant_is_empty(services)
    loaded = await load_plant(services=services, actor=SYSTEM, plant=small_demo)

    assert loaded.revision == 1
    assert loaded.counts() == small_demo.counts()
    assert not await plant_is_empty(services)
    for table, expected in [
        (tables.Equipment, len(small_demo.equipment)),
        (tables.Operator, len(small_demo.operators)),
        (tables.Job, len(small_demo.jobs)),
        (tables.Task, small_demo.task_count),
        (tables.Assignment, len(small_demo.assignments)),
        (tables.User, len(small_demo.users)),
        (tables.TaskDependency, sum(len(t.predecessors) for _, t in small_demo.tasks())),
        (tables.OperatorSkill, sum(len(o.skills) for o in small_demo.operators)),
        (tables.WeeklyShift, sum(len(o.weekly_shifts) for o in small_demo.operators)),
        (tables.CalendarException, sum(len(o.exceptions) for o in small_demo.operators)),
        (tables.EquipmentDowntime, sum(len(e.downtime) for e in small_demo.equipment)),
    ]:
        assert await count(services, table) == expected, table.__tablename__


async def test_change_log_and_audit_record_the_load_without_personal_data(
    services: Services, small_demo: PlantData
) -> None:
    loaded = await load_plant(services=services, actor=SYSTEM, plant=small_demo)
    async with services.db.read() as session:
        changes = (await session.execute(select(tables.ChangeLogEntry))).scalars().all()
        audits = (await session.execute(select(tables.AuditEntry))).scalars().all()
        schedule = (await session.execute(select(tables.Schedule))).scalar_one()
    assert [(c.revision, c.kind) for c in changes] == [(1, "plant.loaded")]
    assert sorted(changes[0].entity_ids["tasks"]) == sorted(loaded.tasks.values())
    assert len(audits) == 1
    audit = audits[0]
    assert (audit.action, audit.entity, audit.revision) == ("plant.loaded", "schedules", 1)
    assert audit.after is not None
    assert audit.after["counts"]["tasks"] == small_demo.task_count
    task_ids = loaded.tasks.values()
    assert audit.after["id_ranges"]["tasks"] == [min(task_ids), max(task_ids)]
    trail = json.dumps([audit.before, audit.after])
    assert "Olga" not in trail and "@" not in trail and DEMO_PASSWORD not in trail
    assert schedule.revision == 1 and schedule.timezone == "Europe/Berlin"


async def test_rows_carry_the_plan_facts(services: Services, small_demo: PlantData) -> None:
    loaded = await load_plant(services=services, actor=SYSTEM, plant=small_demo)
    first = small_demo.assignments[0]
    async with services.db.read() as session:
        by_status = select(tables.Task.status, func.count()).group_by(tables.Task.status)
        statuses = {status: n for status, n in (await session.execute(by_status)).all()}
        assignment = await session.get(
            tables.Assignment, (await services.live_schedule_id(), loaded.tasks[first.task_key])
        )
        olga_query = select(tables.User).where(tables.User.username == "olga")
        olga = (await session.execute(olga_query)).scalar_one()
        operator = await session.get(tables.Operator, olga.operator_id)
    assert statuses == {
        "scheduled": len(small_demo.assignments),
        "pending": small_demo.task_count - len(small_demo.assignments),
    }
    assert assignment is not None
    assert (assignment.start, assignment.end) == (first.start, first.end)
    assert assignment.operator_id == loaded.operators[first.operator_key]
    assert operator is not None and operator.name == "Olga Nowak"
    assert verify_password(olga.password_hash, DEMO_PASSWORD)
    assert operator.contact_encrypted is not None
    contact = json.loads(
        DataCipher(services.settings.data_keys).decrypt(operator.contact_encrypted)
    )
    assert contact["email"] == "olga.nowak@werk-demo.example"


async def test_what_has_happened_loads_as_done_and_in_progress(services: Services) -> None:
    now = START + timedelta(hours=11, minutes=20)
    plant = demo_plant("small", start=START, now=now)
    loaded = await load_plant(services=services, actor=SYSTEM, plant=plant)
    async with services.db.read() as session:
        rows = {task.id: task for task in (await session.scalars(select(tables.Task))).all()}
    expected = Counter(str(a.status) for a in plant.assignments)
    assert expected["done"] and expected["in_progress"]
    assert Counter(task.status for task in rows.values()) == expected + Counter(
        pending=plant.task_count - len(plant.assignments)
    )
    for a in plant.assignments:
        task = rows[loaded.tasks[a.task_key]]
        assert (task.actual_start, task.actual_end) == (a.actual_start, a.actual_end)


async def test_every_local_key_maps_to_its_own_row(
    services: Services, small_demo: PlantData
) -> None:
    loaded = await load_plant(services=services, actor=SYSTEM, plant=small_demo)
    async with services.db.read() as session:
        tasks = {row.id: row for row in (await session.execute(select(tables.Task))).scalars()}
        jobs = {row.id: row for row in (await session.execute(select(tables.Job))).scalars()}
        units = {row.id: row for row in (await session.execute(select(tables.Equipment))).scalars()}
    for job in small_demo.jobs:
        assert (jobs[loaded.jobs[job.key]].name, jobs[loaded.jobs[job.key]].due) == (
            job.name,
            job.due,
        )
        for sequence, task in enumerate(job.tasks):
            row = tasks[loaded.tasks[task.key]]
            assert (row.job_id, row.sequence, row.name, row.duration_minutes) == (
                loaded.jobs[job.key], sequence, task.name, task.duration_minutes,
            )  # fmt: skip
    assert all(units[loaded.equipment[e.key]].name == e.name for e in small_demo.equipment)


async def test_the_load_is_published_after_commit(
    services: Services, small_demo: PlantData
) -> None:
    channel = schedule_channel(await services.live_schedule_id())
    async with services.hub.subscribe(channel) as subscription:
        await load_plant(services=services, actor=SYSTEM, plant=small_demo)
        message = await subscription.get()
    assert (message["kind"], message["revision"]) == ("plant.loaded", 1)


async def test_ft06_imports_as_machines_jobs_and_tasks(services: Services, ft06_text: str) -> None:
    plant = to_plant_data(parse_jssp(ft06_text, name="ft06"), start=START)
    loaded = await load_plant(services=services, actor=SYSTEM, plant=plant, timezone="UTC")
    assert loaded.counts() == {
        "equipment": 6, "operators": 6, "jobs": 6, "tasks": 36, "assignments": 0, "users": 0,
    }  # fmt: skip
    assert await count(services, tables.TaskDependency) == 30
    assert await count(services, tables.WeeklyShift) == 42
    async with services.db.read() as session:
        timezone = await session.scalar(select(tables.Schedule.timezone))
    assert timezone == "UTC"


async def test_a_second_load_with_the_same_machines_changes_nothing(
    services: Services, ft06_text: str
) -> None:
    plant = to_plant_data(parse_jssp(ft06_text, name="ft06"), start=START)
    await load_plant(services=services, actor=SYSTEM, plant=plant)
    with pytest.raises(StateConflict, match="already has equipment named M0"):
        await load_plant(services=services, actor=SYSTEM, plant=plant)
    assert await count(services, tables.Job) == 6
    assert await count(services, tables.ChangeLogEntry) == 1


async def test_bad_time_zone_and_inconsistent_plants_are_rejected(
    services: Services, ft06_text: str
) -> None:
    plant = to_plant_data(parse_jssp(ft06_text, name="ft06"), start=START)
    with pytest.raises(InvalidInput, match="unknown time zone"):
        await load_plant(services=services, actor=SYSTEM, plant=plant, timezone="Mars/Olympus")
    doubled = PlantData(name="twice", equipment=plant.equipment * 2)
    with pytest.raises(InvalidInput, match="duplicate equipment key 'M0'"):
        await load_plant(services=services, actor=SYSTEM, plant=doubled)
    assert await plant_is_empty(services)


async def test_only_those_who_manage_resources_may_load(
    services: Services, small_demo: PlantData
) -> None:
    scheduler = Actor(user_id=1, role="scheduler")
    with pytest.raises(Forbidden):
        await load_plant(services=services, actor=scheduler, plant=small_demo)


async def test_demo_loads_on_a_migrated_database_of_either_backend(
    database_url: str, tmp_path: Path, small_demo: PlantData
) -> None:
    settings = Settings(database_url=database_url, redis_url=None, var_dir=tmp_path)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        loaded = await load_plant(services=services, actor=SYSTEM, plant=small_demo)
        async with services.db.read() as session:
            names = dict((await session.execute(select(tables.Task.id, tables.Task.name))).all())
        assert loaded.revision == 1
        assert all(names[loaded.tasks[t.key]] == t.name for _, t in small_demo.tasks())
        assert await count(services, tables.Assignment) == len(small_demo.assignments)
    finally:
        await services.db.dispose()
