"""Equipment going down, into maintenance and back: reported from the floor or the board.

    report_breakdown(...)        an operator on the machine (or anyone with equipment.report)
    set_equipment_status(...)    down | maintenance | available with an expected-back time

A status change goes through the one write path: audited (with the note),
published, and since it touches the equipment row, every board re-renders
its view: the row shows the status and each booked task on that machine
lights up as `equipment_unavailable`. A status report is a fact from the
floor, not an edit of something the reporter saw, so it needs no If-Match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.clock import as_utc
from app.db import tables as t
from app.domain.plan import TaskStatus
from app.services.access import allowed, can_see_task, require
from app.services.context import Actor, Services
from app.services.errors import Forbidden, InvalidInput
from app.services.jsonable import jsonable
from app.services.write_path import change

STATUSES = ("available", "down", "maintenance")
MAX_NOTE = 500


@dataclass(frozen=True, slots=True)
class StatusChanged:
    equipment_id: int
    status: str
    expected_back: datetime | None
    # Booked, unfinished tasks the status blocks, as far as the actor may see them.
    affected_task_ids: list[int]
    revision: int


async def report_breakdown(
    *,
    services: Services,
    actor: Actor,
    equipment_id: int,
    note: str,
    expected_back: datetime | None = None,
) -> StatusChanged:
    """The machine is down. Operators may report only machines they are booked on."""
    return await set_equipment_status(
        services=services,
        actor=actor,
        equipment_id=equipment_id,
        status="down",
        expected_back=expected_back,
        note=note,
    )


async def set_equipment_status(
    *,
    services: Services,
    actor: Actor,
    equipment_id: int,
    status: str,
    expected_back: datetime | None = None,
    note: str = "",
) -> StatusChanged:
    require(actor, "equipment.report" if status == "down" else "equipment.status")
    _check_input(status, expected_back, note)
    now = clock.now()
    async with change(services, actor, "equipment.status_changed") as tx:
        if actor.role == "operator":
            await _check_booked_on(tx.session, tx.schedule_id, actor, equipment_id)
        row = await tx.claim(t.Equipment, equipment_id, None)
        before = {"status": row.status, "expected_back": row.expected_back}
        row.status = status
        row.expected_back = None if status == "available" else expected_back
        after = {"status": status, "expected_back": row.expected_back}
        if note.strip():
            after["note"] = note.strip()
        tx.audit("equipment", equipment_id, before=jsonable(before), after=jsonable(after))
        affected = await _booked(tx.session, tx.schedule_id, equipment_id, now, row.expected_back)
    assert tx.revision is not None
    return StatusChanged(
        equipment_id=equipment_id,
        status=status,
        expected_back=row.expected_back,
        affected_task_ids=[
            task_id
            for task_id, operator_id in affected
            if status != "available" and can_see_task(actor, operator_id)
        ],
        revision=tx.revision,
    )


def _check_input(status: str, expected_back: datetime | None, note: str) -> None:
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", {"status": status})
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is longer than {MAX_NOTE} characters", {"note": len(note)})
    if expected_back is not None and as_utc(expected_back) <= clock.now():
        raise InvalidInput(
            "expected back must be in the future", {"expected_back": expected_back.isoformat()}
        )


async def _check_booked_on(
    session: AsyncSession, schedule_id: int, actor: Actor, equipment_id: int
) -> None:
    a = t.Assignment
    booked = await session.scalar(
        select(a.task_id)
        .join(t.Task, t.Task.id == a.task_id)
        .where(
            a.schedule_id == schedule_id,
            a.operator_id == (actor.operator_id or -1),
            a.equipment_id == equipment_id,
            t.Task.status != TaskStatus.DONE,
        )
        .limit(1)
    )
    if booked is None:
        raise Forbidden(
            "you can report breakdowns only on equipment you are booked on",
            {"equipment_id": equipment_id},
        )


async def _booked(
    session: AsyncSession,
    schedule_id: int,
    equipment_id: int,
    now: datetime,
    back: datetime | None,
) -> list[tuple[int, int]]:
    """(task id, operator id) of unfinished tasks on the machine from now until it is back."""
    a = t.Assignment
    query = (
        select(a.task_id, a.operator_id)
        .join(t.Task, t.Task.id == a.task_id)
        .where(
            a.schedule_id == schedule_id,
            a.equipment_id == equipment_id,
            a.end > now,
            t.Task.status != TaskStatus.DONE,
        )
        .order_by(a.start)
    )
    if back is not None:
        query = query.where(a.start < back)
    return [(row.task_id, row.operator_id) for row in await session.execute(query)]


def may_set_status(actor: Actor) -> bool:
    """Whether the board offers this person the status control on equipment rows."""
    return allowed(actor, "equipment.status")
