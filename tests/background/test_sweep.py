"""The sweep: a run whose message was lost runs after all; a dead worker's run is taken back.

Lost messages are lost the way they are in production: with Redis, the
queue's keys are deleted (a Redis restarted without persistence, or
flushed); embedded, the queue that held them stops (the process restarted).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from app import clock
from app.background import records
from app.background.queue import ActiveRun, RunQueue, SweepPolicy
from app.background.sweep import abandoned, lost
from app.db.session import Database

# Sweeps in these tests are called by hand; the periodic one would come after an hour.
EAGER = SweepPolicy(interval_s=3600, lost_after_s=0, heartbeat_grace_s=0.3)

QueueFactory = Callable[..., RunQueue]


@pytest.fixture
async def queues(db: Database, broker_url: str | None) -> AsyncIterator[QueueFactory]:
    """Queues on one database and one broker queue, as an app and its workers share them."""
    name = f"takt-test:{uuid.uuid4().hex}"
    made: list[RunQueue] = []

    def make(*, worker: bool, policy: SweepPolicy = EAGER, concurrency: int = 1) -> RunQueue:
        queue = RunQueue(
            db=db,
            redis_url=broker_url,
            worker=worker,
            concurrency=concurrency,
            queue_name=name,
            sweep_policy=policy,
        )
        made.append(queue)
        return queue

    try:
        yield make
    finally:
        for queue in made:
            await queue.stop()


async def lose_messages(queue: RunQueue, broker_url: str | None) -> None:
    if broker_url is None:
        await queue.stop()  # the in-process queue goes with its process
        return
    async with Redis.from_url(broker_url) as redis:
        keys = [key async for key in redis.scan_iter(match=f"{queue.broker.queue_name}:*")]
        assert keys, "the run's message should have been in Redis"
        await redis.delete(*keys)


async def test_a_run_whose_message_was_lost_is_queued_again_and_runs(
    queues: QueueFactory, broker_url: str | None
) -> None:
    ran: list[str] = []

    async def note(run: ActiveRun) -> dict[str, Any]:
        ran.append(run.payload["name"])
        return {"noted": run.payload["name"]}

    app = queues(worker=False, policy=SweepPolicy())
    app.register("note", note)
    runs = [
        await app.enqueue("note", {"name": name}, priority=priority, max_retries=3)
        for name, priority in (("export", 1), ("rush order", 9), ("optimize", 5))
    ]
    await lose_messages(app, broker_url)
    assert (await app.metrics())["waiting"] == 3

    worker = queues(worker=True)
    worker.register("note", note)
    assert await worker.queued() == {}
    swept = await worker.sweep()
    # Queued again highest priority first, each with its own priority.
    assert swept.requeued == [runs[1], runs[2], runs[0]] and swept.failed == []
    assert await worker.queued() == {runs[0]: 1, runs[1]: 9, runs[2]: 5}
    await worker.start()
    finished = [await worker.wait(run_id) for run_id in runs]
    assert [(run.status, run.attempts) for run in finished] == [("done", 1)] * 3
    assert finished[0].result == {"noted": "export"}
    assert ran == ["rush order", "optimize", "export"]


async def test_the_sweep_leaves_a_run_whose_message_is_there_alone(
    queues: QueueFactory,
) -> None:
    app = queues(worker=False)
    app.register("noop", _noop)
    run_id = await app.enqueue("noop", {})
    swept = await app.sweep()
    assert swept.requeued == swept.failed == []
    assert await app.queued() == {run_id: 5}
    assert (await app.status(run_id)).status == "waiting"  # type: ignore[union-attr]


async def test_a_run_waiting_for_less_than_lost_after_is_left_alone(
    queues: QueueFactory, broker_url: str | None
) -> None:
    app = queues(worker=False, policy=SweepPolicy(lost_after_s=60))
    app.register("noop", _noop)
    await app.enqueue("noop", {})
    await lose_messages(app, broker_url)
    # It may be in a worker's hands between the broker and its start: give it time.
    sweeper = queues(worker=False, policy=SweepPolicy(lost_after_s=60))
    assert (await sweeper.sweep()).requeued == []


async def test_a_dead_workers_run_is_tried_again_while_it_has_tries_left(
    db: Database, queues: QueueFactory
) -> None:
    run_id = await died_running(db, max_retries=1)
    worker = queues(worker=True)
    worker.register("noop", _noop)
    await asyncio.sleep(EAGER.heartbeat_grace_s + 0.1)

    swept = await worker.sweep()
    assert swept.requeued == [run_id]
    await worker.start()
    done = await worker.wait(run_id)
    assert (done.status, done.attempts, done.worker) == ("done", 2, worker.worker_id)
    [entry] = done.attempt_log
    assert entry["attempt"] == 1 and entry["retry_in_s"] == 0.0
    assert entry["error"].startswith("stopped: its worker gone-host:4242 stopped answering")


async def test_a_dead_workers_run_with_no_tries_left_is_dead_lettered(
    db: Database, queues: QueueFactory
) -> None:
    run_id = await died_running(db, max_retries=0)
    sweeper = queues(worker=False)
    await asyncio.sleep(EAGER.heartbeat_grace_s + 0.1)

    assert (await sweeper.sweep()).failed == [run_id]
    failed = await sweeper.status(run_id)
    assert failed is not None and failed.status == "failed" and failed.finished_at is not None
    assert failed.error is not None and "gone-host:4242 stopped answering" in failed.error
    assert (await records.failed(db, limit=10))[1] == 1
    # A second sweep (here, or in another process) finds nothing more to do.
    assert (await sweeper.sweep()).failed == []


async def test_a_worker_declared_dead_that_answers_late_does_not_overwrite_the_sweep(
    db: Database, queues: QueueFactory
) -> None:
    run_id = await died_running(db, max_retries=0)
    sweeper = queues(worker=False)
    await asyncio.sleep(EAGER.heartbeat_grace_s + 0.1)
    assert (await sweeper.sweep()).failed == [run_id]

    late = await records.finish(
        db, run_id, status="done", result={"late": True}, worker="gone-host:4242"
    )

    assert late is None
    kept = await records.get(db, run_id)
    assert kept is not None and kept.status == "failed" and kept.result is None
    # Another worker's answer is dropped too, while the run's own worker is heard.
    again = await died_running(db, max_retries=0)
    assert await records.finish(db, again, status="done", worker="other:1") is None
    done = await records.finish(db, again, status="done", worker="gone-host:4242")
    assert done is not None and done.status == "done"


async def test_a_run_in_progress_keeps_beating_and_is_left_alone(queues: QueueFactory) -> None:
    # It beats every 0.25 s; a busy machine may delay a beat, not four.
    policy = SweepPolicy(interval_s=3600, lost_after_s=0, heartbeat_grace_s=1.0)

    async def works(run: ActiveRun) -> dict[str, Any]:
        await asyncio.sleep(2.5 * policy.heartbeat_grace_s)
        return {"worked": True}

    worker = queues(worker=True, policy=policy)
    worker.register("works", works)
    run_id = await worker.enqueue("works", {})
    sweeps = []
    while not (found := await worker.status(run_id)) or not found.finished:
        sweeps.append(await worker.sweep())
        await asyncio.sleep(0.05)
    assert all(swept.requeued == swept.failed == [] for swept in sweeps)
    assert (found.status, found.attempts, found.result) == ("done", 1, {"worked": True})


async def test_housekeeping_runs_on_every_sweep_and_a_failing_one_does_not_stop_it(
    queues: QueueFactory,
) -> None:
    done: list[str] = []

    async def tidy() -> None:
        done.append("tidy")

    async def breaks() -> None:
        raise RuntimeError("disk full")

    queue = queues(worker=False)
    queue.add_housekeeping("breaks", breaks)
    queue.add_housekeeping("tidy", tidy)
    await queue.sweep()
    await queue.sweep()
    assert done == ["tidy", "tidy"]


# --- the decisions, without a database --------------------------------------------------------


def test_lost_is_what_waits_without_a_message() -> None:
    waiting = [record(id="a"), record(id="b"), record(id="c")]
    assert [found.id for found in lost(waiting, {"b", "z"})] == ["a", "c"]


@pytest.mark.parametrize(
    ("attempts", "max_retries", "status"),
    [(1, 0, "failed"), (1, 1, "waiting"), (2, 1, "failed"), (2, 3, "waiting")],
)
def test_an_abandoned_run_is_retried_while_it_has_tries_left(
    attempts: int, max_retries: int, status: str
) -> None:
    now = clock.now()
    found = record(
        attempts=attempts, max_retries=max_retries, heartbeat_at=now - timedelta(seconds=90)
    )
    verdict = abandoned(found, now=now)
    assert verdict.status == status
    assert verdict.error == "stopped: its worker w1:7 stopped answering (no heartbeat for 90 s)"
    retry_in = 0.0 if status == "waiting" else None
    assert verdict.attempt == {"attempt": attempts, "error": verdict.error, "retry_in_s": retry_in}


# --- helpers ---------------------------------------------------------------------------------


async def died_running(db: Database, *, max_retries: int) -> str:
    """A run a worker started and then died on: active, its heartbeat going stale."""
    run_id = uuid.uuid4().hex
    await records.create(
        db,
        run_id=run_id,
        kind="noop",
        payload={},
        priority=5,
        timeout_s=60,
        max_retries=max_retries,
        backoff_s=0.01,
        created_by=None,
    )
    assert await records.start(db, run_id, worker="gone-host:4242") is not None
    return run_id


def record(**changes: Any) -> records.RunRecord:
    now = clock.now()
    fields: dict[str, Any] = {
        "id": "r1",
        "kind": "noop",
        "payload": {},
        "status": "active",
        "priority": 5,
        "attempts": 1,
        "max_retries": 0,
        "timeout_s": 60.0,
        "backoff_s": 1.0,
        "cancel_requested": False,
        "progress": None,
        "attempt_log": [],
        "error": None,
        "result": None,
        "created_by": None,
        "created_at": now,
        "due_at": now,
        "started_at": now,
        "worker": "w1:7",
        "heartbeat_at": now,
        "finished_at": None,
    }
    return records.RunRecord(**{**fields, **changes})


async def _noop(run: ActiveRun) -> None:
    return None
