"""The conflicts of a board's window, kept per revision and brought forward by what changed.

Every board of one view, and every page load until the next change, asks the
same question: what conflicts do the window's assignments have? Validating a
week of the large plant from scratch takes ~0.3-0.6 s, and every change
bumps the revision (write_path.py), so answering it afresh after each move
made every move in week view cost that much, on the mover's request and on
every open board's live update.

So the answer at revision R is derived from the one kept at an earlier
revision R0 of the same window when the changes between them only moved,
unscheduled or re-stated a few tasks (`INCREMENTAL_KINDS`, at most
`INCREMENTAL_TASKS` tasks):

    kept at R0, minus every conflict that involves a changed task
                (its id among the conflict's tasks, or `late` on its job)
    plus each changed task's conflicts in the whole plan now
                (`schedule.conflicts_in`: validate_assignment on its neighbourhood)
    plus `late` of the jobs of changed tasks that left the plan

A conflict that involves no changed task depends only on things that did not
change (the rules are pairwise or per task, `late` per job), and
`validate_assignment` reports exactly the conflicts `validate_plan` has that
involve its task (a hypothesis property in tests/domain checks it), so the
result is what validating the window afresh would give for every task in it.
Anything else (a machine's status, a shift, a job's due time, a big bulk
change) validates the window afresh.

R0 is the newest revision before R at which the window is kept, not simply the
newest kept: a board's read takes its snapshot first and asks later, so under
load a read of R often asks after R+3 was kept. And one read at a time works on
a window, each building on what the one before it kept: under load many boards
render at once, each at its own revision, and each brought the same moved tasks
forward (or validated the same week afresh) beside the others; the slower
renders got, the further behind they fell, and one instance of two never
recovered (`docs/performance.md`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.db import tables as t
from app.db.plan_queries import load_job, load_window, schedule_revision
from app.domain.conflicts import Conflict, ConflictType
from app.domain.plan import Interval
from app.domain.validation import ordered, valid_until, validate_plan
from app.services.context import Services
from app.services.offload import offload
from app.services.schedule import conflicts_in

# Validated windows kept per process (a few views times the last revisions).
WINDOWS_KEPT = 64
INCREMENTAL_KINDS = frozenset(
    {
        "assignment.set",
        "assignment.removed",
        "task.start",
        "task.pause",
        "task.complete",
        "bulk.job_unscheduled",
        "bulk.job_shifted",
        "bulk.equipment_cleared",
        "draft.applied",
    }
)
INCREMENTAL_TASKS = 60
# A moved task's conflicts as its change found them, per (schedule, revision, task).
TASKS_KEPT = 32

Key = tuple[int, int, datetime, datetime]


@dataclass(frozen=True, slots=True)
class Kept:
    conflicts: list[Conflict]
    valid_until: datetime | None


async def window_conflicts(
    services: Services, session: AsyncSession, schedule_id: int, revision: int, window: Interval
) -> list[Conflict]:
    """The conflicts of the window's assignments at `revision` (see the top)."""
    memo: OrderedDict[Key, Kept] = services.memo.setdefault("window_conflicts", OrderedDict())
    now = clock.now()
    key: Key = (schedule_id, revision, window.start, window.end)
    kept = _usable(memo.get(key), now)
    if kept is not None:
        memo.move_to_end(key)
        return kept.conflicts
    # One read at a time works on a window, each building on what the one before it
    # kept: reads at once would each validate the same week, or the same moved tasks,
    # again (see the top).
    async with _turn(services, (schedule_id, window.start, window.end)):
        kept = _usable(memo.get(key), now)
        if kept is not None:
            memo.move_to_end(key)
            return kept.conflicts
        tasks_kept = services.memo.get("task_conflicts", {})
        found = await _brought_forward(memo, tasks_kept, _base(memo, key, now), session, key, now)
        if found is None:
            plan = await load_window(session, schedule_id, window)
            found = Kept(await offload(validate_plan, plan, now=now), valid_until(plan, now=now))
        await _keep(memo, session, key, found)
    return found.conflicts


