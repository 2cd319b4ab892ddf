"""The run queue: retries with backoff into the dead-letter record, timeouts, priorities, metrics.

Each test runs with the embedded in-process broker and with Redis.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.background import queue as queue_module, records, sweep as sweep_module
from app.background.queue import ActiveRun, RunFailed, RunQueue
from app.background.sweep import SweepPolicy
from app.db.session import Database


async def test_a_run_runs_and_its_result_is_kept(one_at_a_time: RunQueue) -> None:
    async def double(run: ActiveRun) -> dict[str, Any]:
        run.report({"step": 1})
        return {"twice": run.payload["n"] * 2}

    one_at_a_time.register("double", double)
    run_id = await one_at_a_time.enqueue("double", {"n": 21}, created_by=7)
    done = await one_at_a_time.wait(run_id)
    assert (done.status, done.result, done.attempts) == ("done", {"twice": 42}, 1)
    assert done.progress == {"step": 1} and done.created_by == 7 and done.error is None


async def test_the_first_progress_is_stored_at_once(
    one_at_a_time: RunQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user waits for a run's first figures: they do not wait for the next
    progress interval (an hour here), later ones do."""
    monkeypatch.setattr(queue_module, "PROGRESS_INTERVAL_S", 3600.0)
    monkeypatch.setattr(sweep_module, "HEARTBEAT_S", 3600.0)
    monkeypatch.setattr(one_at_a_time, "sweep_policy", SweepPolicy(heartbeat_grace_s=14400.0))
    release = asyncio.Event()

    async def first_plan(run: ActiveRun) -> dict[str, Any]:
        run.report({"plan": 1})
        run.report({"plan": 2})
        await release.wait()
        return {}

    one_at_a_time.register("first_plan", first_plan)
    run_id = await one_at_a_time.enqueue("first_plan", {})
    try:
        for _ in range(400):
            found = await one_at_a_time.status(run_id)
            if found is not None and found.progress:
                break
            await asyncio.sleep(0.05)
        assert found is not None and found.progress in ({"plan": 1}, {"plan": 2})
    finally:
        release.set()
    done = await one_at_a_time.wait(run_id)
    assert done.progress == {"plan": 2}  # the last report, stored when the run ends


