"""The optimizer panel's look at a run waits for the first plan; a run keeps the heap steady."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from app import clock
from app.background.heap import steady_heap
from app.db.session import Database
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.realtime.hub import MemoryHub
from app.services import optimizer_runs
from app.services.context import SYSTEM, Actor, Services
from app.services.plant_loading import load_plant
from app.services.run_kinds import attach_queue
from app.services.run_watch import once_planned
from app.settings import Settings

ANNA = Actor(user_id=None, role="scheduler")
SHOP = """\
3 3
0 3  1 2  2 2
0 2  2 1  1 4
1 4  2 3  0 1
"""


async def _services(database_url: str, tmp_path: Path, *, worker: bool) -> Services:
    settings = Settings(database_url=database_url, var_dir=tmp_path, redis_url=None)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    attach_queue(services, worker=worker)
    start = (clock.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    plant = to_plant_data(parse_jssp(SHOP, name="shop"), start=start)
    await load_plant(services=services, actor=SYSTEM, plant=plant)
    return services


@pytest.fixture
async def with_worker(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    services = await _services(database_url, tmp_path, worker=True)
    yield services
    assert services.queue is not None
    await services.queue.stop()
    await services.db.dispose()


@pytest.fixture
async def without_worker(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    services = await _services(database_url, tmp_path, worker=False)
    yield services
    assert services.queue is not None
    await services.queue.stop()
    await services.db.dispose()


async def _start(services: Services) -> str:
    return await optimizer_runs.start_optimization(
        services=services, actor=ANNA, time_limit_s=5, workers=1, time_unit_minutes=1
    )


async def test_one_look_right_after_start_answers_with_the_first_plan(
    with_worker: Services,
) -> None:
    run_id = await _start(with_worker)
    run = await once_planned(services=with_worker, actor=ANNA, run_id=run_id, within_s=120)
    # It answered once the run had a plan to show (or had ended with one), not before.
    assert run.progress.get("solutions", 0) >= 1 or run.status == "done", run
    assert run.progress.get("weighted_lateness_minutes") is not None, run


async def test_with_no_worker_the_look_answers_after_its_time_with_the_run_queued(
    without_worker: Services,
) -> None:
    run_id = await _start(without_worker)
    run = await once_planned(services=without_worker, actor=ANNA, run_id=run_id, within_s=0.3)
    assert run.status == "queued" and run.progress == {}
    assert run.notice is not None and "No worker is running" in run.notice


def test_the_heap_stays_frozen_until_the_last_run_ends() -> None:
    gc.unfreeze()
    with steady_heap():
        held = gc.get_freeze_count()
        assert held > 0
        with steady_heap():
            pass
        assert gc.get_freeze_count() >= held  # the other run still works
    assert gc.get_freeze_count() == 0
