"""Operators run their tasks: start, pause, complete — recording actual times.

An operator acts only on tasks assigned to them; schedulers and admins may
act for anyone (e.g. to correct a forgotten "complete").
"""

from __future__ import annotations

from app import clock
from app.auth.permissions import can_see_task, require, require_some
from app.db import tables as t
from app.services.context import Actor, Services
from app.services.errors import NotFound, StateConflict
from app.services.views import View, task_views
from app.services.write_path import Transaction, change

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"scheduled", "paused"}), "in_progress"),
    "pause": (frozenset({"in_progress"}), "paused"),
    "complete": (frozenset({"in_progress", "paused"}), "done"),
}


async def run_task_action(
    *,
    services: Services,
    actor: Actor,
    task_id: int,
    action: str,
    expected_version: int | None = None,
) -> View:
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
        now = clock.now()
        task.status = target
        if action == "start" and task.actual_start is None:
            task.actual_start = now
        if action == "complete":
            task.actual_end = now
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
