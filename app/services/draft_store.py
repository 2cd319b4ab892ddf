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

from sqlalchemy import insert, select

from app.db import tables as t
from app.db.plan_queries import load_plan, schedule_revision
from app.domain.plan import Assignment, Plan
from app.services.context import Services
from app.services.placing import slot_json, slot_row

__all__ = ["Proposal", "SeenPlan", "read_live_plan", "store_draft"]


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


@dataclass(frozen=True, slots=True)
class SeenPlan:
    """The live plan as a draft is worked out from: its revision and every task's version."""

    revision: int
    versions: dict[int, int]
    plan: Plan


async def read_live_plan(services: Services) -> SeenPlan:
    """The live plan, its revision and every task's version, in one read transaction.

    Versions first: a write landing between the reads makes the draft look
    stale when it is applied, never fresh.
    """
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        rows = await session.execute(select(t.Task.id, t.Task.version))
        versions: dict[int, int] = {task_id: version for task_id, version in rows}
        plan = await load_plan(session, schedule_id)
    return SeenPlan(revision=revision, versions=versions, plan=plan)


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
        rows = [
            slot_row(draft_id, s.task_id, s, by=proposal.created_by, at=now) for s in proposal.slots
        ]
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
