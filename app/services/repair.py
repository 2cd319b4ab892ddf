"""Repair drafts: after a breakdown, an absence or a task running late, what must move.

    repaired = await propose_repair(services=s, actor=a, cause=MachineDown(7))
    repaired.draft_id     # a draft like an optimizer run's: previewed and applied the same way

The live plan and every task's version are read in one transaction (versions
first, as an optimizer run does: a write in between makes the draft look
stale, never fresh), the pure `app/domain/repair.repair` works out the fewest
changes, and the draft is stored beside the live plan (kind=draft): its
`draft_tasks` name each task it changes with the version and slot it saw, its
slots are those tasks' new slots. Nothing is published and the live plan is
untouched until someone applies it (`drafts.apply_draft`, the one write path).

A breakdown's window is from now until the machine is expected back: the one
the cause gives, else the machine's own `expected_back`, else for good.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypedDict

from sqlalchemy import select

from app import clock
from app.clock import as_utc
from app.db import tables as t
from app.domain.bounds import horizon_error
from app.domain.plan import Plan, TaskStatus
from app.domain.plan_comparison import compare_kpis
from app.domain.repair import Disruption, MachineDown, OperatorAbsent, Repair, TaskLate, repair
from app.services.access import require
from app.services.context import Actor, Services
from app.services.draft_store import Proposal, read_live_plan, store_draft
from app.services.errors import InvalidInput, NotFound
from app.services.offload import offload

__all__ = ["RepairDraft", "absence_behind", "cause_summary", "late_by", "propose_repair"]

SOLVER_STATUS = "repair"
# A late task's expected end is rounded up onto the plan's grid.
GRID = timedelta(minutes=5)
# An absence or a delay further out than this is a plan change, not a repair.
MAX_WINDOW = timedelta(days=31)


# The cause as the API says it back (times as ISO 8601), one shape per kind.
class BreakdownCause(TypedDict):
    type: Literal["breakdown"]
    equipment_id: int
    until: str | None


class AbsenceCause(TypedDict):
    type: Literal["absence"]
    operator_id: int
    start: str
    end: str


class LateCause(TypedDict):
    type: Literal["late"]
    task_id: int
    expected_end: str


CauseSummary = BreakdownCause | AbsenceCause | LateCause


@dataclass(frozen=True, slots=True)
class RepairDraft:
    draft_id: int
    cause: CauseSummary
    changes: int
    # The tasks the disruption hit, those left because work on them has started,
    # and those no slot could be found for (back to the tray in the draft).
    hit: list[int]
    left: list[int]
    to_tray: list[int]
    seconds: float


async def propose_repair(*, services: Services, actor: Actor, cause: Disruption) -> RepairDraft:
    """Work out and store the minimal-change repair draft for `cause` (writes no live data)."""
    require(actor, "plan.optimize")
    began = time.perf_counter()
    _check_times(cause)
    seen = await read_live_plan(services)
    revision, versions, plan = seen.revision, seen.versions, seen.plan
    now = clock.now()
    cause = _checked(plan, cause, now)
    repaired = await offload(repair, plan, cause, now=now)
    kpis = await offload(_kpis, plan, repaired, now)
    draft_id = await _store(services, actor, plan, repaired, revision, versions, kpis, now)
    return RepairDraft(
        draft_id=draft_id,
        cause=cause_summary(cause),
        changes=len(repaired.slots),
        hit=list(repaired.hit),
        left=list(repaired.left),
        to_tray=sorted(task_id for task_id, slot in repaired.slots.items() if slot is None),
        seconds=round(time.perf_counter() - began, 3),
    )


async def absence_behind(*, services: Services, operator_id: int, task_id: int) -> OperatorAbsent:
    """The absence a board's `outside_shift` row points at: the operator's time off over
    the task's booked slot (merged, whole), else the slot itself (booked outside their
    shifts: they are not there then either)."""
    schedule_id = await services.live_schedule_id()
    ex, a = t.CalendarException, t.Assignment
    async with services.db.read() as session, session.begin():
        slot = await session.scalar(
            select(a).where(a.schedule_id == schedule_id, a.task_id == task_id)
        )
        if slot is None or slot.operator_id != operator_id:
            raise InvalidInput(
                "that task is not booked with that operator",
                {"task_id": task_id, "operator_id": operator_id},
            )
        start, end = as_utc(slot.start), as_utc(slot.end)
        away = (
            await session.execute(
                select(ex.start, ex.end).where(
                    ex.operator_id == operator_id,
                    ex.kind == "time_off",
                    ex.start < end,
                    ex.end > start,
                )
            )
        ).all()
    if away:
        start = min(as_utc(row.start) for row in away)
        end = max(as_utc(row.end) for row in away)
    # What is past needs no repair; a long leave is repaired for its first month.
    start = max(start, clock.now())
    return OperatorAbsent(operator_id, start, max(start, min(end, start + MAX_WINDOW)))


async def late_by(*, services: Services, task_id: int, minutes: int) -> TaskLate:
    """A task running `minutes` longer than now or its booked end, whichever is later
    (on the plan's 5-minute grid)."""
    if not 5 <= minutes <= 24 * 60:
        raise InvalidInput("minutes must be 5 to 1440", {"minutes": minutes})
    schedule_id = await services.live_schedule_id()
    a = t.Assignment
    async with services.db.read() as session:
        end = await session.scalar(
            select(a.end).where(a.schedule_id == schedule_id, a.task_id == task_id)
        )
    if end is None:
        raise InvalidInput("only a booked task can run late", {"task_id": task_id})
    expected = max(clock.now(), as_utc(end)) + timedelta(minutes=minutes)
    down = expected.replace(minute=expected.minute // 5 * 5, second=0, microsecond=0)
    return TaskLate(task_id, expected + (GRID - (expected - down)) % GRID)


def cause_summary(cause: Disruption) -> CauseSummary:
    """The cause as the API says it back (times as ISO 8601)."""
    if isinstance(cause, MachineDown):
        until = None if cause.until is None else cause.until.isoformat()
        return {"type": "breakdown", "equipment_id": cause.equipment_id, "until": until}
    if isinstance(cause, OperatorAbsent):
        return {
            "type": "absence",
            "operator_id": cause.operator_id,
            "start": cause.start.isoformat(),
            "end": cause.end.isoformat(),
        }
    return {
        "type": "late",
        "task_id": cause.task_id,
        "expected_end": cause.expected_end.isoformat(),
    }


def _check_times(cause: Disruption) -> None:
    moments = {
        MachineDown: ("until",),
        OperatorAbsent: ("start", "end"),
        TaskLate: ("expected_end",),
    }[type(cause)]
    for name in moments:
        value = getattr(cause, name)
        if value is not None and (problem := horizon_error(value)):
            raise InvalidInput(problem, {"field": name})


def _checked(plan: Plan, cause: Disruption, now: datetime) -> Disruption:
    """The cause in UTC, its references known to the plan and its times making sense."""
    if isinstance(cause, MachineDown):
        machine = plan.equipment.get(cause.equipment_id)
        if machine is None:
            raise NotFound("equipment", cause.equipment_id)
        if cause.until is not None and as_utc(cause.until) <= now:
            raise InvalidInput("until must be in the future", {"until": cause.until.isoformat()})
        until = cause.until if cause.until is not None else machine.expected_back
        # A machine still down past its expected-back time: nobody knows when it is back.
        if until is not None and as_utc(until) <= now:
            until = None
        return replace(cause, until=None if until is None else as_utc(until))
    if isinstance(cause, OperatorAbsent):
        if cause.operator_id not in plan.operators:
            raise NotFound("operators", cause.operator_id)
        start, end = as_utc(cause.start), as_utc(cause.end)
        if end <= start or end <= now or end - start > MAX_WINDOW:
            raise InvalidInput(
                "an absence must end after it starts, in the future, within 31 days",
                {"start": start.isoformat(), "end": end.isoformat()},
            )
        return replace(cause, start=start, end=end)
    task = plan.tasks.get(cause.task_id)
    if task is None:
        raise NotFound("tasks", cause.task_id)
    slot = plan.assignments.get(cause.task_id)
    expected = as_utc(cause.expected_end)
    if slot is None or task.status is TaskStatus.DONE:
        raise InvalidInput(
            "only a booked task that is not done can run late", {"task_id": cause.task_id}
        )
    if expected <= slot.end or expected - slot.end > MAX_WINDOW:
        raise InvalidInput(
            "expected_end must be after the booked end, within 31 days",
            {"booked_end": slot.end.isoformat(), "expected_end": expected.isoformat()},
        )
    return replace(cause, expected_end=expected)


def _kpis(plan: Plan, repaired: Repair, now: datetime) -> dict[str, dict[str, float]]:
    slots = {**plan.assignments, **repaired.slots}
    proposal = replace(
        plan, assignments={task_id: s for task_id, s in slots.items() if s is not None}
    )
    return compare_kpis(plan, proposal, now=now)


async def _store(
    services: Services,
    actor: Actor,
    plan: Plan,
    repaired: Repair,
    revision: int,
    versions: dict[int, int],
    kpis: dict[str, dict[str, float]],
    now: datetime,
) -> int:
    return await store_draft(
        services,
        Proposal(
            name="Repair draft",
            run_id=f"repair-{uuid.uuid4().hex[:16]}",
            solver_status=SOLVER_STATUS,
            kpis=kpis,
            created_by=actor.user_id,
            timezone=plan.timezone,
            base_revision=revision,
            slots=[slot for slot in repaired.slots.values() if slot is not None],
            before={task_id: plan.assignments.get(task_id) for task_id in repaired.slots},
            versions=versions,
            now=now,
        ),
    )
