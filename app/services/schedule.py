"""Questions about the plan: is it valid, what changed, what is critical."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app import clock
from app.auth.permissions import require
from app.db import tables as t
from app.db.plan_queries import (
    load_job,
    load_neighbourhood,
    load_plan,
    schedule_revision,
    schedule_revision_and_timezone,
)
from app.domain.conflicts import Conflict
from app.domain.critical_path import CriticalPath, critical_path
from app.domain.plan import Assignment, Interval
from app.domain.validation import validate_assignment, validate_plan
from app.services.context import Actor, Services
from app.services.errors import InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class Validation:
    conflicts: list[Conflict]
    revision: int

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(str(conflict.type) for conflict in self.conflicts))


async def validate_schedule(*, services: Services, actor: Actor) -> Validation:
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        plan = await load_plan(session, schedule_id)
    return Validation(validate_plan(plan, now=clock.now()), revision)


async def validate_proposal(
    *,
    services: Services,
    actor: Actor,
    task_id: int,
    operator_id: int,
    equipment_id: int,
    start: datetime,
    end: datetime,
) -> Validation:
    """What a task would conflict with if placed there; nothing is saved."""
    require(actor, "plan.read")
    proposal = Assignment(task_id, operator_id, equipment_id, start, end)
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        revision, timezone = await schedule_revision_and_timezone(session, schedule_id)
        plan = await load_neighbourhood(
            session,
            schedule_id,
            task_id=task_id,
            operator_id=operator_id,
            equipment_id=equipment_id,
            window=Interval(start, end),
            timezone=timezone,
        )
    missing = [
        name
        for name, present in (
            ("task_id", task_id in plan.tasks),
            ("operator_id", operator_id in plan.operators),
            ("equipment_id", equipment_id in plan.equipment),
        )
        if not present
    ]
    if missing:
        raise InvalidInput("the proposal names things that do not exist", {"unknown": missing})
    return Validation(validate_assignment(plan, proposal, now=clock.now()), revision)


async def conflicts_of_task(*, services: Services, task_id: int) -> list[Conflict]:
    """The conflicts the task's current assignment has (empty when unscheduled)."""
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        placed = await session.get(t.Assignment, {"schedule_id": schedule_id, "task_id": task_id})
        if placed is None:
            return []
        plan = await load_neighbourhood(
            session,
            schedule_id,
            task_id=task_id,
            operator_id=placed.operator_id,
            equipment_id=placed.equipment_id,
            window=Interval(placed.start, placed.end),
        )
    return validate_assignment(plan, plan.assignments[task_id], now=clock.now())


async def job_critical_path(*, services: Services, actor: Actor, job_id: int) -> CriticalPath:
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        if await session.get(t.Job, job_id) is None:
            raise NotFound("jobs", job_id)
        # The job alone: a job's CPM never looks outside it (and the plant may be large).
        plan = await load_job(session, schedule_id, job_id)
    return critical_path(plan, job_id)


@dataclass(frozen=True, slots=True)
class Changes:
    revision: int
    changes: list[dict[str, Any]]
    reload: bool


async def changes_since(
    *, services: Services, actor: Actor, since: int, limit: int = 1000
) -> Changes:
    """The change feed clients resume from; `reload` when the gap is too old.

    Operators may follow the feed (their pages need to know when to refresh),
    but it carries ids only; what they can read is still checked per request.
    """
    schedule_id = await services.live_schedule_id()
    if since < 0:
        raise InvalidInput("since must be >= 0", {"since": since})
    c = t.ChangeLogEntry
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        oldest = await session.scalar(
            select(func.min(c.revision)).where(c.schedule_id == schedule_id)
        )
        too_old = revision - since > services.settings.change_feed_window or (
            oldest is not None and since < oldest - 1
        )
        if too_old or since > revision:
            return Changes(revision, [], reload=True)
        rows = (
            await session.execute(
                select(c)
                .where(c.schedule_id == schedule_id, c.revision > since)
                .order_by(c.revision)
                .limit(limit)
            )
        ).scalars()
        changes = [
            {
                "revision": row.revision,
                "kind": row.kind,
                "entity": row.entity,
                "entities": row.entity_ids,
                "actor_id": row.actor_id,
                "at": row.created_at,
            }
            for row in rows
        ]
    return Changes(revision, changes, reload=False)