async def test_a_run_can_wait_until_its_first_report_is_stored(
    one_at_a_time: RunQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optimizer's thread waits for its first plan to be stored before it
    searches on (so its work does not slow the save the user waits for)."""
    monkeypatch.setattr(queue_module, "PROGRESS_INTERVAL_S", 3600.0)
    monkeypatch.setattr(sweep_module, "HEARTBEAT_S", 3600.0)
    monkeypatch.setattr(one_at_a_time, "sweep_policy", SweepPolicy(heartbeat_grace_s=14400.0))

    async def searches(run: ActiveRun) -> dict[str, Any]:
        def first_plan() -> int:
            assert run.saved == 0
            run.report({"plan": 1})
            run.wait_saved(60)
            return run.saved

        return {"saved": await asyncio.to_thread(first_plan)}

    one_at_a_time.register("searches", searches)
    done = await one_at_a_time.wait(await one_at_a_time.enqueue("searches", {}))
    assert done.result == {"saved": 1} and done.progress == {"plan": 1}


async def test_a_run_that_raises_is_retried_with_backoff_then_dead_lettered(
    one_at_a_time: RunQueue,
) -> None:
    tries: list[int] = []

    async def breaks(run: ActiveRun) -> None:
        tries.append(run.attempt)
        raise RuntimeError(f"press jammed on try {run.attempt}")

    one_at_a_time.register("breaks", breaks)
    run_id = await one_at_a_time.enqueue("breaks", {}, max_retries=3, backoff_s=0.05)
    failed = await one_at_a_time.wait(run_id)

    assert tries == [1, 2, 3, 4]
    assert failed.status == "failed" and failed.attempts == 4
    assert failed.error == "RuntimeError: press jammed on try 4"
    # Exponential backoff: 0.05 s, then 0.1 s, then 0.2 s; no retry after the last try.
    assert [entry["retry_in_s"] for entry in failed.attempt_log] == [0.05, 0.1, 0.2, None]
    assert [entry["attempt"] for entry in failed.attempt_log] == [1, 2, 3, 4]
    assert (await one_at_a_time.metrics())["failed"] == 1


async def test_a_run_that_succeeds_on_a_retry_is_done(one_at_a_time: RunQueue) -> None:
    async def flaky(run: ActiveRun) -> dict[str, Any]:
        if run.attempt == 1:
            raise ConnectionError("database went away")
        return {"attempt": run.attempt}

    one_at_a_time.register("flaky", flaky)
    run_id = await one_at_a_time.enqueue("flaky", {}, max_retries=2, backoff_s=0.01)
    done = await one_at_a_time.wait(run_id)
    assert (done.status, done.result, done.attempts) == ("done", {"attempt": 2}, 2)
    assert done.attempt_log == [
        {"attempt": 1, "error": "ConnectionError: database went away", "retry_in_s": 0.01}
    ]


async def test_run_failed_is_not_retried(one_at_a_time: RunQueue) -> None:
    async def refuses(run: ActiveRun) -> None:
        raise RunFailed("job 12 does not exist")

    one_at_a_time.register("refuses", refuses)
    run_id = await one_at_a_time.enqueue("refuses", {}, max_retries=5, backoff_s=0.01)
    failed = await one_at_a_time.wait(run_id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error == "JobFailed: job 12 does not exist"


async def test_a_run_past_its_timeout_is_stopped_and_failed(one_at_a_time: RunQueue) -> None:
    stopped = asyncio.Event()

    async def hangs(run: ActiveRun) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.set()

    one_at_a_time.register("hangs", hangs)
    run_id = await one_at_a_time.enqueue("hangs", {}, timeout_s=0.2, max_retries=2)
    failed = await one_at_a_time.wait(run_id)
    assert stopped.is_set()
    assert (failed.status, failed.attempts) == ("failed", 1)  # a timeout is not retried
    assert failed.error == "stopped: it ran past its timeout of 0.2 s"


async def test_waiting_runs_run_highest_priority_first(one_at_a_time: RunQueue) -> None:
    release = asyncio.Event()
    ran: list[str] = []

    async def hold(run: ActiveRun) -> None:
        await release.wait()

    async def note(run: ActiveRun) -> None:
        ran.append(run.payload["name"])

    one_at_a_time.register("hold", hold)
    one_at_a_time.register("note", note)
    holding = await one_at_a_time.enqueue("hold", {})
    await until_active(one_at_a_time, holding)
    runs = [
        await one_at_a_time.enqueue("note", {"name": name}, priority=priority)
        for name, priority in (("export", 1), ("rush order", 9), ("optimize", 5), ("report", 1))
    ]
    assert (await one_at_a_time.metrics())["waiting"] == 4
    assert (await one_at_a_time.metrics())["active"] == 1
    release.set()
    for run_id in runs:
        await one_at_a_time.wait(run_id)
    assert ran == ["rush order", "optimize", "export", "report"]
    assert (await one_at_a_time.metrics())["done"] == 5


async def test_cancelling_a_waiting_run_means_it_never_runs(one_at_a_time: RunQueue) -> None:
    release = asyncio.Event()
    ran: list[str] = []

    async def hold(run: ActiveRun) -> None:
        await release.wait()

    async def note(run: ActiveRun) -> None:
        ran.append(run.id)

    one_at_a_time.register("hold", hold)
    one_at_a_time.register("note", note)
    holding = await one_at_a_time.enqueue("hold", {})
    skipped = await one_at_a_time.enqueue("note", {})
    cancelled = await one_at_a_time.cancel(skipped)
    assert cancelled is not None and cancelled.status == "cancelled"
    release.set()
    await one_at_a_time.wait(holding)
    after = await one_at_a_time.enqueue("note", {})
    await one_at_a_time.wait(after)
    assert ran == [after]
    assert (await one_at_a_time.metrics())["cancelled"] == 1


async def test_cancelling_an_active_run_asks_it_to_stop(one_at_a_time: RunQueue) -> None:
    async def searches(run: ActiveRun) -> dict[str, Any] | None:
        await asyncio.to_thread(run.stop.wait, 30)
        return {"best_so_far": 42}

    one_at_a_time.register("searches", searches)
    run_id = await one_at_a_time.enqueue("searches", {})
    await until_active(one_at_a_time, run_id)
    await one_at_a_time.cancel(run_id)
    done = await one_at_a_time.wait(run_id)
    # It ended with what it had: a result, so done (a run with none is cancelled).
    assert (done.status, done.result) == ("done", {"best_so_far": 42})


async def test_bad_runs_are_refused_before_anything_is_queued(one_at_a_time: RunQueue) -> None:
    import pytest

    with pytest.raises(ValueError, match="no handler"):
        await one_at_a_time.enqueue("no such kind", {})
    one_at_a_time.register("noop", _noop)
    with pytest.raises(ValueError, match="priority"):
        await one_at_a_time.enqueue("noop", {}, priority=10)
    assert sum((await one_at_a_time.metrics()).values()) == 0


async def test_a_run_that_ends_while_its_progress_is_being_saved_leaves_no_lock_behind(
    one_at_a_time: RunQueue, sqlite_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin's audit check ended while the watcher was saving its first figures (a
    sweep held SQLite's write lock a moment). The save was cancelled half-way: its
    figures were lost, and a connection cancelled mid-transaction can keep the write
    lock, so the run's last save waited out the busy timeout while the page showed
    "Checking: 0 of 2" (seen under load). The watcher is told to stop, not cancelled:
    its save finishes, the figures stay, and the next writer gets the lock at once."""
    saving = asyncio.Event()
    real_save = records.save_progress

    async def save_progress(*args: Any, **kwargs: Any) -> bool:
        saving.set()
        return await real_save(*args, **kwargs)

    monkeypatch.setattr(records, "save_progress", save_progress)
    path = sqlite_database_url.split("///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    started, go, returned = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def counts(job: ActiveRun) -> dict[str, Any]:
        started.set()
        await go.wait()
        job.report({"done": 2, "total": 2})
        await saving.wait()  # the watcher is saving, and waits for the lock
        returned.set()
        return {"entries": 2}

    one_at_a_time.register("counts", counts)
    run_id = await one_at_a_time.enqueue("counts", {})
    await started.wait()
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    go.set()
    await returned.wait()
    await asyncio.sleep(0.2)  # the run is winding down while the save still waits
    holder.rollback()
    done = await one_at_a_time.wait(run_id)
    assert (done.status, done.result, done.progress) == (
        "done",
        {"entries": 2},
        {"done": 2, "total": 2},
    )
    # Nobody holds the write lock now: a writer that will not wait gets it.
    holder.execute("PRAGMA busy_timeout=0")
    holder.execute("BEGIN IMMEDIATE")
    holder.rollback()
    holder.close()


async def _noop(run: ActiveRun) -> None:
    return None


async def until_active(queue: RunQueue, run_id: str) -> None:
    while True:
        found = await queue.status(run_id)
        if found is not None and found.status == "active":
            return
        await asyncio.sleep(0.01)


async def test_a_worker_whose_listener_fails_listens_again(
    one_at_a_time: RunQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker error the receiver does not survive must not leave a worker that beats
    (so counts as alive) but takes no run: the listener starts again."""
    broker = one_at_a_time.broker
    real_listen = broker.listen
    listens: list[int] = []

    async def breaks_the_first_time() -> AsyncGenerator[bytes, None]:
        listens.append(len(listens) + 1)
        if len(listens) == 1:
            raise RuntimeError("the line to the broker broke")
        async for message in real_listen():
            yield message

    monkeypatch.setattr(broker, "listen", breaks_the_first_time)

    async def double(run: ActiveRun) -> dict[str, Any]:
        return {"twice": run.payload["n"] * 2}

    one_at_a_time.register("double", double)
    run_id = await one_at_a_time.enqueue("double", {"n": 4})
    # Bounded, so that a worker that stopped listening fails here instead of hanging.
    done = await asyncio.wait_for(one_at_a_time.wait(run_id), 120)
    assert (done.status, done.result) == ("done", {"twice": 8})
    assert listens[:2] == [1, 2]


@pytest.mark.redis
async def test_a_redis_timeout_while_waiting_for_runs_is_survived(
    db: Database, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = RunQueue(
        db=db,
        redis_url=redis_url,
        concurrency=1,
        queue_name=f"takt-test:{uuid.uuid4().hex}",
    )
    real_brpop = Redis.brpop
    timeouts: list[str] = []

    async def times_out_once(self: Redis, *args: Any, **kwargs: Any) -> Any:
        if not timeouts:
            timeouts.append("brpop")
            raise RedisTimeoutError("Timeout reading from socket")
        return await real_brpop(self, *args, **kwargs)

    monkeypatch.setattr(Redis, "brpop", times_out_once)

    async def double(run: ActiveRun) -> dict[str, Any]:
        return {"twice": run.payload["n"] * 2}

    queue.register("double", double)
    try:
        run_id = await queue.enqueue("double", {"n": 5})
        done = await asyncio.wait_for(queue.wait(run_id), 120)
        assert (done.status, done.result, timeouts) == ("done", {"twice": 10}, ["brpop"])
    finally:
        await queue.stop()
