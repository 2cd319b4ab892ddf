"""Optimizer runs end in drafts; a draft applies in one change, or is refused naming what changed.

A tiny job shop (3 jobs x 3 machines) and 1 s solves on one worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.realtime.hub import MemoryHub
from app.services import drafts, optimizer_runs
from app.services.context import SYSTEM, Actor, Services
from app.services.errors import DraftExpired, DraftStale, Forbidden, InvalidInput, StateConflict
from app.services.plant_loading import LoadedPlant, load_plant
from app.services.run_kinds import attach_queue
from app.services.tasks import Placement, assign_task, update_task
from app.services.write_path import schedule_channel
from app.settings import Settings

ANNA = Actor(user_id=None, role="scheduler")
OLGA = Actor(user_id=None, role="operator", operator_id=1)
TINY = """\
3 3
0 3  1 2  2 2
0 2  2 1  1 4
1 4  2 3  0 1
"""


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(database_url=database_url, var_dir=tmp_path, redis_url=None)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    queue = attach_queue(services, worker=True)
    yield services
    await queue.stop()
    await services.db.dispose()


@pytest.fixture
async def shop(services: Services) -> LoadedPlant:
    start = (clock.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    plant = to_plant_data(parse_jssp(TINY, name="tiny"), start=start)
    return await load_plant(services=services, actor=SYSTEM, plant=plant)


async def run_to_draft(services: Services, **options: object) -> int:
    run_id = await optimizer_runs.start_optimization(
        services=services, actor=ANNA, time_limit_s=1, workers=1, time_unit_minutes=1, **options
    )
    assert services.queue is not None
    await services.queue.wait(run_id)
    run = await optimizer_runs.run_status(services=services, actor=ANNA, run_id=run_id)
    assert run.status == "done" and run.draft_id is not None, run
    # "first plan": the solver found nothing in the second (a busy machine) and
    # the dispatching rule's plan is offered.
    assert run.progress["phase"] in ("lateness", "makespan", "first plan")
    return run.draft_id


async def age(services: Services, draft_id: int, *, hours: float) -> None:
    """Make a draft `hours` old, as if its run had finished then."""
    then = clock.now() - timedelta(hours=hours)
    async with services.db.write() as session:
        await session.execute(
            update(t.Draft).where(t.Draft.schedule_id == draft_id).values(created_at=then)
        )
        await session.execute(
            update(t.Schedule).where(t.Schedule.id == draft_id).values(created_at=then)
        )


async def live_slots(services: Services) -> dict[int, t.Assignment]:
    live = await services.live_schedule_id()
    async with services.db.read() as session:
        rows = await session.scalars(select(t.Assignment).where(t.Assignment.schedule_id == live))
        return {row.task_id: row for row in rows}


async def revision(services: Services) -> int:
    async with services.db.read() as session:
        found = await session.scalar(select(t.Schedule.revision).where(t.Schedule.kind == "live"))
        return int(found or 0)


async def test_a_draft_previews_as_a_diff_and_applies_as_one_revision(
    services: Services, shop: LoadedPlant
) -> None:
    draft_id = await run_to_draft(services)
    diff = await drafts.draft_diff(services=services, actor=ANNA, draft_id=draft_id)
    assert {item.task_id for item in diff.scheduled} == set(shop.tasks.values())
    assert diff.moved == diff.reassigned == diff.unscheduled == ()
    first = diff.scheduled[0]
    assert first.before is None and first.after["equipment_id"] in shop.equipment.values()
    assert first.job_name and first.name
    assert set(diff.kpis) == {
        "weighted_lateness", "makespan", "utilization", "overdue_starts", "new_work"
    }  # fmt: skip
    assert diff.solver["reached"] in ("optimal", "feasible", "best found")
    assert diff.expired is False
    assert diff.expires_at - clock.now() > timedelta(hours=23, minutes=59)
    # Nothing was booked: all of it is new work, with nothing before to compare with.
    assert (
        diff.kpis["new_work"]["tasks"] == len(shop.tasks) and diff.kpis["new_work"]["makespan"] > 0
    )
    assert await live_slots(services) == {}

    before = await revision(services)
    async with services.hub.subscribe(schedule_channel(await services.live_schedule_id())) as feed:
        applied = await drafts.apply_draft(services=services, actor=ANNA, draft_id=draft_id)
        message = await feed.get()
    assert applied.changes == 9 and applied.revision == before + 1
    assert message["kind"] == "draft.applied" and message["revision"] == before + 1
    assert sorted(message["entities"]["tasks"]) == sorted(shop.tasks.values())
    assert set(await live_slots(services)) == set(shop.tasks.values())
    async with services.db.read() as session:
        audited = await session.scalar(
            select(func.count()).where(t.AuditEntry.action == "draft.applied")
        )
    assert audited == 9
    with pytest.raises(StateConflict):
        await drafts.apply_draft(services=services, actor=ANNA, draft_id=draft_id)


async def test_a_stale_draft_is_refused_with_exactly_the_changed_tasks(
    services: Services, shop: LoadedPlant
) -> None:
    draft_id = await run_to_draft(services)
    placed, renamed = shop.tasks["J0/0"], shop.tasks["J2/2"]
    # Meanwhile: one task is placed by hand, another one edited.
    start = clock.now() + timedelta(days=2)
    await assign_task(
        services=services,
        actor=ANNA,
        task_id=placed,
        expected_version=1,
        placement=Placement(
            operator_id=shop.operators["operator-M0"],
            equipment_id=shop.equipment["M0"],
            start=start,
            end=start + timedelta(minutes=3),
        ),
    )
    await update_task(
        services=services,
        actor=SYSTEM,
        task_id=renamed,
        expected_version=1,
        changes={"instructions": "check the fixture first"},
    )
    before = await revision(services)

    with pytest.raises(DraftStale) as refused:
        await drafts.apply_draft(services=services, actor=ANNA, draft_id=draft_id)

    assert refused.value.details["changed_task_ids"] == sorted([placed, renamed])
    assert refused.value.code == "draft_stale" and refused.value.status == 409
    assert await revision(services) == before  # nothing written
    assert set(await live_slots(services)) == {placed}


async def test_a_run_limited_to_some_jobs_moves_only_their_tasks(
    services: Services, shop: LoadedPlant
) -> None:
    job = shop.jobs["J1"]
    draft_id = await run_to_draft(services, job_ids=[job])
    diff = await drafts.draft_diff(services=services, actor=ANNA, draft_id=draft_id)
    assert {item.job_id for item in diff.scheduled} == {job}
    await drafts.discard_draft(services=services, actor=ANNA, draft_id=draft_id)
    async with services.db.read() as session:
        left = await session.scalar(select(func.count()).select_from(t.Draft))
    assert left == 0


async def test_an_expired_draft_cannot_be_applied_and_writes_nothing(
    services: Services, shop: LoadedPlant
) -> None:
    draft_id = await run_to_draft(services)
    await age(services, draft_id, hours=24.5)
    before = await revision(services)

    with pytest.raises(DraftExpired) as refused:
        await drafts.apply_draft(services=services, actor=ANNA, draft_id=draft_id)

    assert (refused.value.code, refused.value.status) == ("draft_expired", 409)
    assert refused.value.details["draft_id"] == draft_id
    assert "run the optimizer again" in refused.value.message
    assert await revision(services) == before
    assert await live_slots(services) == {}
    diff = await drafts.draft_diff(services=services, actor=ANNA, draft_id=draft_id)
    assert diff.expired is True and diff.applied is False


async def test_the_sweep_deletes_expired_drafts_with_their_rows(
    services: Services, shop: LoadedPlant
) -> None:
    old, fresh = await run_to_draft(services), await run_to_draft(services)
    await age(services, old, hours=25)
    assert services.queue is not None

    await services.queue.sweep()

    async with services.db.read() as session:
        for table in (t.Schedule, t.Draft, t.DraftTask, t.Assignment):
            key = table.id if table is t.Schedule else table.schedule_id
            left = await session.scalar(select(func.count()).where(key == old))
            assert left == 0, table.__tablename__
        kept = await session.scalar(select(func.count()).where(t.DraftTask.schedule_id == fresh))
    assert kept == len(shop.tasks)
    assert await drafts.purge_expired_drafts(services) == 0
    await drafts.apply_draft(services=services, actor=ANNA, draft_id=fresh)


async def test_who_may_run_and_what_is_refused(services: Services, shop: LoadedPlant) -> None:
    with pytest.raises(Forbidden):
        await optimizer_runs.start_optimization(services=services, actor=OLGA, time_limit_s=1)
    with pytest.raises(InvalidInput):
        await optimizer_runs.start_optimization(services=services, actor=ANNA, time_limit_s=0)
    with pytest.raises(InvalidInput) as unknown:
        await optimizer_runs.start_optimization(services=services, actor=ANNA, job_ids=[999_999])
    assert unknown.value.details == {"unknown_job_ids": [999_999]}
    assert services.queue is not None
    assert sum((await services.queue.metrics()).values()) == 0
