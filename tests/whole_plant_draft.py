"""A whole-plant draft of the optimizer's shape, stored the way a run stores one.

Every tray task newly scheduled (on a capable machine and a qualified
operator, back to back per machine from tomorrow) and every fourth open
scheduled task moved by 15 minutes: what "All open jobs" hands the scheduler
on the large demo, without waiting for the solver. Applying a draft does not
validate it (its run did), so these slots need only be what a draft holds.
Used by the apply-at-scale tests and `scripts/bench_apply.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from app.db import tables as t
from app.db.plan_queries import load_plan, schedule_revision
from app.domain.plan import Assignment, Plan, TaskStatus
from app.services.context import Services


async def whole_plant_draft(services: Services, now: datetime) -> tuple[int, int, int]:
    """Store a draft of the optimizer's shape: every tray task placed, a quarter moved."""
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        rows = await session.execute(select(t.Task.id, t.Task.version))
        versions = {task_id: version for task_id, version in rows}
        plan = await load_plan(session, schedule_id)
    proposal = dict(plan.assignments)
    changed: dict[int, Assignment | None] = {}
    for index, task in enumerate(
        sorted(plan.tasks.values(), key=lambda task: task.id)
    ):  # moved: every fourth open scheduled task
        slot = plan.assignments.get(task.id)
        if slot is not None and task.status == TaskStatus.SCHEDULED and index % 4 == 0:
            shift = timedelta(minutes=15)
            proposal[task.id] = Assignment(
                task.id, slot.operator_id, slot.equipment_id, slot.start + shift, slot.end + shift
            )
            changed[task.id] = slot
    moved = len(changed)
    for task_id, slot in tray_slots(plan, now):
        proposal[task_id] = slot
        changed[task_id] = None
    async with services.db.write() as session:
        draft = t.Schedule(
            name="Bench draft",
            kind="draft",
            revision=0,
            timezone=plan.timezone,
            base_revision=revision,
            created_at=now,
        )
        session.add(draft)
        await session.flush()
        session.add(
            t.Draft(
                schedule_id=draft.id,
                run_id="bench",
                solver_status="feasible",
                kpis={},
                created_by=None,
                created_at=now,
            )
        )
        await session.execute(
            insert(t.Assignment), [_row(draft.id, s, now) for s in proposal.values()]
        )
        bases = [
            {
                "schedule_id": draft.id,
                "task_id": task_id,
                "base_version": versions[task_id],
                "before": None if before is None else _json(before),
            }
            for task_id, before in changed.items()
        ]
        await session.execute(insert(t.DraftTask), bases)
        return draft.id, len(changed) - moved, moved


def tray_slots(plan: Plan, now: datetime) -> Iterator[tuple[int, Assignment]]:
    """Each tray task on a capable machine and a qualified operator, back to back per machine."""
    free_from: dict[int, datetime] = {}
    start = (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    machines = sorted(plan.equipment.values(), key=lambda m: m.id)
    operators = sorted(plan.operators.values(), key=lambda o: o.id)
    for task in sorted(plan.tasks.values(), key=lambda task: task.id):
        if task.id in plan.assignments or task.status != TaskStatus.PENDING:
            continue
        machine = next(
            (m for m in machines if task.required_capability in (None, *m.capabilities)), None
        )
        operator = next(
            (
                o
                for o in operators
                if task.required_skill is None
                or o.skills.get(task.required_skill, 0) >= task.min_level
            ),
            None,
        )
        if machine is None or operator is None:
            continue
        begin = free_from.get(machine.id, start)
        end = begin + timedelta(minutes=task.duration_minutes)
        free_from[machine.id] = end
        yield task.id, Assignment(task.id, operator.id, machine.id, begin, end)


def _row(schedule_id: int, slot: Assignment, now: datetime) -> dict[str, Any]:
    return {
        "schedule_id": schedule_id,
        "task_id": slot.task_id,
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start,
        "end": slot.end,
        "assigned_by": None,
        "assigned_at": now,
    }


def _json(slot: Assignment) -> dict[str, Any]:
    return {
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
    }
