"""Moving a hand-picked selection of tasks together (bulk.shift_tasks): one change,
each task only at the version the board showed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_drafts import ANNA, live_slots, revision, run_to_draft

from app.db import tables as t
from app.services import bulk, drafts
from app.services.context import Services
from app.services.errors import InvalidInput
from app.services.plant_loading import LoadedPlant
from app.services.write_path import change

pytest_plugins = ["test_drafts"]


async def planned(services: Services) -> None:
    draft_id = await run_to_draft(services)
    await drafts.apply_draft(services=services, actor=ANNA, draft_id=draft_id)


async def versions_of(services: Services, ids: list[int]) -> dict[int, int]:
    async with services.db.read() as session:
        return {i: (await session.get(t.Task, i)).version for i in ids}  # type: ignore[union-attr]


async def test_the_selected_tasks_move_together_in_one_change(
    services: Services, shop: LoadedPlant
) -> None:
    await planned(services)
    ids = [shop.tasks["J1/0"], shop.tasks["J2/1"]]
    versions = await versions_of(services, ids)
    starts = {i: (await live_slots(services))[i].start for i in ids}
    before = await revision(services)
    run_id = await bulk.shift_tasks(services=services, actor=ANNA, versions=versions, minutes=45)
    assert services.queue is not None
    done = await services.queue.wait(run_id)
    assert done.status == "done", done.error
    assert done.result is not None
    assert sorted(done.result["shifted"]) == sorted(ids)
    assert done.result["versions"] == {str(i): v + 1 for i, v in versions.items()}
    slots = await live_slots(services)
    assert {i: slots[i].start for i in ids} == {
        i: s + timedelta(minutes=45) for i, s in starts.items()
    }
    assert await revision(services) == before + 1
    assert await versions_of(services, ids) == {i: v + 1 for i, v in versions.items()}


async def test_a_task_changed_since_it_was_selected_moves_nothing(
    services: Services, shop: LoadedPlant
) -> None:
    await planned(services)
    ids = [shop.tasks["J1/0"], shop.tasks["J2/1"]]
    versions = await versions_of(services, ids)
    slots = await live_slots(services)
    async with change(services, ANNA, "test.touch") as tx:  # someone else's edit meanwhile
        await tx.claim(t.Task, ids[1], None)
    before = await revision(services)
    run_id = await bulk.shift_tasks(services=services, actor=ANNA, versions=versions, minutes=45)
    assert services.queue is not None
    failed = await services.queue.wait(run_id)
    assert failed.status == "failed"
    assert "changed by someone else since it was selected" in (failed.error or "")
    assert {i: s.start for i, s in (await live_slots(services)).items() if i in ids} == {
        i: slots[i].start for i in ids
    }
    assert await revision(services) == before


@pytest.mark.parametrize(
    ("versions", "minutes"),
    [({}, 30), ({1: 1}, 0), ({1: 1}, bulk.MAX_SHIFT_MINUTES + 1)],
)
async def test_bad_selections_are_refused_before_anything_is_queued(
    services: Services, shop: LoadedPlant, versions: dict[int, int], minutes: int
) -> None:
    with pytest.raises(InvalidInput):
        await bulk.shift_tasks(services=services, actor=ANNA, versions=versions, minutes=minutes)
