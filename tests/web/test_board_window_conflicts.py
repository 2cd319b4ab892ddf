"""A window's conflicts brought forward by what changed equal the window validated afresh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from board_plant import BoardWorld, board_world

from app import clock
from app.db.plan_queries import load_window, schedule_revision
from app.db.session import Database
from app.domain.conflicts import Conflict, ConflictType
from app.domain.plan import Interval
from app.domain.validation import validate_plan
from app.realtime.hub import MemoryHub
from app.services import jobs, tasks, window_conflicts as wc
from app.services.context import Actor, Services
from app.services.tasks import Placement
from app.services.write_path import schedule_channel

ANNA = Actor(user_id=None, role="scheduler")


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path) as world:
        yield world


async def both_ways(world: BoardWorld, window: Interval) -> tuple[list[Conflict], list[Conflict]]:
    """(what window_conflicts answers now, the window validated afresh), on the window's tasks."""
    services = world.services
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        kept = await wc.window_conflicts(services, session, schedule_id, revision, window)
        plan = await load_window(session, schedule_id, window)
    inside = {
        a.task_id for a in plan.assignments.values() if Interval(a.start, a.end).overlaps(window)
    }
    fresh = validate_plan(plan, now=clock.now())

    def on_window(found: list[Conflict]) -> list[Conflict]:
        return [c for c in found if any(task_id in inside for task_id in c.task_ids)]

    return on_window(kept), on_window(fresh)


async def version_of(world: BoardWorld, task_id: int) -> int:
    view = await tasks.get_task(services=world.services, actor=ANNA, task_id=task_id)
    return int(view["version"])


async def place(world: BoardWorld, task_id: int, operator: int, machine: int, hour: float) -> None:
    start = world.plant.at(0) + timedelta(hours=hour)
    view = await tasks.get_task(services=world.services, actor=ANNA, task_id=task_id)
    minutes = int(view["duration_minutes"])
    await tasks.assign_task(
        services=world.services,
        actor=ANNA,
        task_id=task_id,
        expected_version=int(view["version"]),
        placement=Placement(operator, machine, start, start + timedelta(minutes=minutes)),
    )


