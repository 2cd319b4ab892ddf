"""The job queue: heavy work (optimizer runs, bulk operations) in the background.

    queue.register("plan.optimize", run_optimization)
    run_id = await queue.enqueue("plan.optimize", {...}, priority=5, timeout_s=60, max_retries=2)
    await queue.status(run_id)   # waiting | active | done | failed | cancelled, progress, result
    await queue.cancel(run_id)
    await queue.metrics()        # {"waiting": 1, "active": 1, "done": 7, "failed": 0, ...}

Underneath is taskiq: one task, `takt.run_job(run_id)`, carries each job;
labels carry its priority, `timeout` (taskiq's receiver cancels the job past
it) and retry policy (`RetryWithBackoff`, taskiq's `SmartRetryMiddleware`
with exponential backoff). Embedded, the broker is in-process and a worker
runs inside the app; with `REDIS_URL` jobs go through Redis lists and run in
`takt worker` processes (or in the app too, with TAKT_QUEUE_WORKER=true).
See `brokers` for how priorities and retry delays are honoured.

The `background_jobs` table (`records`) is the truth every process shares:
status, attempts, progress, result, and the dead-letter record (the failed
rows with their error). Progress also goes out on the hub, `queue:{run_id}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge
from taskiq import AsyncBroker, SmartRetryMiddleware
from taskiq.exceptions import NoResultError
from taskiq.kicker import AsyncKicker
from taskiq.message import TaskiqMessage
from taskiq.receiver import Receiver
from taskiq.result import TaskiqResult

from app.db.session import Database
from app.jobs import records
from app.jobs.brokers import DEFAULT_PRIORITY, PRIORITIES, LocalPriorityBroker
from app.jobs.records import JobRecord
from app.realtime.hub import Hub

__all__ = ["JobFailed", "JobQueue", "RunningJob", "queue_channel"]

TASK_NAME = "takt.run_job"
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 300.0
# How often a running job's progress is stored and published, and its cancel flag read.
PROGRESS_INTERVAL_S = 0.5
GAUGE_REFRESH_S = 5.0

QUEUE_JOBS = Gauge("takt_queue_jobs", "Background jobs by status", ["status"])
QUEUE_FINISHED = Counter(
    "takt_queue_jobs_finished_total", "Background jobs finished, by outcome", ["kind", "status"]
)
QUEUE_RETRIES = Counter("takt_queue_retries_total", "Failed attempts retried", ["kind"])

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """Fail the job now, without retrying: what it was asked is wrong, not the weather."""


def queue_channel(run_id: str) -> str:
    return f"queue:{run_id}"


@dataclass
class RunningJob:
    """What a handler gets: its job, a way to report progress, and whether to stop."""

    id: str
    kind: str
    payload: dict[str, Any]
    created_by: int | None
    attempt: int
    # Set when someone cancels the job, it runs past its timeout, or the worker stops.
    stop: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    progress: dict[str, Any] | None = None
    _unsaved: bool = False

    def report(self, progress: dict[str, Any]) -> None:
        """Safe from any thread; stored and published every PROGRESS_INTERVAL_S."""
        self.progress = progress
        self._unsaved = True

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def take_progress(self) -> dict[str, Any] | None:
        if not self._unsaved:
            return None
        self._unsaved = False
        return self.progress


Handler = Callable[[RunningJob], Awaitable[dict[str, Any] | None]]


class JobQueue:
    def __init__(
        self,
        *,
        db: Database,
        hub: Hub,
        redis_url: str | None = None,
        worker: bool = True,
        concurrency: int = 2,
        queue_name: str = "takt:jobs",
    ) -> None:
        self.db = db
        self.hub = hub
        self.worker = worker
        self.concurrency = concurrency
        self.broker = _broker(redis_url, queue_name)
        self.broker.add_middlewares(RetryWithBackoff(self))

        async def run_job(run_id: str) -> dict[str, Any] | None:
            return await self._run(run_id)

        self.broker.register_task(run_job, task_name=TASK_NAME)
        self._handlers: dict[str, Handler] = {}
        self._running: dict[str, RunningJob] = {}
        self._started = False
        self._finish = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

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
        """Queue a job; its run id. Priority 0 (lowest) to 9; retries after the first try."""
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
            created_by=created_by,
        )
        await self.start()
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=TASK_NAME, broker=self.broker, labels={}
        )
        # taskiq's retry middleware counts tries, not retries.
        labels = {"priority": priority, "timeout": timeout_s, "max_retries": max_retries + 1}
        try:
            await kicker.with_task_id(run_id).with_labels(**labels, backoff_s=backoff_s).kiq(run_id)
        except Exception as exc:
            await records.finish(self.db, run_id, status="failed", error=f"not queued: {exc}")
            raise
        await self._announce(run_id, "waiting")
        return run_id

    async def status(self, run_id: str) -> JobRecord | None:
        return await records.get(self.db, run_id)

    async def cancel(self, run_id: str) -> JobRecord | None:
        """Cancel a waiting job; ask an active one to stop (it ends with what it has)."""
        found = await records.cancel(self.db, run_id)
        if found is not None and found.status == "cancelled":
            await self._announce(run_id, "cancelled")
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

    async def wait(self, run_id: str, *, poll_s: float = 0.05) -> JobRecord:
        """Until the job is finished (for the CLI, benchmarks and tests; pages poll instead)."""
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
            receiver = Receiver(
                self.broker,
                executor=self._executor,
                max_async_tasks=self.concurrency,
                # Take a message only when a slot is free, so the priority decides.
                max_prefetch=0,
                run_startup=False,
            )
            self._listener = asyncio.create_task(receiver.listen(self._finish))
        self._gauges = asyncio.create_task(self._refresh_gauges())

    async def stop(self) -> None:
        """Stop taking jobs; running ones are asked to stop and finish with what they have."""
        if not self._started:
            return
        self._started = False
        self._finish.set()
        for job in self._running.values():
            job.stop.set()
        if self._gauges is not None:
            self._gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gauges
        if self._listener is not None:
            # The receiver waits for the running jobs, now stopping.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._listener
        self._gauges = self._listener = None
        await self.broker.shutdown()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def _run(self, run_id: str) -> dict[str, Any] | None:
        """The taskiq task: one try of one job."""
        record = await records.start(self.db, run_id)
        if record is None:
            return None  # cancelled while it waited (or already done elsewhere)
        handler = self._handlers.get(record.kind)
        if handler is None:
            raise JobFailed(f"this worker has no handler for {record.kind!r}")
        job = RunningJob(
            id=run_id,
            kind=record.kind,
            payload=record.payload,
            created_by=record.created_by,
            attempt=record.attempts,
        )
        self._running[run_id] = job
        await self._announce(run_id, "active")
        watcher = asyncio.create_task(self._watch(job))
        try:
            result = await handler(job)
        finally:
            job.stop.set()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._running.pop(run_id, None)
        status = "cancelled" if job.cancelled and result is None else "done"
        await self._save_progress(job)
        await records.finish(self.db, run_id, status=status, result=result)
        QUEUE_FINISHED.labels(record.kind, status).inc()
        await self._announce(run_id, status, result=result)
        return result

    async def failed_attempt(
        self, run_id: str, kind: str, error: str, attempt: int, retry_in_s: float | None
    ) -> None:
        """Record a failed try: back to waiting for a retry, or failed for good (dead letter)."""
        entry = {"attempt": attempt, "error": error, "retry_in_s": retry_in_s}
        status = "waiting" if retry_in_s is not None else "failed"
        await records.finish(self.db, run_id, status=status, error=error, attempt=entry)
        if status == "waiting":
            QUEUE_RETRIES.labels(kind).inc()
        else:
            QUEUE_FINISHED.labels(kind, "failed").inc()
        await self._announce(run_id, status, error=error)

    async def _watch(self, job: RunningJob) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            try:
                if await self._save_progress(job):
                    job.cancelled = True
                    job.stop.set()
            except Exception:  # the job goes on; its progress shows later
                log.exception("job queue: could not save the progress of %s", job.id)

    async def _save_progress(self, job: RunningJob) -> bool:
        progress = job.take_progress()
        asked_to_stop = await records.save_progress(self.db, job.id, progress)
        if progress is not None:
            await self._announce(job.id, "active", progress=progress)
        return asked_to_stop

    async def _announce(self, run_id: str, status: str, **details: Any) -> None:
        message = {"kind": "queue", "run_id": run_id, "status": status, **details}
        try:
            await self.hub.publish(queue_channel(run_id), message)
        except Exception:  # a hint only: the row is the truth
            log.warning("job queue: could not publish %s of %s", status, run_id)

    async def _refresh_gauges(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.metrics()
            await asyncio.sleep(GAUGE_REFRESH_S)


class RetryWithBackoff(SmartRetryMiddleware):
    """taskiq's retry middleware, recording each failed try before the retry is queued.

    Delays grow exponentially: backoff, 2 x backoff, 4 x backoff, ... (capped).
    A job past its timeout, or one that raised `JobFailed`, is not retried.
    """

    def __init__(self, queue: JobQueue) -> None:
        super().__init__(default_retry_label=True, default_delay=DEFAULT_BACKOFF_S)
        self.max_delay_exponent = MAX_BACKOFF_S
        self.queue = queue

    def make_delay(self, message: TaskiqMessage, retries: int) -> float:
        base = float(message.labels.get("backoff_s", self.default_delay))
        return float(min(base * 2 ** (retries - 1), self.max_delay_exponent))

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        if message.task_name != TASK_NAME or isinstance(exception, NoResultError):
            return
        attempt = int(message.labels.get("_retries", 0)) + 1
        tries = int(message.labels.get("max_retries", 1))
        final = isinstance(exception, TimeoutError | JobFailed | asyncio.CancelledError)
        retry_in = None if final or attempt >= tries else self.make_delay(message, attempt)
        run_id = str(message.args[0])
        found = await records.get(self.queue.db, run_id)
        kind = found.kind if found is not None else "unknown"
        await self.queue.failed_attempt(
            run_id, kind, _described(exception, message), attempt, retry_in
        )
        if retry_in is None:
            return
        kicker: AsyncKicker[Any, Any] = (
            AsyncKicker(task_name=message.task_name, broker=self.broker, labels=message.labels)
            .with_task_id(message.task_id)
            .with_labels(_retries=attempt)
        )
        await self.on_send(kicker, message, retry_in)
        result.error = NoResultError()


def _described(exception: BaseException, message: TaskiqMessage) -> str:
    if isinstance(exception, TimeoutError):
        return f"stopped: it ran past its timeout of {message.labels.get('timeout')} s"
    if isinstance(exception, asyncio.CancelledError):
        return "stopped: the worker was shut down"
    return f"{type(exception).__name__}: {exception}"


def _broker(redis_url: str | None, queue_name: str) -> AsyncBroker:
    if redis_url is None:
        return LocalPriorityBroker()
    from taskiq_redis import RedisAsyncResultBackend

    from app.jobs.brokers import RedisPriorityBroker

    backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(redis_url, result_ex_time=86400)
    return RedisPriorityBroker(redis_url, queue_name=queue_name).with_result_backend(backend)
