"""Finding anything on the plan by what a scheduler remembers of it.

One box, five kinds of answer: a job (by its order reference, name or
customer), a task (by its name or number), an operator, a piece of equipment.
Each answer says where on the board it is: the task to jump to and when it
starts, or the row to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import as_utc
from app.db import tables as t
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import InvalidInput

__all__ = ["KINDS", "MAX_QUERY", "Hit", "search_plan"]

MAX_QUERY = 100
PER_KIND = 8
KINDS = ("job", "task", "operator", "equipment")


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # "job" | "task" | "operator" | "equipment"
    id: int
    label: str
    detail: str
    # Where to jump: the task's bar (placed: its start) or the resource's row.
    task_id: int | None = None
    start: datetime | None = None
    rows: str | None = None  # "equipment" | "operator" for a resource

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "detail": self.detail,
            "task_id": self.task_id,
            "start": self.start.isoformat() if self.start else None,
            "rows": self.rows,
        }


async def search_plan(
    *, services: Services, actor: Actor, text: str, kind: str | None = None
) -> list[Hit]:
    """Jobs, tasks, operators and equipment matching `text` (only those of `kind`, e.g.
    the board's job filter asks for jobs); exact references first."""
    require(actor, "plan.read")
    text = text.strip()
    if not text:
        raise InvalidInput("type something to search for", {"field": "q"})
    if len(text) > MAX_QUERY:
        raise InvalidInput(f"a search is at most {MAX_QUERY} characters", {"field": "q"})
    if kind is not None and kind not in KINDS:
        raise InvalidInput("kind is job, task, operator or equipment", {"field": "kind"})
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    number = _number(text)
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        hits: list[Hit] = []
        if kind in (None, "job"):
            hits += await _jobs(session, schedule_id, text, pattern)
        if kind in (None, "task"):
            hits += await _tasks(session, schedule_id, pattern, number)
        if kind in (None, "operator", "equipment"):
            hits += [h for h in await _resources(session, pattern) if kind in (None, h.kind)]
        return hits


def _number(text: str) -> int | None:
    digits = text.removeprefix("#")
    return int(digits) if digits.isdigit() and len(digits) < 12 else None


def _like(column: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
    return func.lower(column).like(pattern, escape="\\")


async def _jobs(session: AsyncSession, schedule_id: int, text: str, pattern: str) -> list[Hit]:
    jb, tk, a = t.Job.__table__.c, t.Task.__table__.c, t.Assignment.__table__.c
    exact = func.lower(jb.reference) == text.lower()
    found = await session.execute(
        select(jb.id, jb.name, jb.reference, jb.customer, jb.status)
        .where(
            or_(_like(jb.reference, pattern), _like(jb.name, pattern), _like(jb.customer, pattern))
        )
        .order_by(exact.desc(), jb.reference, jb.id)
        .limit(PER_KIND)
    )
    jobs = list(found)
    if not jobs:
        return []
    # Each job jumps to its first placed task (else its first task, in the tray).
    first: dict[int, tuple[int, datetime | None]] = {}
    placed = await session.execute(
        select(tk.job_id, tk.id, a.start)
        .join(
            t.Assignment.__table__,
            (a.task_id == tk.id) & (a.schedule_id == schedule_id),
            isouter=True,
        )
        .where(tk.job_id.in_([j.id for j in jobs]))
        .order_by(tk.job_id, a.start.is_(None), a.start, tk.sequence, tk.id)
    )
    for row in placed:
        first.setdefault(row.job_id, (row.id, as_utc(row.start) if row.start else None))
    return [
        Hit(
            kind="job",
            id=j.id,
            label=" · ".join(part for part in (j.reference, j.name) if part),
            detail=" · ".join(part for part in (j.customer, j.status) if part),
            task_id=first.get(j.id, (None, None))[0],
            start=first.get(j.id, (None, None))[1],
        )
        for j in jobs
    ]


async def _tasks(
    session: AsyncSession, schedule_id: int, pattern: str, number: int | None
) -> list[Hit]:
    tk, jb, a = t.Task.__table__.c, t.Job.__table__.c, t.Assignment.__table__.c
    matches = _like(tk.name, pattern)
    if number is not None:
        matches = or_(matches, tk.id == number)
    found = await session.execute(
        select(tk.id, tk.name, tk.status, jb.reference, jb.name.label("job_name"), a.start)
        .join(t.Job.__table__, jb.id == tk.job_id)
        .join(
            t.Assignment.__table__,
            (a.task_id == tk.id) & (a.schedule_id == schedule_id),
            isouter=True,
        )
        .where(matches)
        .order_by((tk.id == (number or 0)).desc(), a.start.is_(None), a.start, tk.id)
        .limit(PER_KIND)
    )
    return [
        Hit(
            kind="task",
            id=row.id,
            label=f"{row.name} #{row.id}",
            detail=" · ".join(p for p in (row.reference, row.job_name, _status(row)) if p),
            task_id=row.id,
            start=as_utc(row.start) if row.start else None,
        )
        for row in found
    ]


def _status(row: object) -> str:
    return "in the tray" if getattr(row, "start", None) is None else str(getattr(row, "status", ""))


async def _resources(session: AsyncSession, pattern: str) -> list[Hit]:
    op, eq = t.Operator.__table__.c, t.Equipment.__table__.c
    operators = await session.execute(
        select(op.id, op.name).where(_like(op.name, pattern)).order_by(op.name).limit(PER_KIND)
    )
    machines = await session.execute(
        select(eq.id, eq.name, eq.type, eq.status)
        .where(or_(_like(eq.name, pattern), _like(eq.type, pattern)))
        .order_by(eq.name)
        .limit(PER_KIND)
    )
    return [
        Hit(kind="operator", id=row.id, label=row.name, detail="operator", rows="operator")
        for row in operators
    ] + [
        Hit(
            kind="equipment",
            id=row.id,
            label=row.name,
            detail=f"{row.type} · {row.status}",
            rows="equipment",
        )
        for row in machines
    ]
