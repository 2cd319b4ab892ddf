"""The run queue: heavy work (optimizer runs, bulk operations) in the background.

    queue.register("plan.optimize", run_optimization)
    run_id = await queue.enqueue("plan.optimize", {...}, priority=5, timeout_s=60, max_retries=2)
    await queue.status(run_id)   # waiting | active | done | failed | cancelled, progress, result
    await queue.cancel(run_id)
    await queue.metrics()        # {"waiting": 1, "active": 1, "done": 7, "failed": 0, ...}
    await queue.sweep()          # lost and abandoned runs back in line (also every minute)

Underneath is taskiq: one task, `takt.run_job(run_id)`, carries each job;
labels carry its priority, `timeout` (taskiq's receiver cancels the run past
it) and retry policy (`retries`: taskiq's `SmartRetryMiddleware` with
exponential backoff). Embedded, the broker is in-process and a worker
runs inside the app; with `REDIS_URL` runs go through Redis lists and run in
`takt worker` processes (or in the app too, with TAKT_QUEUE_WORKER=true).
See `brokers` for how priorities and retry delays are honoured.

The `background_jobs` table (`records`) is the truth every process shares:
status, attempts, progress, result, and the dead-letter record (the failed
rows with their error). The optimizer panel and the API poll it.
A run's worker beats on its row; the sweep (`sweep`) queues again
a run whose message was lost and takes back the runs of a worker that died.
Each worker also beats as itself (`workers`), so `liveness()` can say how
many are alive and how long the oldest due run has waited for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import structlog
from prometheus_client import Counter, Gauge
from taskiq import Context, TaskiqDepends
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver

from app import clock, tracing
from app.background import records
from app.background.brokers import DEFAULT_PRIORITY, PRIORITIES, RedisPriorityBroker, make_broker
from app.background.records import RunRecord
from app.background.retries import DEFAULT_BACKOFF_S, RetryWithBackoff, RunFailed
from app.background.running import ActiveRun, detached, waker
from app.background.sweep import SweepPolicy, Swept, sweep
from app.background.workers import (
    BEAT_S,
    LocalWorkers,
    RedisWorkers,
    WorkerInfo,
    Workers,
    beat_until,
    listen_until,
)
from app.db.session import Database

__all__ = ["ActiveRun", "Liveness", "RunFailed", "RunQueue", "SweepPolicy"]

TASK_NAME = "takt.run_job"
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RETRIES = 2
# How often a run's progress is stored and published, and its cancel flag read.
PROGRESS_INTERVAL_S = 0.5
GAUGE_REFRESH_S = 5.0

QUEUE_JOBS = Gauge("takt_queue_jobs", "Background jobs by status", ["status"])
QUEUE_FINISHED = Counter(
    "takt_queue_jobs_finished_total", "Background jobs finished, by outcome", ["kind", "status"]
)
QUEUE_RETRIES = Counter("takt_queue_retries_total", "Failed attempts retried", ["kind"])
QUEUE_WORKERS = Gauge("takt_queue_workers_alive", "Workers that beat within their time to live")
QUEUE_OLDEST_WAITING = Gauge(
    "takt_queue_oldest_waiting_seconds", "How long the oldest due job has waited for a worker"
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Liveness:
    """Is anyone there to take the runs? `workers` None: the registry could not be read."""

    workers: list[WorkerInfo] | None
    oldest_waiting_s: float | None


Handler = Callable[[ActiveRun], Awaitable[dict[str, Any] | None]]
Housekeeping = Callable[[], Awaitable[object]]


class RunQueue:
    def __init__(
        self,
        *,
        db: Database,
        redis_url: str | None = None,
        worker: bool = True,
        concurrency: int = 2,
        queue_name: str = "takt:jobs",
        sweep_policy: SweepPolicy | None = None,
    ) -> None:
        self.db = db
        self.worker = worker
        self.concurrency = concurrency
        self.sweep_policy = sweep_policy or SweepPolicy()
        # Who takes a run, on its row: which process to look at when it stops beating.
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.broker = make_broker(redis_url, queue_name)
        self.broker.add_middlewares(RetryWithBackoff(self, task_name=TASK_NAME))
        # Embedded, this process is the worker (it starts with the first run if not before).
        self.workers: Workers = (
            RedisWorkers(self.broker.connection_pool, queue_name)
            if isinstance(self.broker, RedisPriorityBroker)
            else LocalWorkers(
                WorkerInfo(self.worker_id, clock.now(), concurrency, 0) if worker else None
            )
        )

        async def run_once(
            run_id: str,
            context: Context = TaskiqDepends(),  # noqa: B008 (taskiq injects it)
        ) -> dict[str, Any] | None:
            return await self._run_traced(run_id, context.message.labels)

        self.broker.register_task(run_once, task_name=TASK_NAME)
        self._handlers: dict[str, Handler] = {}
        self._housekeeping: dict[str, Housekeeping] = {}
        self._running: dict[str, ActiveRun] = {}
        self._started = False
        self._finish = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def add_housekeeping(self, name: str, chore: Housekeeping) -> None:
        """Something to do on every sweep, after the runs (e.g. deleting expired drafts)."""
        self._housekeeping[name] = chore

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    # --- the interface ---------------------------------------------------------------------

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = DEFAULT_PRIORITY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        created_by: int | None = None,
    ) -> str:
        """Queue a run; its run id. Priority 0 (lowest) to 9; retries after the first try."""
        if kind not in self._handlers:
            raise ValueError(f"no handler for background job kind {kind!r}")
        if priority not in PRIORITIES or timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError("priority 0-9, a positive timeout, retries and backoff >= 0")
        run_id = uuid.uuid4().hex
        await records.create(
            self.db,
            run_id=run_id,
            kind=kind,
            payload=payload,
            priority=priority,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            created_by=created_by,
        )
        await self.start()
        try:
            await self._kick(run_id, priority, timeout_s, max_retries, backoff_s, tries=0)
        except Exception as exc:
            await records.finish(self.db, run_id, status="failed", error=f"not queued: {exc}")
            raise
        return run_id

    async def status(self, run_id: str) -> RunRecord | None:
        return await records.get(self.db, run_id)

    async def cancel(self, run_id: str) -> RunRecord | None:
        """Cancel a waiting run; ask an active one to stop (it ends with what it has)."""
        found = await records.cancel(self.db, run_id)
        running = self._running.get(run_id)
        if running is not None:
            running.cancelled = True
            running.stop.set()
        return found

    async def metrics(self) -> dict[str, int]:
        counts = await records.counts(self.db)
        for status, count in counts.items():
            QUEUE_JOBS.labels(status).set(count)
        return counts

    async def liveness(self) -> Liveness:
        """How many workers are alive, and how long the oldest due run has waited."""
        try:
            alive: list[WorkerInfo] | None = await self.workers.alive()
        except Exception as exc:  # Redis is away: unknown, not "none"
            log.warning("job queue: could not read the live workers: %s", exc)
            alive = None
        since = await records.oldest_waiting_since(self.db)
        waited = None if since is None else max(0.0, (clock.now() - since).total_seconds())
        QUEUE_WORKERS.set(len(alive or []))
        QUEUE_OLDEST_WAITING.set(waited or 0.0)
        return Liveness(alive, waited)

    async def sweep(self) -> Swept:
        """Take back lost and abandoned runs, then do the housekeeping (see `sweep`)."""
        return await sweep(self, self.sweep_policy, self._housekeeping)

    async def wait(self, run_id: str, *, poll_s: float = 0.05) -> RunRecord:
        """Until the run is finished (for the CLI, benchmarks and tests; pages poll instead)."""
        while True:
            found = await records.get(self.db, run_id)
            if found is None:
                raise LookupError(f"no background job {run_id}")
            if found.finished:
                return found
            await asyncio.sleep(poll_s)

    # --- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the broker, and the worker when this process runs one (idempotent)."""
        if self._started:
            return
        self._started = True
        self._finish = asyncio.Event()
        await self.broker.startup()
        if self.worker:
            self._executor = ThreadPoolExecutor(max_workers=1)
            self._listener = detached(listen_until(self._listen, self._finish))
            # The first beat before this returns: a started worker counts as alive at once.
            started_at = clock.now()
            with contextlib.suppress(Exception):
                await self.workers.beat(self._me(started_at))
            self._beater = background_loop(
                lambda: beat_until(self.workers, lambda: self._me(started_at), self._finish)
            )
        self._gauges = background_loop(self._refresh_gauges)
        self._sweeper = background_loop(self._sweep_periodically)

    async def _listen(self) -> None:
        receiver = Receiver(
            self.broker,
            executor=self._executor,
            max_async_tasks=self.concurrency,
            # Take a message only when a slot is free, so the priority decides.
            max_prefetch=0,
            run_startup=False,
        )
        await receiver.listen(self._finish)

    async def stop(self) -> None:
        """Stop taking runs; running ones are asked to stop and finish with what they have."""
        if not self._started:
            return
        self._started = False
        self._finish.set()
        for run in self._running.values():
            run.stop.set()
        for task in (self._gauges, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._beater is not None:
            # It ends by itself on `_finish` (a cancellation redis-py swallows would not end it).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._beater, BEAT_S * 2)
            self._beater = None
        if self._listener is not None:
            # The receiver waits for the runs in progress, now stopping.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._listener
        self._gauges = self._sweeper = self._listener = None
        await self.broker.shutdown()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def _run_traced(self, run_id: str, labels: dict[str, Any]) -> dict[str, Any] | None:
        """One try, in the trace and with the request id of the request that queued it."""
        structlog.contextvars.clear_contextvars()
        request_id = labels.get("request_id")
        structlog.contextvars.bind_contextvars(
            run_id=run_id, **({"request_id": request_id} if isinstance(request_id, str) else {})
        )
        with tracing.span(
            "background run",
            carrier=tracing.carried(labels),
            kind=tracing.SpanKind.CONSUMER,
            attributes={
                "takt.run_id": run_id,
                "takt.attempt": int(labels.get("_retries", 0)),
                **({"takt.request_id": request_id} if isinstance(request_id, str) else {}),
            },
        ):
            started, outcome = time.perf_counter(), "failed"
            try:
                result = await self._run(run_id)
                outcome = "ended"
                return result
            finally:
                # One line per try, like a request's (with its request id and trace id).
                structlog.get_logger("takt.queue").info(
                    "background run",
                    outcome=outcome,
                    ms=round((time.perf_counter() - started) * 1000),
                )

    async def _run(self, run_id: str) -> dict[str, Any] | None:
        """The taskiq task: one try of one run."""
        record = await records.start(self.db, run_id, worker=self.worker_id)
        if record is None:
            return None  # cancelled while it waited (or already done elsewhere)
        tracing.set_attribute("takt.run_kind", record.kind)
        handler = self._handlers.get(record.kind)
        if handler is None:
            raise RunFailed(f"this worker has no handler for {record.kind!r}")
        run = ActiveRun(
            id=run_id,
            kind=record.kind,
            payload=record.payload,
            created_by=record.created_by,
            attempt=record.attempts,
        )
        self._running[run_id] = run
        woken = asyncio.Event()
        run._wake = waker(asyncio.get_running_loop(), woken)
        ended = asyncio.Event()
        watcher = asyncio.create_task(self._watch(run, woken, ended))
        try:
            result = await handler(run)
        finally:
            run.stop.set()
            # Told, not cancelled: a save cancelled in the middle leaves its SQLite
            # connection holding the write lock, and every writer waits out the busy timeout.
            ended.set()
            woken.set()
            await asyncio.shield(watcher)
            self._running.pop(run_id, None)
        status = "cancelled" if run.cancelled and result is None else "done"
        await self._save_progress(run)
        if (
            await records.finish(
                self.db, run_id, status=status, result=result, worker=self.worker_id
            )
            is None
        ):
            return result  # the sweep took the run back meanwhile: its decision stands
        QUEUE_FINISHED.labels(record.kind, status).inc()
        return result

    async def failed_attempt(
        self, run_id: str, kind: str, error: str, attempt: int, retry_in_s: float | None
    ) -> None:
        """Record a failed try: back to waiting for a retry, or failed for good (dead letter)."""
        entry = {"attempt": attempt, "error": error, "retry_in_s": retry_in_s}
        status = "waiting" if retry_in_s is not None else "failed"
        taken = await records.finish(
            self.db,
            run_id,
            status=status,
            error=error,
            attempt=entry,
            retry_in_s=retry_in_s or 0,
            worker=self.worker_id,
        )
        if taken is None:
            return  # the sweep took the run back meanwhile: its decision stands
        if status == "waiting":
            QUEUE_RETRIES.labels(kind).inc()
        else:
            QUEUE_FINISHED.labels(kind, "failed").inc()

    # --- the sweep's side ---------------------------------------------------------------------

    async def queued(self) -> dict[str, int]:
        """The runs with a message in the broker, waiting or delayed, and its priority."""
        return await self.broker.queued()

    async def kick_again(self, found: RunRecord) -> None:
        """Queue a run's message again, with its priority and the tries it has left."""
        await self._kick(
            found.id,
            found.priority,
            found.timeout_s,
            found.max_retries,
            found.backoff_s,
            tries=found.attempts,
        )

    async def gave_up(self, found: RunRecord, error: str) -> None:
        QUEUE_FINISHED.labels(found.kind, "failed").inc()

    async def _kick(
        self,
        run_id: str,
        priority: int,
        timeout_s: float,
        max_retries: int,
        backoff_s: float,
        *,
        tries: int,
    ) -> None:
        # taskiq's retry middleware counts tries, not retries; `_retries` is how many were made.
        labels: dict[str, Any] = {
            "priority": priority,
            "timeout": timeout_s,
            "max_retries": max_retries + 1,
        }
        labels |= {"backoff_s": backoff_s, "_retries": tries}
        # The request that queued it (none for the sweep's): its trace and request id go along.
        tracing.inject(labels)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if isinstance(request_id, str):
            labels["request_id"] = request_id
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=TASK_NAME, broker=self.broker, labels={}
        )
        await kicker.with_task_id(run_id).with_labels(**labels).kiq(run_id)

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_policy.interval_s)
            try:
                await self.sweep()
            except Exception:  # the database or Redis is away; the next sweep tries again
                log.exception("job queue: the sweep failed")

    # --- progress ------------------------------------------------------------------------------

    async def _watch(self, run: ActiveRun, woken: asyncio.Event, ended: asyncio.Event) -> None:
        """Store the run's progress and heartbeat until it has `ended` (the run stores its
        last progress itself)."""
        last_beat = time.monotonic()
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                interval = min(PROGRESS_INTERVAL_S, self.sweep_policy.heartbeat_s)
                await asyncio.wait_for(woken.wait(), interval)
            woken.clear()
            if ended.is_set():
                return
            beat = time.monotonic() - last_beat >= self.sweep_policy.heartbeat_s
            try:
                if await self._save_progress(run, beat=beat):
                    run.cancelled = True
                    run.stop.set()
                if beat:
                    last_beat = time.monotonic()
            except Exception:  # the run goes on; its progress shows later
                log.exception("job queue: could not save the progress of %s", run.id)

    async def _save_progress(self, run: ActiveRun, *, beat: bool = False) -> bool:
        progress = run.take_progress()
        asked_to_stop = await records.save_progress(self.db, run.id, progress, beat=beat)
        if progress is not None:
            run.saved += 1
        return asked_to_stop

    async def _refresh_gauges(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.metrics()
                await self.liveness()
            await asyncio.sleep(GAUGE_REFRESH_S)

    def _me(self, started_at: datetime) -> WorkerInfo:
        return WorkerInfo(self.worker_id, started_at, self.concurrency, len(self._running))


def background_loop(loop: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
    """Run `loop()` detached and untraced; the coroutine is made only once the task runs,
    so a queue stopped before its loops began leaves none behind never awaited."""

    async def run() -> T:
        return await tracing.untraced(loop())

    return detached(run())
