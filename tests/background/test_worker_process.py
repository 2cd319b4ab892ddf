"""`takt worker` as its own process: it takes the app's runs from Redis, and stops on SIGTERM.

The app side is what `create_app` wires with REDIS_URL: services with the
Redis queue and no worker of their own, so a run done is a run the separate
process did (its row names that process).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from servers import Popen, wait_until
from sqlalchemy import select

from app import clock
from app.background.records import RunRecord
from app.db import tables as t
from app.db.session import Database
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.main import create_app
from app.realtime.hub import MemoryHub
from app.services import background, bulk, drafts, optimizer_runs
from app.services.context import SYSTEM, Actor, Services
from app.services.plant_loading import LoadedPlant, load_plant
from app.services.run_kinds import attach_queue
from app.settings import Settings

pytestmark = pytest.mark.redis

ANNA = Actor(user_id=None, role="scheduler")
TINY = """\
3 3
0 3  1 2  2 2
0 2  2 1  1 4
1 4  2 3  0 1
"""
# Generous for a loaded CI machine; a healthy worker needs a fraction of these.
READY_S = 60
JOB_S = 90
STOP_S = 15

StartWorker = Callable[..., Popen]


@pytest.fixture
def queue_name() -> str:
    """Each test its own Redis keys, so no other test's worker takes its runs."""
    return f"takt-test:{uuid.uuid4().hex}"


