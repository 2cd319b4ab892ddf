"""Conflicts a page at a time: every conflict of the plan, each with where to find
it, and the board window's, for the board's panel.

The plant's list is the one the wall counts (`schedule.validate_schedule`,
computed once per revision), with the job's reference and the first task's
start so the board can jump to it. The board's panel shows a first page of its
window's conflicts (`window_page`) and fetches the next ones the same way, in
the order board.js keeps the panel (`data-order`), by a cursor: the items after
the last one shown, whatever changed before it since (an offset skipped or
repeated an item when a live change moved the list under it).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import select

from app.clock import as_utc
from app.db import tables as t
from app.db.plan_queries import schedule_revision
from app.domain.conflicts import Conflict, ConflictType
from app.services.access import require
from app.services.board import BoardScope, bar_ids, conflict_refs, conflicts_on, rows_of
from app.services.context import Actor, Services
from app.services.errors import InvalidInput
from app.services.schedule import validate_schedule

__all__ = [
    "PAGE",
    "ConflictPage",
    "Located",
    "WindowPage",
    "conflict_order",
    "following",
    "plant_conflicts",
    "window_conflicts",
    "window_page",
]

PAGE = 50
SEVERITIES = ("error", "warning")
BLOCKED = ConflictType.EQUIPMENT_UNAVAILABLE
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Located:
    conflict: Conflict
    reference: str
    job_name: str
    start: datetime | None  # the first task's start: where "go to" jumps


@dataclass(frozen=True, slots=True)
class ConflictPage:
    items: list[Located]
    total: int
    errors: int
    warnings: int
    offset: int
    revision: int

    @property
    def next_offset(self) -> int | None:
        return following(self.offset, len(self.items), self.total)

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - PAGE) if self.offset else None


def following(offset: int, shown: int, total: int) -> int | None:
    """Where the page after one of `shown` items from `offset` starts (None: no more)."""
    after = offset + shown
    return after if after < total else None


@dataclass(frozen=True, slots=True)
class WindowPage:
    """A page of a board window's conflicts (out-of-service ones aside: the panel
    groups those by machine, whole), in `conflict_order`, at `revision`."""

    items: list[Conflict]
    total: int
    left: int  # listed after the page's last item
    # Per item's first task: its job's reference and customer.
    refs: Mapping[int, str]
    revision: int = 0


def window_page(
    conflicts: list[Conflict],
    after: str,
    size: int,
    refs: Mapping[int, str] | None = None,
) -> WindowPage:
    """The `size` conflicts of a window that follow the one whose `conflict_order` is
    `after` ("": the first page), out-of-service ones left out."""
    listed = sorted((c for c in conflicts if c.type is not BLOCKED), key=conflict_order)
    begin = bisect_right([conflict_order(c) for c in listed], after) if after else 0
    items = listed[begin : begin + size]
    firsts = {c.task_ids[0] for c in items if c.task_ids}
    known = {task_id: ref for task_id, ref in (refs or {}).items() if task_id in firsts}
    return WindowPage(items, len(listed), len(listed) - begin - len(items), known)


AFTER_MAX = 4000  # a data-order: a type, the task ids, a message


async def window_conflicts(
    *,
    services: Services,
    actor: Actor,
    scope: BoardScope,
    after: str,
) -> WindowPage:
    """The conflicts the board of `scope` lists after the one ordered `after` (its
    "Show more"), and the revision they are of."""
    require(actor, "plan.read")
    if len(after) > AFTER_MAX or not after.isprintable():
        raise InvalidInput("after is the data-order of the last item shown", {"field": "after"})
    schedule_id = await services.live_schedule_id()
    async with services.db.snapshot() as session:
        revision = await schedule_revision(session, schedule_id)
        shown = {resource.id for resource in await rows_of(session, scope)}
        visible = await bar_ids(session, schedule_id, scope, shown)
        found = await conflicts_on(services, session, schedule_id, revision, scope, visible)
        page = window_page(found, after, services.settings.board_conflicts_page)
        refs = await conflict_refs(session, page.items)
    return replace(page, refs=refs, revision=revision)


def conflict_order(conflict: Conflict) -> str:
    """`validation.ordered`'s key as a string that sorts the same way in JavaScript
    (board.js puts a live change's items in place by it, and knows from it which
    items the panel's page holds): the type, then the task ids (fixed width, ","
    between, so a shorter run of the same ids sorts first), then the message, a
    space between (types are lowercase words and `_`)."""
    ids = ",".join(f"{task_id:010d}" for task_id in conflict.task_ids)
    return f"{conflict.type.value} {ids} {conflict.message}"


async def plant_conflicts(
    *, services: Services, actor: Actor, offset: int = 0, severity: str | None = None
) -> ConflictPage:
    """One page of the live plan's conflicts, errors first, each located on the plan."""
    if offset < 0:
        raise InvalidInput("offset must be zero or more", {"field": "offset"})
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput("severity is error or warning", {"field": "severity"})
    validation = await validate_schedule(services=services, actor=actor)
    every = validation.conflicts
    errors = sum(1 for c in every if str(c.severity) == "error")
    chosen = [c for c in every if severity is None or str(c.severity) == severity]
    located = await _located(services, chosen)
    # Errors first, then in the order a scheduler meets them: by when they happen.
    located.sort(key=lambda item: (str(item.conflict.severity) != "error", _when(item)))
    return ConflictPage(
        items=located[offset : offset + PAGE],
        total=len(chosen),
        errors=errors,
        warnings=len(every) - errors,
        offset=offset,
        revision=validation.revision,
    )


def _when(item: Located) -> tuple[bool, datetime, tuple[int, ...]]:
    return (item.start is None, item.start or _NEVER, item.conflict.task_ids)


async def _located(services: Services, conflicts: list[Conflict]) -> list[Located]:
    first_ids = {c.task_ids[0] for c in conflicts if c.task_ids}
    if not first_ids:
        return [Located(c, "", "", None) for c in conflicts]
    tk, jb, a = t.Task.__table__.c, t.Job.__table__.c, t.Assignment.__table__.c
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        rows = await session.execute(
            select(tk.id, jb.reference, jb.name, a.start)
            .join(t.Job.__table__, jb.id == tk.job_id)
            .join(
                t.Assignment.__table__,
                (a.task_id == tk.id) & (a.schedule_id == schedule_id),
                isouter=True,
            )
            .where(tk.id.in_(first_ids))
        )
        where = {row.id: row for row in rows}
    located = []
    for c in conflicts:
        row = where.get(c.task_ids[0]) if c.task_ids else None
        located.append(
            Located(
                conflict=c,
                reference=row.reference if row else "",
                job_name=row.name if row else "",
                start=as_utc(row.start) if row is not None and row.start else None,
            )
        )
    return located
