"""The run queue as the services see it: who may look at or stop a run, and its metrics.

Runs have no request, so each carries its actor (ids and role only)
in its payload; `actor_of_run` turns it back into the `Actor` whose name
its changes are written under.
"""

from __future__ import annotations

from typing import TypedDict

from app.background.queue import ActiveRun, RunQueue
from app.background.records import RunRecord, failed
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import NotFound, StateConflict


def queue_of(services: Services) -> RunQueue:
    if services.queue is None:
        raise StateConflict("this server has no job queue")
    return services.queue


class RunActor(TypedDict):
    """The actor as a run's payload carries it: ids and role, nothing personal."""

    user_id: int | None
    role: str
    operator_id: int | None


def run_actor(actor: Actor) -> RunActor:
    return {"user_id": actor.user_id, "role": actor.role, "operator_id": actor.operator_id}


def actor_of_run(run: ActiveRun) -> Actor:
    found = run.payload.get("actor") or {}
    return Actor(
        user_id=found.get("user_id"),
        role=str(found.get("role", "scheduler")),
        operator_id=found.get("operator_id"),
    )


async def run_status(*, services: Services, actor: Actor, run_id: str) -> RunRecord:
    require(actor, "plan.read")
    found = await queue_of(services).status(run_id)
    if found is None:
        raise NotFound("background jobs", run_id)
    return found


async def run_of_kind(services: Services, run_id: str, kind: str, *, entity: str) -> RunRecord:
    """The run if it is a `kind` run; a run of another kind is not found, like a missing one."""
    found = await queue_of(services).status(run_id)
    if found is None or found.kind != kind:
        raise NotFound(entity, run_id)
    return found


async def cancel_run(*, services: Services, actor: Actor, run_id: str) -> RunRecord:
    found = await run_status(services=services, actor=actor, run_id=run_id)
    require(actor, _cancel_action(found.kind))
    if found.finished:
        raise StateConflict(f"background job {run_id} is {found.status} already")
    await queue_of(services).cancel(run_id)
    return await run_status(services=services, actor=actor, run_id=run_id)


async def queue_metrics(*, services: Services, actor: Actor) -> dict[str, int | float | None]:
    require(actor, "plan.read")
    queue = queue_of(services)
    liveness = await queue.liveness()
    workers = None if liveness.workers is None else len(liveness.workers)
    return {
        **await queue.metrics(),
        "workers_alive": workers,
        "oldest_waiting_s": liveness.oldest_waiting_s,
    }


async def dead_letters(
    *, services: Services, actor: Actor, limit: int, offset: int
) -> tuple[list[RunRecord], int]:
    """Failed runs with their error, newest first."""
    require(actor, "plan.read")
    return await failed(queue_of(services).db, limit=limit, offset=offset)


def _cancel_action(kind: str) -> str:
    """Who may stop a run: whoever may start one of its kind (others: admins only)."""
    if kind == "plan.optimize":
        return "plan.optimize"
    return "assignment.write" if kind.startswith("bulk.") else "users.manage"
