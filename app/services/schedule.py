"""Questions about the plan: is it valid, what changed, what is critical."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.db import tables as t
from app.db.plan_queries import (
    load_job,
    load_neighbourhood,
    load_plan,
    schedule_revision,
    schedule_revision_and_timezone,
)
from app.domain.bounds import slot_error
from app.domain.conflicts import Conflict
from app.domain.critical_path import CriticalPath, critical_path
from app.domain.plan import Assignment, Interval, Plan
from app.domain.validation import valid_until, validate_assignment, validate_plan
from app.services.access import allowed, require
from app.services.context import Actor, Services
from app.services.errors import InvalidInput, NotFound
from app.services.offload import offload


@dataclass(frozen=True, slots=True)
class Validation:
    conflicts: list[Conflict]
    revision: int

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(str(conflict.type) for conflict in self.conflicts))


async def validate_schedule(*, services: Services, actor: Actor) -> Validation:
    """Every conflict of the live plan: computed once per revision, one at a time.

    The whole plan is the heaviest read there is (~0.3 s at plant scale), and
    its answer only changes with a new revision (or, for work on equipment
    that is down, when the clock passes `valid_until`). So the answer is kept
    per revision, and concurrent askers wait for one computation instead of
    each loading the plant again.
    """
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    kept: dict[int, _Kept] = services.memo.setdefault("plan_validation", {})
    lock: asyncio.Lock = services.memo.setdefault("plan_validation_lock", asyncio.Lock())
    async with lock:
        now = clock.now()
        async with services.db.read() as session, session.begin():
            revision = await schedule_revision(session, schedule_id)
            found = kept.get(schedule_id)
            if found is not None and found.answers(revision, now):
                return Validation(found.conflicts, revision)
            plan = await load_plan(session, schedule_id)
            # READ COMMITTED reads each statement afresh: keep the answer only if
            # no change committed while the plan was read.
            unchanged = await schedule_revision(session, schedule_id) == revision
        conflicts = await offload(validate_plan, plan, now=now)
        if unchanged:
            kept[schedule_id] = _Kept(revision, conflicts, valid_until(plan, now=now))
    return Validation(conflicts, revision)


@dataclass(frozen=True, slots=True)
class _Kept:
    revision: int
    conflicts: list[Conflict]
    until: datetime | None

    def answers(self, revision: int, now: datetime) -> bool:
        return self.revision == revision and (self.until is None or now < self.until)


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
    if (error := slot_error(start, end)) is not None:
        raise InvalidInput(error, {"start": str(start), "end": str(end)})
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
        return await conflicts_in(session, schedule_id, task_id)


async def conflicts_in(session: AsyncSession, schedule_id: int, task_id: int) -> list[Conflict]:
    """`conflicts_of_task` in an open session (a write's own, before it commits)."""
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
    _, path = await job_plan_and_path(services=services, actor=actor, job_id=job_id)
    return path


async def job_plan_and_path(
    *, services: Services, actor: Actor, job_id: int
) -> tuple[Plan, CriticalPath]:
    """The job alone as a plan, and its CPM; raises `DependencyCycle` if its links loop."""
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        if await session.get(t.Job, job_id) is None:
            raise NotFound("jobs", job_id)
        # The job alone: a job's CPM never looks outside it (and the plant may be large).
        plan = await load_job(session, schedule_id, job_id)
    # A job may be large; its CPM is computed off the event loop like any whole-plan work.
    return plan, await offload(critical_path, plan, job_id)


@dataclass(frozen=True, slots=True)
class Changes:
    # Everything up to this revision is in `changes` (the point to resume from).
    revision: int
    changes: list[dict[str, Any]]
    reload: bool


async def changes_since(
    *, services: Services, actor: Actor, since: int, limit: int = 1000
) -> Changes:
    """The change feed clients resume from; `reload` when the gap is too old.

    The whole plant's log needs plan.read. An operator (own_tasks.read) gets
    the changes that concern them, showing only their own ids: see `OwnScope`.
    """
    whole_plan = allowed(actor, "plan.read")
    if not whole_plan:
        require(actor, "own_tasks.read")
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
        rows = list(
            (
                await session.execute(
                    select(c)
                    .where(c.schedule_id == schedule_id, c.revision > since)
                    .order_by(c.revision)
                    .limit(limit)
                )
            ).scalars()
        )
        scope = None if whole_plan else await own_scope(session, schedule_id, actor)
    if len(rows) == limit:
        revision = rows[-1].revision  # more to come: resume from the last one read
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
    if scope is not None:
        changes = [seen for change in changes if (seen := scope.shown(change)) is not None]
    return Changes(revision, changes, reload=False)


@dataclass(frozen=True, slots=True)
class OwnScope:
    """What of the plan is an operator's own: the tasks assigned to them, and the
    jobs and machines of those tasks. A change concerns them when it touched any
    of it or them; they see it with every other id (and other people's user ids)
    left out."""

    user_id: int | None
    ids: dict[str, frozenset[int]]

    def shown(self, change: dict[str, Any]) -> dict[str, Any] | None:
        entities = change["entities"] if isinstance(change["entities"], dict) else {}
        visible = {
            name: sorted(set(found) & self.ids[name])
            for name, found in entities.items()
            if name in self.ids and isinstance(found, list)
        }
        visible = {name: found for name, found in visible.items() if found}
        if not visible:
            return None
        # Who made it is theirs to know only when it was them.
        actor_id = change["actor_id"] if change["actor_id"] == self.user_id else None
        return {**change, "entities": visible, "actor_id": actor_id}


async def own_scope(session: AsyncSession, schedule_id: int, actor: Actor) -> OwnScope:
    a = t.Assignment
    rows = (
        await session.execute(
            select(a.task_id, a.equipment_id, t.Task.job_id)
            .join(t.Task, t.Task.id == a.task_id)
            .where(a.schedule_id == schedule_id, a.operator_id == (actor.operator_id or -1))
        )
    ).all()
    operators = frozenset({actor.operator_id} if actor.operator_id is not None else ())
    return OwnScope(
        user_id=actor.user_id,
        ids={
            "tasks": frozenset(row.task_id for row in rows),
            "equipment": frozenset(row.equipment_id for row in rows),
            "jobs": frozenset(row.job_id for row in rows),
            "operators": operators,
        },
    )
