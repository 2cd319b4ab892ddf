"""Bulk operations through the queue: each one change, every task audited, progress reported."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from test_drafts import ANNA, live_slots, revision, run_to_draft

from app.db import tables as t
from app.domain.bounds import HORIZON_END
from app.services import bulk, drafts
from app.services.context import SYSTEM, Services
from app.services.errors import InvalidInput, NotFound
from app.services.plant_loading import LoadedPlant
from app.services.write_path import change

pytest_plugins = ["test_drafts"]


async def planned(services: Services) -> None:
    draft_id = await run_to_draft(services)
    await drafts.apply_draft(services=services, actor=ANNA, draft_id=draft_id)


async def finish(services: Services, run_id: str) -> dict[str, object]:
    assert services.queue is not None
    done = await services.queue.wait(run_id)
    assert done.status == "done", done.error
    assert done.progress is not None and done.progress["done"] == done.progress["total"]
    return done.result or {}


async def test_shift_then_unschedule_a_job(services: Services, shop: LoadedPlant) -> None:
    await planned(services)
    job = shop.jobs["J1"]
    ids = [shop.tasks[f"J1/{step}"] for step in range(3)]
    slots = await live_slots(services)
    starts = {i: slots[i].start for i in ids}
    before = await revision(services)

    run_id = await bulk.shift_job(services=services, actor=ANNA, job_id=job, minutes=90)
    assert (await finish(services, run_id))["shifted"] == sorted(ids, key=starts.__getitem__)
    slots = await live_slots(services)
    assert {i: slots[i].start for i in ids} == {
        i: s + timedelta(minutes=90) for i, s in starts.items()
    }
    assert await revision(services) == before + 1

    run_id = await bulk.unschedule_job(services=services, actor=ANNA, job_id=job)
    assert set((await finish(services, run_id))["unscheduled"]) == set(ids)  # type: ignore[arg-type]
    assert set(await live_slots(services)).isdisjoint(ids)
    assert await revision(services) == before + 2


async def test_a_machine_goes_down_its_tasks_move_or_go_to_the_tray(
    services: Services, shop: LoadedPlant
) -> None:
    await planned(services)
    async with change(services, SYSTEM, "equipment.created") as tx:
        twin = t.Equipment(name="M0 twin", type="JSSP machine", capabilities=[])
        tx.session.add(twin)
        await tx.session.flush()
    async with services.db.write() as session:
        m0 = await session.get(t.Equipment, shop.equipment["M0"])
        assert m0 is not None
        row = await session.get(t.Equipment, twin.id)
        assert row is not None
        row.capabilities = list(m0.capabilities)
    on_m0 = {i for i, s in (await live_slots(services)).items() if s.equipment_id == m0.id}

    run_id = await bulk.clear_equipment(services=services, actor=ANNA, equipment_id=m0.id)
    result = await finish(services, run_id)

    # The twin is free at every one of those times (M0 never double-books itself).
    assert set(result["moved"]) == on_m0 and result["to_tray"] == []  # type: ignore[arg-type]
    slots = await live_slots(services)
    assert {slots[i].equipment_id for i in on_m0} == {twin.id}

    run_id = await bulk.clear_equipment(services=services, actor=ANNA, equipment_id=twin.id)
    result = await finish(services, run_id)
    # M0 is still available and now free, so back they go; nothing else can take them.
    assert set(result["moved"]) == on_m0


async def test_bad_bulk_requests_are_refused(services: Services, shop: LoadedPlant) -> None:
    with pytest.raises(NotFound):
        await bulk.unschedule_job(services=services, actor=ANNA, job_id=999_999)
    with pytest.raises(InvalidInput):
        await bulk.shift_job(services=services, actor=ANNA, job_id=shop.jobs["J0"], minutes=0)
    async with services.db.read() as session:
        assert (await session.scalars(select(t.BackgroundRun))).all() == []


async def test_a_shift_leaves_behind_the_tasks_it_would_carry_out_of_the_horizon(
    services: Services, shop: LoadedPlant
) -> None:
    await planned(services)
    ids = [shop.tasks[f"J1/{step}"] for step in range(3)]
    last, *earlier = sorted(ids, key=lambda i: -i)
    # One task of the job sits on the horizon's last day: a year later is no plant time.
    live = await services.live_schedule_id()
    async with services.db.write() as session:
        slot = await session.get(t.Assignment, {"schedule_id": live, "task_id": last})
        assert slot is not None
        slot.start, slot.end = HORIZON_END - timedelta(hours=2), HORIZON_END - timedelta(hours=1)
    run_id = await bulk.shift_job(
        services=services, actor=ANNA, job_id=shop.jobs["J1"], minutes=bulk.MAX_SHIFT_MINUTES
    )
    result = await finish(services, run_id)
    assert last in result["skipped"]  # type: ignore[operator]
    assert sorted(result["shifted"]) == sorted(earlier)  # type: ignore[type-var]
    assert (await live_slots(services))[last].end == HORIZON_END - timedelta(hours=1)
