"""Storing a draft: a proposal beside the live plan, the way optimizer runs and repairs keep one.

    draft_id = await store_draft(services, Proposal(name=..., slots=..., before=..., ...))

A draft is a schedule of kind `draft` (revision 0, `base_revision` the live
revision it was worked out from), a `drafts` row (who, when, which run, the
KPIs) and its slots; each task it changes gets a `draft_tasks` row with the
version and slot it had when the plan was read, which `drafts.apply_draft`
claims it at. Storing writes nothing live: no revision, audit or publish
until the draft is applied through the one write path (`write_path.change`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from app.db import tables as t
from app.domain.plan import Assignment
from app.services.context import Services

__all__ = ["Proposal", "slot_json", "store_draft"]


@dataclass(frozen=True, slots=True)
class Proposal:
    name: str
    run_id: str
    solver_status: str
    kpis: dict[str, Any]
    created_by: int | None
    timezone: str
    base_revision: int
    # The draft schedule's slots (an optimizer draft holds the whole plan, a repair
    # only the slots it changes).
    slots: Iterable[Assignment]
    # Each task the draft changes, with its slot when the plan was read (None: tray).
    before: Mapping[int, Assignment | None]
    # Every task's version when the plan was read.
    versions: Mapping[int, int]
    now: datetime


async def store_draft(services: Services, proposal: Proposal) -> int:
    """Store `proposal` as a draft schedule beside the live plan; the draft's id."""
    now = proposal.now
    async with services.db.write() as session:
        schedule = t.Schedule(
            name=proposal.name,
            kind="draft",
            revision=0,
            timezone=proposal.timezone,
            base_revision=proposal.base_revision,
            created_at=now,
        )
        session.add(schedule)
        await session.flush()
        draft_id = schedule.id
        session.add(
            t.Draft(
                schedule_id=draft_id,
                run_id=proposal.run_id,
                solver_status=proposal.solver_status,
                kpis=proposal.kpis,
                created_by=proposal.created_by,
                created_at=now,
            )
        )
        await session.flush()
        rows = [_slot_row(draft_id, s, proposal.created_by, now) for s in proposal.slots]
        if rows:
            await session.execute(insert(t.Assignment), rows)
        if proposal.before:
            bases = [
                {
                    "schedule_id": draft_id,
                    "task_id": task_id,
                    "base_version": proposal.versions.get(task_id, 0),
                    "before": slot_json(before),
                }
                for task_id, before in proposal.before.items()
            ]
            await session.execute(insert(t.DraftTask), bases)
    return draft_id


def slot_json(slot: Assignment | None) -> dict[str, Any] | None:
    """A slot as a draft task's `before` and an audit entry hold it (times ISO 8601)."""
    if slot is None:
        return None
    return {
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
    }


def _slot_row(draft_id: int, slot: Assignment, by: int | None, now: datetime) -> dict[str, Any]:
    return {
        "schedule_id": draft_id,
        "task_id": slot.task_id,
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start,
        "end": slot.end,
        "assigned_by": by,
        "assigned_at": now,
    }
