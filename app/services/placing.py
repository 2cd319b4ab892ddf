"""Placing tasks on the plan and taking them off it: the one slot write.

Every change of a task's slot on the live plan goes through here, inside a
`change()` (as `tx.place()`, `tx.unplace()`, `tx.place_all()`):

    place(tx, task, Placement(operator, machine, start, end))
        the task's slot becomes this one (booked by the actor, now);
        a pending task becomes scheduled
    unplace(tx, task)
        the task goes back to the tray: its slot is deleted, it is pending
    place_all(tx, task_ids, proposed)
        the same for many tasks at once, set-wise (a draft of 7,000 tasks is a
        few statements): each task's slot becomes its proposed one, or none

Each audits the task with its slot before and after (operator, machine,
start and end; None: in the tray) and touches the task, and the operators
and machines it leaves and joins, so their feeds hear of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, insert, select, update

from app import clock
from app.db import tables as t
from app.db.batches import chunks
from app.domain.plan import Assignment, TaskStatus
from app.services.errors import StateConflict

if TYPE_CHECKING:
    from app.services.write_path import Transaction

ASSIGNMENTS = cast(Table, t.Assignment.__table__)
# The tasks whose slot may change: not yet started on the floor.
OPEN = (TaskStatus.PENDING, TaskStatus.SCHEDULED)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and when a task runs: who runs it on which machine, from start to end."""

    operator_id: int
    equipment_id: int
    start: datetime
    end: datetime


def slot_json(slot: t.Assignment | Placement | Assignment | None) -> t.StoredSlot | None:
    """A slot as the audit trail and a draft task's `before` hold it (None: in the tray)."""
    if slot is None:
        return None
    return {
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
    }


def slot_row(
    schedule_id: int,
    task_id: int,
    slot: Placement | Assignment,
    *,
    by: int | None,
    at: datetime,
) -> dict[str, Any]:
    """The assignments row booking `task_id` into `slot` on a schedule (for bulk inserts)."""
    return {
        "schedule_id": schedule_id,
        "task_id": task_id,
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start,
        "end": slot.end,
        "assigned_by": by,
        "assigned_at": at,
    }


async def slot_of(tx: Transaction, task_id: int) -> t.Assignment | None:
    """The task's slot on the transaction's plan (None: in the tray)."""
    return await tx.session.get(t.Assignment, {"schedule_id": tx.schedule_id, "task_id": task_id})


async def place(
    tx: Transaction, task: t.Task, placement: Placement, *, slot: t.Assignment | None = None
) -> t.Assignment:
    """Book `task` into `placement`; `slot` is its current slot where the caller has it."""
    if slot is None:
        slot = await slot_of(tx, task.id)
    before = slot_json(slot)
    if slot is None:
        slot = t.Assignment(schedule_id=tx.schedule_id, task_id=task.id)
        tx.session.add(slot)
    else:
        # Whoever had the task is concerned too (their list and feed lose it).
        _touch_resources(tx, slot)
    slot.operator_id = placement.operator_id
    slot.equipment_id = placement.equipment_id
    slot.start = placement.start
    slot.end = placement.end
    slot.assigned_by = tx.actor.user_id
    slot.assigned_at = clock.now()
    if task.status == TaskStatus.PENDING:
        task.status = TaskStatus.SCHEDULED
    tx.audit("tasks", task.id, before=before, after=slot_json(slot))
    _touch_resources(tx, slot)
    return slot


async def unplace(tx: Transaction, task: t.Task, *, slot: t.Assignment | None = None) -> None:
    """Put `task` back in the tray; `slot` is its current slot where the caller has it."""
    if task.status not in OPEN:
        raise StateConflict(f"task {task.id} is {task.status}; it cannot be unscheduled")
    if slot is None:
        slot = await slot_of(tx, task.id)
    if slot is None:
        raise StateConflict(f"task {task.id} is not scheduled")
    tx.audit("tasks", task.id, before=slot_json(slot), after=None)
    _touch_resources(tx, slot)
    await tx.session.delete(slot)
    task.status = TaskStatus.PENDING


async def place_all(
    tx: Transaction, task_ids: Sequence[int], proposed: Mapping[int, Placement]
) -> None:
    """The slots of `task_ids` become the proposed ones (a task without one: to the tray).

    Set-wise, whatever the number: the slots replaced by one DELETE and one
    INSERT per chunk, the statuses in two UPDATEs, one audit entry per task.
    The tasks' rows are not loaded, so the caller claims them first.
    """
    live = await _slots(tx, task_ids)
    now = clock.now()
    for ids in chunks(task_ids):
        await tx.session.execute(
            delete(t.Assignment).where(
                t.Assignment.schedule_id == tx.schedule_id, t.Assignment.task_id.in_(ids)
            )
        )
    by = tx.actor.user_id
    rows = [
        slot_row(tx.schedule_id, task_id, slot, by=by, at=now) for task_id, slot in proposed.items()
    ]
    for chunk in chunks(rows):
        await tx.session.execute(insert(ASSIGNMENTS), chunk)
    placed = sorted(proposed)
    unplaced = sorted(set(task_ids) - proposed.keys())
    await _set_status(tx, placed, TaskStatus.PENDING, TaskStatus.SCHEDULED)
    await _set_status(tx, unplaced, TaskStatus.SCHEDULED, TaskStatus.PENDING)
    tx.touch("tasks", *task_ids)
    for slot in (*live.values(), *proposed.values()):
        _touch_resources(tx, slot)
    for task_id in task_ids:
        before, after = live.get(task_id), proposed.get(task_id)
        tx.audit("tasks", task_id, before=slot_json(before), after=slot_json(after))


async def slots_in(
    tx: Transaction, schedule_id: int, task_ids: Sequence[int]
) -> dict[int, Placement]:
    """The slots of `task_ids` on a schedule (the live plan or a draft), by task."""
    a = t.Assignment
    found: dict[int, Placement] = {}
    for ids in chunks(task_ids):
        rows = await tx.session.execute(
            select(a.task_id, a.operator_id, a.equipment_id, a.start, a.end).where(
                a.schedule_id == schedule_id, a.task_id.in_(ids)
            )
        )
        found.update(
            (row.task_id, Placement(row.operator_id, row.equipment_id, row.start, row.end))
            for row in rows
        )
    return found


async def _slots(tx: Transaction, task_ids: Sequence[int]) -> dict[int, Placement]:
    return await slots_in(tx, tx.schedule_id, task_ids)


async def _set_status(tx: Transaction, task_ids: list[int], old: str, new: str) -> None:
    for ids in chunks(task_ids):
        await tx.session.execute(
            update(t.Task)
            .where(t.Task.id.in_(ids), t.Task.status == old)
            .values(status=new)
            .execution_options(synchronize_session=False)
        )


def _touch_resources(tx: Transaction, slot: t.Assignment | Placement) -> None:
    tx.touch("operators", slot.operator_id)
    tx.touch("equipment", slot.equipment_id)