async def test_moves_and_unschedules_are_brought_forward_exactly(
    world: BoardWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = world.plant
    window = Interval(p.at(0), p.at(0, days=1))
    afresh = counting_loads(monkeypatch)
    kept, fresh = await both_ways(world, window)
    assert kept == fresh and len(afresh) == 1

    steps = [
        # Drill onto Mill 1 over Cut: both double-booked (Olga and the mill).
        lambda: place(world, p.drill, p.olga, p.mill, 8.5),
        # Weld before Cut ends: a dependency violation on both.
        lambda: place(world, p.weld, p.omar, p.welder, 8.75),
        # Cut away from Drill, after Weld: the double booking goes, the dependency stays.
        lambda: place(world, p.cut, p.olga, p.mill2, 12),
        # Weld at night, outside Omar's shift and far past the job's due time.
        lambda: place(world, p.weld, p.omar, p.welder, 23 + 24 * 9),
        lambda: unschedule(world, p.weld),
        lambda: place(world, p.cut, p.olga, p.mill, 8.5),
    ]
    seen: set[ConflictType] = set()
    for step in steps:
        await step()
        kept, fresh = await both_ways(world, window)
        assert kept == fresh
        seen |= {c.type for c in fresh}
    assert len(afresh) == 1, "every step was brought forward, none validated afresh"
    assert {
        ConflictType.OPERATOR_DOUBLE_BOOKED,
        ConflictType.EQUIPMENT_DOUBLE_BOOKED,
        ConflictType.DEPENDENCY_VIOLATION,
    } <= seen


async def test_a_change_of_anything_else_validates_afresh(
    world: BoardWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = world.plant
    window = Interval(p.at(0), p.at(0, days=1))
    await both_ways(world, window)
    afresh = counting_loads(monkeypatch)
    # Bracket 4711 now due before Weld ends (09:00-10:30): late, though no task changed.
    manager = Actor(user_id=None, role="manager")
    job = await jobs.get_job(services=world.services, actor=manager, job_id=p.job)
    await jobs.update_job(
        services=world.services,
        actor=manager,
        job_id=p.job,
        expected_version=int(job["version"]),
        changes={"due": p.at(10)},
    )
    kept, fresh = await both_ways(world, window)
    assert kept == fresh
    assert ConflictType.LATE in {c.type for c in kept}
    assert afresh == [1]


async def unschedule(world: BoardWorld, task_id: int) -> None:
    await tasks.unschedule_task(
        services=world.services,
        actor=ANNA,
        task_id=task_id,
        expected_version=await version_of(world, task_id),
    )


async def test_a_read_of_an_older_revision_asking_after_a_newer_one_was_kept_is_brought_forward(
    world: BoardWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A board's read takes its snapshot first and asks for the window later: under load a
    newer revision is often kept by then. The older read still builds on what is kept
    before it, instead of validating the whole window afresh."""
    p = world.plant
    services = world.services
    window = Interval(p.at(0), p.at(0, days=1))
    await both_ways(world, window)  # kept at R0
    afresh = counting_loads(monkeypatch)
    await place(world, p.drill, p.olga, p.mill, 8.5)  # R1: Drill double-booked over Cut
    schedule_id = await services.live_schedule_id()
    async with services.db.snapshot() as older:
        r1 = await schedule_revision(older, schedule_id)
        await place(world, p.cut, p.olga, p.mill2, 12)  # R2, kept while the R1 read is open
        await both_ways(world, window)
        assert afresh == [], "R2 was brought forward from R0"
        kept = await wc.window_conflicts(services, older, schedule_id, r1, window)
        plan = await load_window(older, schedule_id, window)
    assert afresh == [], "the R1 read was brought forward from R0, not validated afresh"
    inside = {
        a.task_id for a in plan.assignments.values() if Interval(a.start, a.end).overlaps(window)
    }
    fresh = [
        c
        for c in validate_plan(plan, now=clock.now())
        if any(task_id in inside for task_id in c.task_ids)
    ]
    assert [c for c in kept if any(t in inside for t in c.task_ids)] == fresh
    assert ConflictType.EQUIPMENT_DOUBLE_BOOKED in {c.type for c in fresh}


async def test_reads_asking_while_the_window_is_validated_afresh_share_that_validation(
    world: BoardWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = world.plant
    services = world.services
    window = Interval(p.at(0), p.at(0, days=1))
    afresh: list[int] = []
    gate, loading = asyncio.Event(), asyncio.Event()
    real_load = wc.load_window

    async def slow_load(*args: object, **kwargs: object) -> object:
        afresh.append(1)
        loading.set()
        await gate.wait()  # the first read is still validating when the others ask
        return await real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wc, "load_window", slow_load)
    schedule_id = await services.live_schedule_id()

    async def read() -> list[Conflict]:
        async with services.db.snapshot() as session:
            revision = await schedule_revision(session, schedule_id)
            return await wc.window_conflicts(services, session, schedule_id, revision, window)

    reads = [asyncio.create_task(read()) for _ in range(4)]
    await loading.wait()
    for _ in range(20):  # let the other three reach the window and wait
        await asyncio.sleep(0)
    gate.set()
    answers = await asyncio.gather(*reads)
    assert afresh == [1], "one validation afresh served all four reads"
    assert all(answer == answers[0] for answer in answers)
    kept, fresh = await both_ways(world, window)
    assert answers[0] == kept
    assert kept == fresh


def counting_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the window loads from here on (a load is a validation afresh)."""
    afresh: list[int] = []
    real_load = wc.load_window

    async def counting_load(*args: object, **kwargs: object) -> object:
        afresh.append(1)
        return await real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wc, "load_window", counting_load)
    return afresh


async def test_another_instance_keeps_what_the_changes_own_instance_found(
    world: BoardWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A move's message carries the conflicts its transaction found: an instance that
    only heard of it brings its windows forward without validating the task again."""
    p = world.plant
    window = Interval(p.at(0), p.at(0, days=1))
    settings = world.services.settings
    other = Services(settings=settings, db=Database(settings.database_url), hub=MemoryHub())
    schedule_id = await world.services.live_schedule_id()
    validated: list[int] = []
    real_conflicts_in = wc.conflicts_in

    async def counting_conflicts_in(session: Any, schedule: int, task_id: int) -> Any:
        validated.append(task_id)
        return await real_conflicts_in(session, schedule, task_id)

    monkeypatch.setattr(wc, "conflicts_in", counting_conflicts_in)

    async def on_other() -> list[Conflict]:
        async with other.db.read() as session, session.begin():
            revision = await schedule_revision(session, schedule_id)
            return await wc.window_conflicts(other, session, schedule_id, revision, window)

    try:
        await on_other()  # the other instance's board shows the window
        async with world.services.hub.subscribe(schedule_channel(schedule_id)) as heard:
            # Drill onto Mill 1 over Cut: Olga and the mill double-booked.
            await place(world, p.drill, p.olga, p.mill, 8.5)
            message = await heard.get()
            assert message["conflicts"][str(p.drill)], "the move found conflicts and says so"
            wc.keep_published(other, message)
            await on_other()
            assert validated == [], "brought forward with what the message carried"
            # A change whose message came without them: validated there as before.
            await place(world, p.drill, p.olga, p.mill, 9)
            unheard = await heard.get()
        del unheard["conflicts"]
        wc.keep_published(other, unheard)
        kept = await on_other()
        assert validated == [p.drill]
        _, fresh = await both_ways(world, window)
        assert [c for c in kept if c in fresh] == kept and len(kept) == len(fresh)
    finally:
        await other.db.dispose()


def test_a_conflict_survives_a_hub_message_and_garbage_is_refused() -> None:
    conflict = Conflict(
        ConflictType.EQUIPMENT_DOUBLE_BOOKED,
        (3, 7),
        "Mill 1 is booked twice",
        equipment_id=2,
        equipment_name="Mill 1",
    )
    back = Conflict.from_message(json.loads(json.dumps(conflict.as_message())))
    assert back == conflict and back is not None and back.equipment_name == "Mill 1"
    for garbage in (None, [], {"type": "nonsense", "task_ids": [1], "message": ""},
                    {"type": "late", "task_ids": "x", "message": ""},
                    {"type": "late", "task_ids": [1], "message": "", "job_id": "7"}):  # fmt: skip
        assert Conflict.from_message(garbage) is None


async def test_a_prepared_window_is_brought_forward_by_its_first_change(
    world: BoardWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prepare` (a board connected to an instance that never showed its window)
    validates the window there once; the first change then brings it forward."""
    p = world.plant
    window = Interval(p.at(0), p.at(0, days=1))
    afresh = counting_loads(monkeypatch)
    await wc.prepare(world.services, window)
    await wc.prepare(world.services, window)  # kept already: nothing to do
    assert len(afresh) == 1
    await place(world, p.drill, p.olga, p.mill, 8.5)
    kept, fresh = await both_ways(world, window)
    assert kept == fresh and len(afresh) == 1  # brought forward: no second validation