@pytest.fixture
def takt_worker(redis_url: str, queue_name: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Start the real `takt worker` on a database; stopped (SIGTERM) when the test ends."""
    started: list[Popen] = []

    def start(database_url: str, **settings: str) -> Popen:
        command = Path(sys.executable).with_name("takt")
        assert command.is_file(), f"the takt command should be installed beside {sys.executable}"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL") and not key.startswith("TAKT_")
        }
        env |= {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "TAKT_QUEUE_NAME": queue_name,
            "TAKT_VAR_DIR": str(tmp_path / "worker-var"),
            **settings,
        }
        worker = Popen.start(
            [str(command), "worker", "--concurrency", "1"],
            log=tmp_path / f"worker-{len(started)}.log",
            env=env,
            cwd=tmp_path,
        )
        started.append(worker)
        wait_until(
            lambda: "running jobs from Redis" in worker.log.read_text(),
            timeout=READY_S,
            what="takt worker",
            proc=worker,
        )
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
async def app_side(
    database_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> AsyncIterator[Services]:
    settings = Settings(
        database_url=database_url, redis_url=redis_url, queue_name=queue_name, var_dir=tmp_path
    )
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    queue = attach_queue(services)
    assert queue.worker is False  # with Redis the app leaves its runs to workers
    yield services
    await queue.stop()
    await services.db.dispose()


async def test_a_worker_process_takes_the_apps_runs_and_commits_their_changes(
    app_side: Services, database_url: str, takt_worker: StartWorker
) -> None:
    services = app_side
    worker = takt_worker(database_url)
    worker_id = f"{socket.gethostname()}:{worker.process.pid}"
    shop = await tiny_shop(services)

    run_id = await optimizer_runs.start_optimization(
        services=services, actor=ANNA, time_limit_s=1, workers=1, time_unit_minutes=1
    )
    optimized = await finished(services, run_id)
    assert (optimized.status, optimized.worker, optimized.attempts) == ("done", worker_id, 1)
    run = await optimizer_runs.run_status(services=services, actor=ANNA, run_id=run_id)
    assert run.draft_id is not None and optimized.result is not None
    assert optimized.result["changes"] == len(shop.tasks)
    await drafts.apply_draft(services=services, actor=ANNA, draft_id=run.draft_id)

    job_tasks = [shop.tasks[f"J1/{step}"] for step in range(3)]
    starts = {task_id: slot.start for task_id, slot in (await live_slots(services)).items()}
    revision = await live_revision(services)
    run_id = await bulk.shift_job(services=services, actor=ANNA, job_id=shop.jobs["J1"], minutes=45)
    shifted = await finished(services, run_id)

    assert (shifted.status, shifted.worker) == ("done", worker_id), shifted.error
    assert shifted.result is not None and sorted(shifted.result["shifted"]) == sorted(job_tasks)
    slots = await live_slots(services)
    assert {i: slots[i].start for i in job_tasks} == {
        i: starts[i] + timedelta(minutes=45) for i in job_tasks
    }
    assert await live_revision(services) == revision + 1
    assert (await services.queue.metrics())["done"] == 2  # type: ignore[union-attr]


async def test_a_worker_process_sweeps_a_run_whose_message_redis_lost(
    app_side: Services, database_url: str, redis_url: str, queue_name: str, takt_worker: StartWorker
) -> None:
    services = app_side
    shop = await tiny_shop(services)
    run_id = await bulk.unschedule_job(services=services, actor=ANNA, job_id=shop.jobs["J0"])
    # Redis restarts without persistence before any worker took the message.
    async with Redis.from_url(redis_url) as redis:
        assert await redis.delete(*[key async for key in redis.scan_iter(f"{queue_name}:*")])

    worker = takt_worker(
        database_url, TAKT_QUEUE_LOST_AFTER_S="0", TAKT_QUEUE_SWEEP_INTERVAL_S="0.2"
    )

    swept = await finished(services, run_id)
    assert (swept.status, swept.attempts) == ("done", 1)
    assert swept.worker == f"{socket.gethostname()}:{worker.process.pid}"
    assert swept.result == {"unscheduled": [], "skipped": []}


async def test_sigterm_stops_an_idle_worker_cleanly(
    sqlite_database_url: str, takt_worker: StartWorker
) -> None:
    worker = takt_worker(sqlite_database_url)
    worker.process.send_signal(signal.SIGTERM)
    exit_code = await asyncio.to_thread(worker.process.wait, STOP_S)
    assert exit_code == 0, worker.log.read_text()
    assert "stopped." in worker.log.read_text()


# --- helpers ---------------------------------------------------------------------------------


async def tiny_shop(services: Services) -> LoadedPlant:
    start = (clock.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    plant = to_plant_data(parse_jssp(TINY, name="tiny"), start=start)
    return await load_plant(services=services, actor=SYSTEM, plant=plant)


async def finished(services: Services, run_id: str) -> RunRecord:
    assert services.queue is not None
    return await asyncio.wait_for(services.queue.wait(run_id, poll_s=0.1), JOB_S)


async def live_slots(services: Services) -> dict[int, t.Assignment]:
    live = await services.live_schedule_id()
    async with services.db.read() as session:
        rows = await session.scalars(select(t.Assignment).where(t.Assignment.schedule_id == live))
        return {row.task_id: row for row in rows}


async def live_revision(services: Services) -> int:
    async with services.db.read() as session:
        found = await session.scalar(select(t.Schedule.revision).where(t.Schedule.kind == "live"))
        return int(found or 0)


# --- a worker killed mid-run -----------------------------------------------------------------

# Beats every second; silent for 4 s is dead (the defaults: every 5 s, 20 s).
FAST_DEATH = {"TAKT_QUEUE_HEARTBEAT_GRACE_S": "4", "TAKT_QUEUE_SWEEP_INTERVAL_S": "0.5"}


def random_shop(jobs: int = 12, machines: int = 12, seed: int = 7) -> str:
    """A job shop too big to prove optimal in seconds: a run that is still going when killed."""
    rng = random.Random(seed)
    lines = [f"{jobs} {machines}"]
    for _ in range(jobs):
        order = rng.sample(range(machines), machines)
        lines.append("  ".join(f"{m} {rng.randint(1, 30)}" for m in order))
    return "\n".join(lines) + "\n"


async def until_run(
    services: Services,
    run_id: str,
    check: Callable[[optimizer_runs.OptimizationRun], bool],
    what: str,
) -> optimizer_runs.OptimizationRun:
    async with asyncio.timeout(JOB_S):
        while True:
            run = await optimizer_runs.run_status(services=services, actor=ANNA, run_id=run_id)
            if check(run):
                return run
            await asyncio.sleep(0.2)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


async def test_a_worker_killed_mid_run_is_seen_at_once_and_its_run_retried(
    postgres_database_url: str, redis_url: str, queue_name: str, takt_worker: StartWorker
) -> None:
    settings = Settings(
        database_url=postgres_database_url,
        redis_url=redis_url,
        queue_name=queue_name,
        queue_heartbeat_grace_s=4,
        queue_sweep_interval_s=0.5,
    )
    app = create_app(settings)
    services: Services = app.state.services
    assert services.queue is not None and services.queue.worker is False
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://takt.test")
    try:
        start = (clock.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        plant = to_plant_data(parse_jssp(random_shop(), name="random"), start=start)
        await load_plant(services=services, actor=SYSTEM, plant=plant)

        first = takt_worker(postgres_database_url, **FAST_DEATH)
        ready = (await client.get("/health/ready")).json()
        assert (ready["checks"]["workers"], ready["queue"]["workers_alive"]) == ("ok", 1)

        run_id = await optimizer_runs.start_optimization(
            services=services, actor=ANNA, time_limit_s=10, workers=1, time_unit_minutes=1
        )
        await until_run(services, run_id, lambda r: bool(r.progress.get("solutions")), "mid-run")
        first.process.kill()  # SIGKILL: no goodbye, its run stays "active"

        # The panel says so within a few seconds, before the sweep takes the run back...
        quiet = await until_run(services, run_id, lambda r: r.notice is not None, "a notice")
        assert quiet.status in ("running", "queued"), quiet
        # ...then the run is queued again for its second try, and nobody is there to run it.
        retrying = await until_run(
            services,
            run_id,
            lambda r: r.status == "queued" and "No worker" in (r.notice or ""),
            "the retry, waiting for a worker",
        )
        notice = retrying.notice or ""
        assert "worker stopped" in notice and "try 2 of 2" in notice
        ready = (await client.get("/health/ready")).json()
        assert ready["status"] == "degraded"
        assert ready["checks"]["workers"] == "error: no worker alive"
        assert ready["queue"]["workers_alive"] == 0 and ready["queue"]["oldest_waiting_s"] >= 0
        metrics = await background.queue_metrics(services=services, actor=ANNA)
        assert (metrics["workers_alive"], metrics["active"], metrics["waiting"]) == (0, 0, 1)

        takt_worker(postgres_database_url, **FAST_DEATH)
        done = await finished(services, run_id)
        assert (done.status, done.attempts) == ("done", 2), done.error
        assert "stopped answering" in done.attempt_log[0]["error"]
        assert (await services.queue.liveness()).workers is not None
        assert len((await services.queue.liveness()).workers or []) == 1
    finally:
        await client.aclose()
        await services.queue.stop()
        await services.db.dispose()
