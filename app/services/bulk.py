"""Bulk operations on the plan, run on the queue with progress.

    unschedule_job   every open task of a job back to the tray
    shift_job        every open task of a job earlier or later by some minutes
    shift_tasks      the tasks a scheduler selected, earlier or later together; each
                     only at the version it was selected at (else nothing moves)
    clear_equipment  every open task on a machine that went down: to another capable
                     machine at the same time when one is free, else to the tray

Starting one checks the permission and the input and queues it; the worker
does it in ONE `change()` (one revision, every task audited, published like
any edit). Tasks that are in progress, paused or done stay where they are
and are listed as skipped (so are tasks a shift would carry out of the
plant horizon, `app/domain/bounds.py`). Each task is claimed without an expected version:
the operation acts on the plan as it is, and bumps every version it touches
so an editor holding an older one gets 412 — except `shift_tasks`, whose
tasks were picked by hand from a board: each is claimed at the version the
board showed, and one changed since fails the whole move.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app import clock
from app.background.queue import ActiveRun, RunFailed
from app.db import tables as t
from app.domain.bounds import horizon_error
from app.services.access import require
from app.services.background import actor_of_run, queue_of, run_actor
from app.services.context import Actor, Services
from app.services.errors import (
    InvalidInput,
    NotFound,
    ServiceError,
    StateConflict,
    VersionMismatch,
)
from app.services.placing import OPEN, Placement
from app.services.write_path import Transaction, change

MAX_SHIFT_MINUTES = 366 * 24 * 60
MAX_SELECTED = 500
# Bulk edits are short and someone is waiting: ahead of optimizer runs.
PRIORITY = 7


async def unschedule_job(*, services: Services, actor: Actor, job_id: int) -> str:
    require(actor, "assignment.write")
    await _exists(services, t.Job, job_id)
    return await _enqueue(services, actor, "bulk.unschedule_job", {"job_id": job_id})


async def shift_job(*, services: Services, actor: Actor, job_id: int, minutes: int) -> str:
    require(actor, "assignment.write")
    if minutes == 0 or abs(minutes) > MAX_SHIFT_MINUTES:
        raise InvalidInput(
            "shift by a non-zero number of minutes, at most a year", {"minutes": minutes}
        )
    await _exists(services, t.Job, job_id)
    return await _enqueue(services, actor, "bulk.shift_job", {"job_id": job_id, "minutes": minutes})


async def shift_tasks(
    *, services: Services, actor: Actor, versions: dict[int, int], minutes: int
) -> str:
    """Move the selected tasks (id -> the version the board showed) together by `minutes`."""
    require(actor, "assignment.write")
    if not versions or len(versions) > MAX_SELECTED:
        raise InvalidInput(f"select 1 to {MAX_SELECTED} tasks", {"tasks": len(versions)})
    if minutes == 0 or abs(minutes) > MAX_SHIFT_MINUTES:
        raise InvalidInput(
            "shift by a non-zero number of minutes, at most a year", {"minutes": minutes}
        )
    payload = {"versions": {str(k): v for k, v in versions.items()}, "minutes": minutes}
    return await _enqueue(services, actor, "bulk.shift_tasks", payload)


async def clear_equipment(*, services: Services, actor: Actor, equipment_id: int) -> str:
    require(actor, "assignment.write")
    await _exists(services, t.Equipment, equipment_id)
    payload = {"equipment_id": equipment_id}
    return await _enqueue(services, actor, "bulk.clear_equipment", payload)


async def _exists(services: Services, table: type[t.Job] | type[t.Equipment], row_id: int) -> None:
    async with services.db.read() as session:
        if await session.get(table, row_id) is None:
            raise NotFound(table.__tablename__, row_id)


async def _enqueue(services: Services, actor: Actor, kind: str, payload: dict[str, Any]) -> str:
    return await queue_of(services).enqueue(
        kind,
        {**payload, "actor": run_actor(actor)},
        priority=PRIORITY,
        timeout_s=300,
        max_retries=2,
        created_by=actor.user_id,
    )


# --- the handlers (on a worker) --------------------------------------------------------------


async def run_unschedule_job(services: Services, run: ActiveRun) -> dict[str, Any]:
    job_id = int(run.payload["job_id"])
    async with _bulk_change(services, run, "bulk.job_unscheduled") as tx:
        placed, skipped = await _placed_tasks(tx, t.Task.job_id == job_id)
        for done, (task, slot) in enumerate(placed, 1):
            await tx.claim(t.Task, task.id, None)
            await tx.unplace(task, slot=slot)
            run.report({"done": done, "total": len(placed)})
    return {"unscheduled": [task.id for task, _ in placed], "skipped": skipped}


async def run_shift_job(services: Services, run: ActiveRun) -> dict[str, Any]:
    job_id, delta = int(run.payload["job_id"]), timedelta(minutes=int(run.payload["minutes"]))
    async with _bulk_change(services, run, "bulk.job_shifted") as tx:
        open_tasks, skipped = await _placed_tasks(tx, t.Task.job_id == job_id)
        # A task the shift would carry out of the plant horizon stays where it is.
        placed = [(task, slot) for task, slot in open_tasks if _inside(slot, delta)]
        skipped += [task.id for task, slot in open_tasks if not _inside(slot, delta)]
        for done, (task, slot) in enumerate(placed, 1):
            await tx.claim(t.Task, task.id, None)
            await tx.place(task, _shifted(slot, delta), slot=slot)
            run.report({"done": done, "total": len(placed)})
    return {"shifted": [task.id for task, _ in placed], "skipped": skipped}


async def run_shift_tasks(services: Services, run: ActiveRun) -> dict[str, Any]:
    versions = {int(k): int(v) for k, v in run.payload["versions"].items()}
    delta = timedelta(minutes=int(run.payload["minutes"]))
    async with _bulk_change(services, run, "bulk.tasks_shifted") as tx:
        open_tasks, skipped = await _placed_tasks(tx, t.Task.id.in_(versions))
        gone = set(versions) - {task.id for task, _ in open_tasks} - set(skipped)
        if gone:
            raise StateConflict(
                f"{len(gone)} of the selected tasks are no longer on the plan; nothing was moved",
                {"tasks": sorted(gone)},
            )
        placed = [(task, slot) for task, slot in open_tasks if _inside(slot, delta)]
        skipped += [task.id for task, slot in open_tasks if not _inside(slot, delta)]
        moved: dict[str, int] = {}
        for done, (task, slot) in enumerate(placed, 1):
            try:
                await tx.claim(t.Task, task.id, versions[task.id])
            except VersionMismatch:
                raise StateConflict(
                    f"{task.name} was changed by someone else since it was selected; "
                    "nothing was moved",
                    {"task": task.id},
                ) from None
            await tx.place(task, _shifted(slot, delta), slot=slot)
            moved[str(task.id)] = versions[task.id] + 1
            run.report({"done": done, "total": len(placed)})
    return {"shifted": [task.id for task, _ in placed], "skipped": skipped, "versions": moved}


async def run_clear_equipment(services: Services, run: ActiveRun) -> dict[str, Any]:
    down = int(run.payload["equipment_id"])
    moved: list[int] = []
    to_tray: list[int] = []
    async with _bulk_change(services, run, "bulk.equipment_cleared") as tx:
        now = clock.now()
        placed, skipped = await _placed_tasks(
            tx, t.Assignment.equipment_id == down, t.Assignment.end > now
        )
        machines = await _other_machines(tx, down)
        for done, (task, slot) in enumerate(placed, 1):
            await tx.claim(t.Task, task.id, None)
            free = await _free_machine(tx, task, slot, machines)
            if free is None:
                await tx.unplace(task, slot=slot)
                to_tray.append(task.id)
            else:
                await tx.place(task, replace(_slot(slot), equipment_id=free), slot=slot)
                # The next task's search for a free machine sees this booking.
                await tx.session.flush()
                moved.append(task.id)
            run.report({"done": done, "total": len(placed)})
    return {"moved": moved, "to_tray": to_tray, "skipped": skipped}


def _bulk_change(services: Services, run: ActiveRun, kind: str) -> Any:
    return _failing_clearly(change(services, actor_of_run(run), kind))


class _failing_clearly:
    """A bad request (the job is gone, ...) fails the run at once instead of being retried."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aenter__(self) -> Transaction:
        tx: Transaction = await self.inner.__aenter__()
        return tx

    async def __aexit__(self, kind: Any, error: BaseException | None, trace: Any) -> bool:
        handled = bool(await self.inner.__aexit__(kind, error, trace))
        if isinstance(error, ServiceError):
            raise RunFailed(error.message) from error
        return handled


