"""Operators run their tasks: start, pause, complete — recording actual times.

An operator acts only on tasks assigned to them; schedulers and admins may
act for anyone (e.g. to correct a forgotten "complete").

An action may say when it happened (`at`): a phone that was offline sends
the moment the operator tapped, and that moment is recorded, not the moment
the action reached the server. It is accepted within bounds (`action_time`):
at most TAP_SKEW ahead of the server's clock (a phone's clock a little fast;
recorded as now), at most TAP_MAX_AGE old (a day: longer than any shift an
outbox waits through; older, a scheduler records it instead), not before the task's
previous action (actions stay in order, a task ends after it starts). There
is no bound by the plan: operators start early and late, and a scheduler's
move after the tap does not undo a start that happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app import clock
from app.clock import as_utc
from app.db import tables as t
from app.domain.plan import TaskStatus
from app.services.access import can_see_task, require, require_some
from app.services.context import Actor, Services
from app.services.errors import InvalidInput, NotFound, StateConflict
from app.services.views import TaskView, task_views
from app.services.write_path import Transaction, change

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({TaskStatus.SCHEDULED, TaskStatus.PAUSED}), TaskStatus.IN_PROGRESS),
    "pause": (frozenset({TaskStatus.IN_PROGRESS}), TaskStatus.PAUSED),
    "complete": (frozenset({TaskStatus.IN_PROGRESS, TaskStatus.PAUSED}), TaskStatus.DONE),
}
TAP_SKEW = timedelta(minutes=2)
TAP_MAX_AGE = timedelta(hours=24)


async def run_task_action(
    *,
    services: Services,
    actor: Actor,
    task_id: int,
    action: str,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> TaskView:
    allowed_from, target = TRANSITIONS[action]
    # Who may act comes before anything about the task: a role that may never
    # run tasks is refused whatever the id; an operator learns nothing (not even a
    # version) of a task that is not theirs, which answers as a missing one does.
    require_some(actor, "task.execute")
    async with change(services, actor, f"task.{action}") as tx:
        await _check_owner(tx, actor, task_id)
        task = await tx.claim(t.Task, task_id, expected_version)
        # Claimed (the row is ours now): a reassignment committed meanwhile counts.
        if not await _check_owner(tx, actor, task_id):
            raise StateConflict(f"task {task_id} is not scheduled")
        if task.status not in allowed_from:
            raise StateConflict(
                f"cannot {action} task {task_id}: it is {task.status}",
                {"status": task.status, "allowed_from": sorted(allowed_from)},
            )
        before = {"status": task.status}
        when = action_time(at, now=clock.now(), previous=_previous_action(task))
        task.status = target
        task.last_action_at = when
        if action == "start" and task.actual_start is None:
            task.actual_start = when
        if action == "complete":
            task.actual_end = when
        tx.audit("tasks", task_id, before=before, after={"status": target})
        # Built before commit: a committed action is never answered with an error.
        await tx.session.flush()
        view = (await task_views(tx.session, tx.schedule_id, [task]))[0]
    return view


async def _check_owner(tx: Transaction, actor: Actor, task_id: int) -> bool:
    """Refuse a task the actor may not run; whether it is scheduled at all."""
    assignment = await tx.session.get(
        t.Assignment, {"schedule_id": tx.schedule_id, "task_id": task_id}, populate_existing=True
    )
    assigned_to = assignment.operator_id if assignment is not None else None
    if not can_see_task(actor, assigned_to):
        raise NotFound("tasks", task_id)
    require(actor, "task.execute", task_operator_id=assigned_to)
    return assignment is not None


def action_time(at: datetime | None, *, now: datetime, previous: datetime | None) -> datetime:
    """The moment to record for an action tapped `at` (None: now), within the bounds above."""
    if at is None:
        return now
    at = as_utc(at)
    if at > now + TAP_SKEW:
        raise InvalidInput(
            "at is in the future: check the device's clock",
            {"at": at.isoformat(), "latest": (now + TAP_SKEW).isoformat()},
        )
    if at < now - TAP_MAX_AGE:
        raise InvalidInput(
            f"at is more than {TAP_MAX_AGE.total_seconds() / 3600:g} hours ago: "
            "ask a scheduler to record it",
            {"at": at.isoformat(), "earliest": (now - TAP_MAX_AGE).isoformat()},
        )
    if previous is not None and at < previous:
        raise StateConflict(
            "at is before the task's previous action",
            {"at": at.isoformat(), "previous_action_at": previous.isoformat()},
        )
    return min(at, now)


def _previous_action(task: t.Task) -> datetime | None:
    moments = [as_utc(m) for m in (task.last_action_at, task.actual_start, task.actual_end) if m]
    return max(moments, default=None)
