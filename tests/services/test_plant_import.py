"""Plant data in and out through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clocks import PlantTime
from sqlalchemy import func, select

from app.db import tables as t
from app.db.session import Database
from app.domain.plants.demo_plant import demo_plant
from app.domain.plants.layout import COLUMNS, KINDS
from app.realtime.hub import MemoryHub
from app.services import plant_export, plant_import, plant_loading
from app.services.context import SYSTEM, Actor, Services
from app.services.errors import Forbidden, InvalidInput
from app.services.plant_import import PlantFile
from app.services.run_kinds import attach_queue
from app.settings import Settings

MANAGER = Actor(user_id=None, role="manager")
SCHEDULER = Actor(user_id=None, role="scheduler")
ZONE = "Europe/Berlin"


def settings_for(url: str, var_dir: Path) -> Settings:
    return Settings(database_url=url, var_dir=var_dir, redis_url=None, plant_timezone=ZONE)


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    services = Services(
        settings=settings_for(database_url, tmp_path), db=Database(database_url), hub=MemoryHub()
    )
    queue = attach_queue(services, worker=True)
    yield services
    await queue.stop()
    await services.db.dispose()


@pytest.fixture
async def demo_services(services: Services, plant_time: PlantTime) -> Services:
    """The small demo plant, loaded as `takt demo` loads it."""
    now = plant_time.now.astimezone(ZoneInfo(ZONE))
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    plant = demo_plant("small", start=today, now=now)
    await plant_loading.load_plant(services=services, actor=SYSTEM, plant=plant, timezone=ZONE)
    return services


async def exported(services: Services) -> list[PlantFile]:
    return [
        PlantFile(
            f"{kind}.csv",
            await plant_export.export_csv(services=services, actor=MANAGER, kind=kind),
        )
        for kind in KINDS
    ]


async def counts(services: Services) -> dict[str, int]:
    found = {}
    async with services.db.read() as session:
        for table in (t.Equipment, t.Operator, t.Job, t.Task, t.TaskDependency, t.AuditEntry,
                      t.ChangeLogEntry, t.OperatorSkill, t.EquipmentDowntime):  # fmt: skip
            found[table.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
    return found


@pytest.fixture
async def fresh(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Services]:
    """A second empty plant on the same kind of database as `services`."""
    if database_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("_sqlite_template")
        shutil.copyfile(template, tmp_path / "fresh.db")
        url, drop = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", None
    else:
        server = request.getfixturevalue("postgres_server")
        name = server.create_database(template=request.getfixturevalue("_postgres_template"))
        url, drop = server.url(name), partial(server.drop_database, name)
    services = Services(
        settings=settings_for(url, tmp_path / "fresh"), db=Database(url), hub=MemoryHub()
    )
    yield services
    await services.db.dispose()
    if drop is not None:
        drop()


async def test_export_then_import_gives_the_same_files(
    demo_services: Services, fresh: Services
) -> None:
    files = await exported(demo_services)
    preview, loaded = await plant_import.import_plant(services=fresh, actor=MANAGER, files=files)

    assert preview.counts()["tasks"] == 150 and loaded.revision == 1
    assert await exported(fresh) == files
    workbook = await plant_export.export_workbook(services=fresh, actor=MANAGER, with_plan=False)
    again = await plant_import.preview_import(
        services=fresh, actor=MANAGER, files=[PlantFile("plant.xlsx", workbook)]
    )
    # The same workbook once more: every machine and person exists already.
    assert {e.column for e in again.errors} == {"name"}
    assert len(again.errors) == preview.counts()["equipment"] + preview.counts()["operators"]


async def test_an_excel_workbook_imports_the_same_plant(
    demo_services: Services, fresh: Services
) -> None:
    book = await plant_export.export_workbook(services=demo_services, actor=MANAGER)
    await plant_import.import_plant(
        services=fresh, actor=MANAGER, files=[PlantFile("plant.xlsx", book)]
    )
    assert await exported(fresh) == await exported(demo_services)


async def test_an_import_is_one_audited_change_published_after_commit(
    demo_services: Services, fresh: Services
) -> None:
    files = await exported(demo_services)
    await plant_import.import_plant(services=fresh, actor=MANAGER, files=files)
    found = await counts(fresh)
    assert found["schedule_changes"] == 1 and found["audit_entries"] == 1
    async with fresh.db.read() as session:
        change = (await session.execute(select(t.ChangeLogEntry))).scalar_one()
        audit = (await session.execute(select(t.AuditEntry))).scalar_one()
    assert change.kind == "plant.loaded" and change.revision == 1
    assert audit.after is not None and audit.after["counts"]["tasks"] == 150


async def test_a_failure_midway_writes_nothing(
    demo_services: Services, fresh: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = await exported(demo_services)
    before = await counts(fresh)

    def fail_at(step: str) -> None:
        if step == "routings":  # equipment, operators, jobs and tasks are written by now
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="disk is full"):
        await plant_import.import_plant(services=fresh, actor=MANAGER, files=files, on_step=fail_at)
    assert await counts(fresh) == before


async def test_row_errors_refuse_the_whole_import(services: Services) -> None:
    header = ",".join(COLUMNS["jobs"])
    jobs = f"{header}\nSO-1,,,,1,,,10,Saw,0,,1,,,,\n".encode()
    equipment = b"name,type,capabilities,status,downtime\nSaw 1,Saw,sawing,available,\n"
    before = await counts(services)
    with pytest.raises(InvalidInput) as refused:
        await plant_import.import_plant(
            services=services,
            actor=MANAGER,
            files=[PlantFile("equipment.csv", equipment), PlantFile("jobs.csv", jobs)],
        )
    assert refused.value.details["errors"] == [
        {"file": "jobs.csv", "sheet": "", "row": 2, "column": "minutes",
         "message": "0 is not between 1 and 100000"}
    ]  # fmt: skip
    assert await counts(services) == before


async def test_bad_uploads_are_refused_before_reading(services: Services) -> None:
    huge = PlantFile("jobs.csv", b"x" * (plant_import.MAX_FILE_BYTES + 1))
    with pytest.raises(InvalidInput, match="larger than"):
        await plant_import.preview_import(services=services, actor=MANAGER, files=[huge])
    with pytest.raises(InvalidInput, match="choose a file"):
        await plant_import.preview_import(services=services, actor=MANAGER, files=[])
    with pytest.raises(Forbidden):
        await plant_import.preview_import(
            services=services, actor=SCHEDULER, files=[PlantFile("a.csv", b"a")]
        )


async def test_the_queue_imports_with_progress(demo_services: Services, fresh: Services) -> None:
    files = await exported(demo_services)
    queue = attach_queue(fresh, worker=True)
    try:
        run_id = await plant_import.start_import(services=fresh, actor=MANAGER, files=files)
        await queue.wait(run_id)
        record = await queue.status(run_id)
    finally:
        await queue.stop()
    assert record is not None and record.status == "done", record
    assert record.progress == {"done": 8, "total": 8, "step": "done"}
    assert record.result is not None and record.result["counts"]["tasks"] == 150
    assert not any((Path(fresh.settings.var_dir) / "imports").iterdir())
    assert (await counts(fresh))["tasks"] == 150