async def prepare(services: Services, window: Interval) -> None:
    """The window's conflicts at the plan's revision now, kept, unless some revision of
    it is kept already: the first change after a board of it connects to this instance
    then brings them forward instead of validating the week afresh (~0.15 s on the
    large plant) while every board of it waits for its update."""
    schedule_id = await services.live_schedule_id()
    memo: Mapping[Key, Kept] = services.memo.get("window_conflicts", {})
    if any(key[0] == schedule_id and key[2:] == window for key in memo):
        return
    async with services.db.snapshot() as session:
        revision = await schedule_revision(session, schedule_id)
        await window_conflicts(services, session, schedule_id, revision, window)


def _turn(services: Services, place: Hashable) -> asyncio.Lock:
    """The lock of one window (the last `WINDOWS_KEPT` windows asked for keep theirs)."""
    turns: OrderedDict[Hashable, asyncio.Lock] = services.memo.setdefault(
        "window_turns", OrderedDict()
    )
    lock = turns.get(place)
    if lock is None:
        lock = turns[place] = asyncio.Lock()
        while len(turns) > WINDOWS_KEPT:
            turns.popitem(last=False)
    else:
        turns.move_to_end(place)
    return lock


def _base(memo: Mapping[Key, Kept], key: Key, now: datetime) -> int | None:
    """The newest revision before `key`'s at which the same window is kept (None: none).

    Not just the newest kept: a board's read takes its snapshot first and asks for the
    window later, so a read of an older revision often asks after a newer one was kept.
    """
    schedule_id, revision, start, end = key
    found: int | None = None
    for (kept_schedule, kept_revision, kept_start, kept_end), kept in memo.items():
        if (
            (kept_schedule, kept_start, kept_end) == (schedule_id, start, end)
            and kept_revision < revision
            and (found is None or kept_revision > found)
            and _usable(kept, now) is not None
        ):
            found = kept_revision
    return found


async def _keep(memo: OrderedDict[Key, Kept], session: AsyncSession, key: Key, found: Kept) -> None:
    # Kept only if no change committed while reading (a snapshot read, as the board's
    # are, never sees one; READ COMMITTED reads each statement afresh): what is kept
    # under `revision` is revision's plan.
    if await schedule_revision(session, key[0]) == key[1]:
        memo[key] = found
        while len(memo) > WINDOWS_KEPT:
            memo.popitem(last=False)


def keep_task_conflicts(
    services: Services, schedule_id: int, revision: int, task_id: int, conflicts: list[Conflict]
) -> None:
    """What a committed change at `revision` found for its task (`conflicts_in` in its
    transaction): bringing a window forward to exactly that revision uses it instead of
    validating the task's neighbourhood again (the move's own answer does that)."""
    kept: OrderedDict[Hashable, list[Conflict]] = services.memo.setdefault(
        "task_conflicts", OrderedDict()
    )
    kept[(schedule_id, revision, task_id)] = list(conflicts)
    while len(kept) > TASKS_KEPT:
        kept.popitem(last=False)


def keep_published(services: Services, message: Mapping[str, Any]) -> None:
    """What the instance that made a change found for its tasks (the hub message's
    `conflicts`, write_path.Transaction.found): kept as if this instance had made it,
    so its boards' windows are brought forward without validating those tasks again."""
    found, revision, schedule_id = (
        message.get("conflicts"),
        message.get("revision"),
        message.get("schedule_id"),
    )
    if not (isinstance(found, dict) and isinstance(revision, int) and isinstance(schedule_id, int)):
        return
    for task_id, listed in found.items():
        conflicts = [Conflict.from_message(c) for c in listed] if isinstance(listed, list) else []
        if str(task_id).isdigit() and all(c is not None for c in conflicts):
            keep_task_conflicts(
                services, schedule_id, revision, int(task_id), [c for c in conflicts if c]
            )


def _usable(kept: Kept | None, now: datetime) -> Kept | None:
    if kept is None or (kept.valid_until is not None and now >= kept.valid_until):
        return None
    return kept


