"""The kinds of background run this app takes, and attaching the queue to the services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from app.background.queue import ActiveRun, RunQueue, SweepPolicy
from app.services import audit_checks, bulk, drafts, optimizer_runs, plant_import, retention
from app.services.context import Services

Handler = Callable[[Services, ActiveRun], Awaitable[dict[str, Any] | None]]

HANDLERS: dict[str, Handler] = {
    optimizer_runs.KIND: optimizer_runs.run_optimization,
    "bulk.unschedule_job": bulk.run_unschedule_job,
    "bulk.shift_job": bulk.run_shift_job,
    "bulk.shift_tasks": bulk.run_shift_tasks,
    "bulk.clear_equipment": bulk.run_clear_equipment,
    audit_checks.KIND: audit_checks.run_check,
    plant_import.KIND: plant_import.run_import,
}


def attach_queue(services: Services, *, worker: bool | None = None) -> RunQueue:
    """Give `services` a run queue with every handler; its sweep also deletes expired drafts
    and runs retention (`services.retention`) once a day.

    The worker runs in this process when asked, else as TAKT_QUEUE_WORKER
    says, else when there is no Redis (embedded: nothing else would run it).
    """
    settings = services.settings
    if worker is None:
        worker = settings.queue_worker
    if worker is None:
        worker = not settings.redis_url
    queue = RunQueue(
        db=services.db,
        redis_url=settings.redis_url,
        worker=worker,
        concurrency=settings.queue_concurrency,
        queue_name=settings.queue_name,
        sweep_policy=SweepPolicy(
            interval_s=settings.queue_sweep_interval_s,
            lost_after_s=settings.queue_lost_after_s,
            heartbeat_grace_s=settings.queue_heartbeat_grace_s,
        ),
    )
    for kind, handler in HANDLERS.items():
        queue.register(kind, partial(handler, services))
    queue.add_housekeeping("expired drafts", partial(drafts.purge_expired_drafts, services))
    queue.add_housekeeping("retention", retention.when_due(services))
    services.queue = queue
    return queue
