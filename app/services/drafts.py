"""Drafts: preview one against the live plan, apply it, discard it, purge the expired.

    await draft_diff(services=s, actor=a, draft_id=d)      # moved, reassigned, ..., KPI deltas
    await apply_draft(services=s, actor=a, draft_id=d)     # one change, DraftStale, DraftExpired

An optimizer run (`optimizer_runs`) or a repair (`repair`) stores a draft
beside the live plan (`draft_store`). Applying claims each task the draft
changes at the version the run saw, in one `change()`: if any changed since,
nothing is written and `DraftStale` names them all. A draft is kept
TAKT_DRAFT_EXPIRY_HOURS (24 h): older, it cannot be applied (`DraftExpired`),
and the queue's sweep deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from app import clock
from app.db import tables as t
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import (
    DraftExpired,
    DraftStale,
    NotFound,
    StateConflict,
)
from app.services.placing import slot_json, slots_in
from app.services.write_path import Transaction, change, last_actors

# The kinds of change a draft's tasks are listed by (a task moved to another
# operator or machine at another time is in both of the first two).
GROUPS = ("moved", "reassigned", "scheduled", "unscheduled")


@dataclass(frozen=True, slots=True)
class DraftChange:
    """A task the draft changes, with its slot before (as the run saw it) and after.

    A slot is `placing.slot_json`'s: operator, machine, start and end; None: in the tray.
    """

    task_id: int
    name: str
    job_id: int | None
    job_name: str
    before: t.StoredSlot | None
    after: t.StoredSlot | None


@dataclass(frozen=True, slots=True)
class DraftDiff:
    """A draft against the plan its run saw (the API's `GET /drafts/{id}`, field by field)."""

    draft_id: int
    run_id: str
    solver_status: str
    base_revision: int | None
    applied: bool
    expires_at: datetime
    expired: bool
    # Tasks whose slot the draft changes.
    changes: int
    moved: tuple[DraftChange, ...]
    reassigned: tuple[DraftChange, ...]
    scheduled: tuple[DraftChange, ...]
    unscheduled: tuple[DraftChange, ...]
    # Each KPI before and after (`plan_comparison.compare_kpis`).
    kpis: dict[str, Any]
    # What the solver reached (`optimizer_runs._reached`); None: stored before it was kept.
    solver: dict[str, Any] | None

    def group(self, name: str) -> tuple[DraftChange, ...]:
        """The changes of one of `GROUPS`."""
        changes: tuple[DraftChange, ...] = getattr(self, name)
        return changes


@dataclass(frozen=True, slots=True)
class Applied:
    draft_id: int
    changes: int
    revision: int


# --- previewing, applying, discarding --------------------------------------------------------


async def draft_diff(*, services: Services, actor: Actor, draft_id: int) -> DraftDiff:
    """The draft against the plan its run saw: task lists by kind of change, and KPI deltas."""
    require(actor, "plan.read")
    groups: dict[str, list[DraftChange]] = {group: [] for group in GROUPS}
    async with services.db.read() as session:
        draft = await session.get(t.Draft, draft_id)
        if draft is None:
            raise NotFound("drafts", draft_id)
        schedule = await session.get(t.Schedule, draft_id)
        bases = (
            await session.scalars(select(t.DraftTask).where(t.DraftTask.schedule_id == draft_id))
        ).all()
        ids = [b.task_id for b in bases]
        slots = {
            row.task_id: row
            for row in await session.scalars(
                select(t.Assignment).where(
                    t.Assignment.schedule_id == draft_id, t.Assignment.task_id.in_(ids)
                )
            )
        }
        names = {
            row.id: row
            for row in (
                await session.execute(
                    select(t.Task.id, t.Task.name, t.Task.job_id, t.Job.name.label("job_name"))
                    .join(t.Job, t.Job.id == t.Task.job_id)
                    .where(t.Task.id.in_(ids))
                )
            )
        }
    for base in sorted(bases, key=lambda b: b.task_id):
        before, after = base.before, slot_json(slots.get(base.task_id))
        named = names.get(base.task_id)
        item = DraftChange(
            task_id=base.task_id,
            name=named.name if named else f"Task #{base.task_id}",
            job_id=named.job_id if named else None,
            job_name=named.job_name if named else "",
            before=before,
            after=after,
        )
        for group in _groups(before, after):
            groups[group].append(item)
    expires_at = draft_expires_at(services, draft.created_at)
    kpis = dict(draft.kpis or {})
    solver = kpis.pop("solver", None)
    return DraftDiff(
        draft_id=draft_id,
        run_id=draft.run_id,
        solver_status=draft.solver_status,
        base_revision=schedule.base_revision if schedule else None,
        applied=draft.applied_at is not None,
        expires_at=expires_at,
        expired=expires_at <= clock.now(),
        changes=len(bases),
        moved=tuple(groups["moved"]),
        reassigned=tuple(groups["reassigned"]),
        scheduled=tuple(groups["scheduled"]),
        unscheduled=tuple(groups["unscheduled"]),
        kpis=kpis,
        solver=solver,
    )


def _groups(before: t.StoredSlot | None, after: t.StoredSlot | None) -> list[str]:
    if before is None:
        return ["scheduled"]
    if after is None:
        return ["unscheduled"]
    found = []
    if (before["start"], before["end"]) != (after["start"], after["end"]):
        found.append("moved")
    if (before["operator_id"], before["equipment_id"]) != (
        after["operator_id"],
        after["equipment_id"],
    ):
        found.append("reassigned")
    return found


async def apply_draft(*, services: Services, actor: Actor, draft_id: int) -> Applied:
    """Write the draft's slots to the live plan in one change, if none of its tasks changed.

    In bulk, whatever the draft's size: the tasks claimed a chunk per statement,
    the live slots replaced by the draft's in one DELETE and one INSERT, the
    statuses in two UPDATEs, one audit entry per task in one executemany.
    """
    require(actor, "assignment.write")
    async with change(services, actor, "draft.applied") as tx:
        draft = await tx.session.get(t.Draft, draft_id)
        if draft is None:
            raise NotFound("drafts", draft_id)
        if draft.applied_at is not None:
            raise StateConflict(
                f"draft {draft_id} has been applied already", {"draft_id": draft_id}
            )
        expires_at = draft_expires_at(services, draft.created_at)
        if expires_at <= clock.now():
            raise DraftExpired(draft_id=draft_id, expired_at=expires_at)
        bases = await tx.session.execute(
            select(t.DraftTask.task_id, t.DraftTask.base_version).where(
                t.DraftTask.schedule_id == draft_id
            )
        )
        expected = {task_id: version for task_id, version in bases}
        await _claim_all(tx, draft_id, expected)
        await _apply_slots(tx, draft_id, sorted(expected))
        draft.applied_at = clock.now()
        draft.applied_by = actor.user_id
    assert tx.revision is not None
    return Applied(draft_id=draft_id, changes=len(expected), revision=tx.revision)


async def _claim_all(tx: Transaction, draft_id: int, expected: dict[int, int]) -> None:
    """Claim every task at the version the run saw; name all that changed, not just the first."""
    stale = await tx.claim_all(t.Task, expected)
    if stale:
        changed = sorted(stale)
        by = await last_actors(tx.session, "tasks", changed)
        changed_by = {str(task_id): by.get(task_id) for task_id in changed}
        raise DraftStale(draft_id=draft_id, changed_task_ids=changed, changed_by=changed_by)


async def _apply_slots(tx: Transaction, draft_id: int, task_ids: list[int]) -> None:
    """The live slots of `task_ids` become the draft's (none: back to the tray), audited."""
    await tx.place_all(task_ids, await slots_in(tx, draft_id, task_ids))


def draft_expires_at(services: Services, created_at: datetime) -> datetime:
    return created_at + timedelta(hours=services.settings.draft_expiry_hours)


async def purge_expired_drafts(services: Services) -> int:
    """Delete the drafts past their expiry, with their rows; how many (the queue's sweep)."""
    cutoff = clock.now() - timedelta(hours=services.settings.draft_expiry_hours)
    # Like discarding: the live plan is untouched, so no revision, audit or publish.
    async with services.db.write() as session:
        gone = await session.execute(
            delete(t.Schedule).where(t.Schedule.kind == "draft", t.Schedule.created_at < cutoff)
        )
        return int(gone.rowcount)  # type: ignore[attr-defined]


async def discard_draft(*, services: Services, actor: Actor, draft_id: int) -> None:
    require(actor, "plan.optimize")
    # Dropping a proposal leaves the live plan as it was (see `_store_draft`).
    async with services.db.write() as session:
        gone = await session.execute(
            delete(t.Schedule).where(t.Schedule.id == draft_id, t.Schedule.kind == "draft")
        )
        if gone.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("drafts", draft_id)


__all__ = [
    "GROUPS",
    "Applied",
    "DraftChange",
    "DraftDiff",
    "apply_draft",
    "discard_draft",
    "draft_diff",
    "draft_expires_at",
    "purge_expired_drafts",
]