async def _brought_forward(
    memo: OrderedDict[Key, Kept],
    tasks_kept: Mapping[Hashable, list[Conflict]],
    since: int | None,
    session: AsyncSession,
    key: Key,
    now: datetime,
) -> Kept | None:
    """The window at `key`'s revision from the one kept at `since`; None if it cannot be."""
    schedule_id, revision, start, end = key
    if since is None or since >= revision:
        return None
    earlier = _usable(memo.get((schedule_id, since, start, end)), now)
    if earlier is None:
        return None
    changed = await _changed_tasks(session, schedule_id, since, revision)
    if changed is None:
        return None
    jobs = await _jobs_of(session, changed)
    still = [c for c in earlier.conflicts if not involves(c, changed, set(jobs.values()))]
    fresh: list[Conflict] = []
    placed = await _placed_ids(session, schedule_id, changed)
    for task_id in sorted(placed):
        known = tasks_kept.get((schedule_id, revision, task_id))
        fresh.extend(
            known if known is not None else await conflicts_in(session, schedule_id, task_id)
        )
    for job_id in sorted({jobs[task_id] for task_id in changed - placed if task_id in jobs}):
        plan = await load_job(session, schedule_id, job_id)
        late = validate_plan(plan, now=now)
        fresh.extend(c for c in late if c.type is ConflictType.LATE and c.job_id == job_id)
    merged = ordered(dict.fromkeys(still + fresh))
    ends = [
        c_end
        for c in fresh
        if c.type is ConflictType.EQUIPMENT_UNAVAILABLE
        and (c_end := await _end_of(session, schedule_id, c.task_ids[0])) is not None
        and c_end > now
    ]
    until = min(
        [moment for moment in [earlier.valid_until, *ends] if moment is not None], default=None
    )
    return Kept(merged, until)


async def _changed_tasks(
    session: AsyncSession, schedule_id: int, since: int, revision: int
) -> set[int] | None:
    """The tasks changed after `since` up to `revision`; None if anything else changed."""
    c = t.ChangeLogEntry
    rows = (
        await session.execute(
            select(c.revision, c.kind, c.entity_ids).where(
                c.schedule_id == schedule_id, c.revision > since, c.revision <= revision
            )
        )
    ).all()
    if len(rows) != revision - since:  # a hole in the log: cannot tell what changed
        return None
    changed: set[int] = set()
    for row in rows:
        entities: dict[str, Any] = row.entity_ids or {}
        if row.kind not in INCREMENTAL_KINDS or set(entities) - {"tasks", "operators", "equipment"}:
            return None
        changed.update(int(task_id) for task_id in entities.get("tasks", ()))
        if len(changed) > INCREMENTAL_TASKS:
            return None
    return changed


def involves(conflict: Conflict, tasks: set[int], jobs: set[int]) -> bool:
    """Whether a change of `tasks` (of `jobs`) may have made or cleared `conflict`."""
    if conflict.type is ConflictType.LATE:
        return conflict.job_id in jobs
    return any(task_id in tasks for task_id in conflict.task_ids)


async def _jobs_of(session: AsyncSession, task_ids: set[int]) -> dict[int, int]:
    tk = t.Task.__table__.c
    rows = await session.execute(select(tk.id, tk.job_id).where(tk.id.in_(task_ids)))
    return {row.id: row.job_id for row in rows}


async def _placed_ids(session: AsyncSession, schedule_id: int, task_ids: set[int]) -> set[int]:
    a = t.Assignment.__table__.c
    rows = await session.execute(
        select(a.task_id).where(a.schedule_id == schedule_id, a.task_id.in_(task_ids))
    )
    return set(rows.scalars())


async def _end_of(session: AsyncSession, schedule_id: int, task_id: int) -> datetime | None:
    placed = await session.get(t.Assignment, {"schedule_id": schedule_id, "task_id": task_id})
    return None if placed is None else clock.as_utc(placed.end)
