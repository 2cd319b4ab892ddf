"""Every conflict of the plan, a page at a time, each with where to find it.

The board's own panel lists the window's conflicts; this is the plant's:
the same list the wall counts (`schedule.validate_schedule`, computed once
per revision), with the job's reference and the first task's start so the
board can jump to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from app.clock import as_utc
from app.db import tables as t
from app.domain.conflicts import Conflict
from app.services.context import Actor, Services
from app.services.errors import InvalidInput
from app.services.schedule import validate_schedule

__all__ = ["PAGE", "ConflictPage", "Located", "plant_conflicts"]

PAGE = 50
SEVERITIES = ("error", "warning")
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
        following = self.offset + len(self.items)
        return following if following < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - PAGE) if self.offset else None


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