async def _placed_tasks(
    tx: Transaction, *where: Any
) -> tuple[list[tuple[t.Task, t.Assignment]], list[int]]:
    """Open tasks with a live slot matching `where`, by start; ids of the others (skipped)."""
    rows = (
        await tx.session.execute(
            select(t.Task, t.Assignment)
            .join(t.Assignment, t.Assignment.task_id == t.Task.id)
            .where(t.Assignment.schedule_id == tx.schedule_id, *where)
            .order_by(t.Assignment.start, t.Task.id)
        )
    ).all()
    placed, skipped = [], []
    for task, slot in rows:
        if task.status in OPEN:
            placed.append((task, slot))
        else:
            skipped.append(task.id)
    return placed, skipped


def _inside(slot: t.Assignment, delta: timedelta) -> bool:
    return horizon_error(slot.start + delta) is None and horizon_error(slot.end + delta) is None


def _slot(slot: t.Assignment) -> Placement:
    return Placement(slot.operator_id, slot.equipment_id, slot.start, slot.end)


def _shifted(slot: t.Assignment, delta: timedelta) -> Placement:
    return Placement(slot.operator_id, slot.equipment_id, slot.start + delta, slot.end + delta)


async def _other_machines(tx: Transaction, down: int) -> list[t.Equipment]:
    rows = await tx.session.scalars(
        select(t.Equipment)
        .where(t.Equipment.id != down, t.Equipment.status == "available")
        .order_by(t.Equipment.id)
    )
    return list(rows)


async def _free_machine(
    tx: Transaction, task: t.Task, slot: t.Assignment, machines: list[t.Equipment]
) -> int | None:
    """The first other capable machine with nothing booked and no downtime over the slot."""
    for machine in machines:
        if task.required_capability and task.required_capability not in machine.capabilities:
            continue
        if await _busy(tx, machine.id, slot.start, slot.end, task.id):
            continue
        return machine.id
    return None


async def _busy(tx: Transaction, machine: int, start: datetime, end: datetime, task: int) -> bool:
    booked = await tx.session.scalar(
        select(t.Assignment.task_id)
        .where(
            t.Assignment.schedule_id == tx.schedule_id,
            t.Assignment.equipment_id == machine,
            t.Assignment.task_id != task,
            t.Assignment.start < end,
            t.Assignment.end > start,
        )
        .limit(1)
    )
    if booked is not None:
        return True
    downtime = await tx.session.scalar(
        select(t.EquipmentDowntime.id)
        .where(
            t.EquipmentDowntime.equipment_id == machine,
            t.EquipmentDowntime.start < end,
            t.EquipmentDowntime.end > start,
        )
        .limit(1)
    )
    return downtime is not None
