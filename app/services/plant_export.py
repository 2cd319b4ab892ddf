"""The plant as files: equipment, operators and jobs in the import's layout, and the plan.

`plant_description` reads the whole plant back into a `PlantData` keyed the
way the import reads files (equipment and operators by name, a job by its
reference, a task as `job/step`), so `export -> import` gives the same
plant. Jobs sharing a reference (several jobs of one sales order) are told
apart as `SO-1#1`, `SO-1#2`. Contact data is not exported: personal data
leaves the plant only through the GDPR export.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import as_utc
from app.db import tables as t
from app.db.board_queries import BoardFilter
from app.db.plan_queries import schedule_timezone
from app.domain.bounds import HORIZON_END, HORIZON_START
from app.domain.plan import EquipmentStatus, Interval, WeeklyShift
from app.domain.plants import workbook
from app.domain.plants.layout import Kind
from app.domain.plants.plant_data import (
    CalendarException,
    DowntimeWindow,
    PlantData,
    PlantEquipment,
    PlantJob,
    PlantOperator,
    PlantTask,
)
from app.domain.plants.plant_sheets import plant_rows
from app.services import plan_export
from app.services.access import require
from app.services.context import Actor, Services

__all__ = ["export_csv", "export_workbook", "plant_description"]


async def plant_description(*, services: Services, actor: Actor) -> tuple[PlantData, ZoneInfo]:
    """The plant's equipment, operators and jobs (no plan, no contacts) and its time zone."""
    require(actor, "resources.manage")
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        zone = ZoneInfo(await schedule_timezone(session, schedule_id))
        equipment, names = await _equipment(session)
        operators = await _operators(session)
        jobs = await _jobs(session, names)
    plant = PlantData(name="export", equipment=equipment, operators=operators, jobs=jobs)
    return plant, zone


async def export_csv(*, services: Services, actor: Actor, kind: Kind) -> bytes:
    plant, zone = await plant_description(services=services, actor=actor)
    return workbook.csv_bytes(kind, plant_rows(plant, zone=zone)[kind])


async def export_workbook(*, services: Services, actor: Actor, with_plan: bool = True) -> bytes:
    """One workbook: a sheet per kind, and the whole plan as the board's plan export writes it."""
    plant, zone = await plant_description(services=services, actor=actor)
    plan = None
    if with_plan:
        rows = await plan_export.plan_in_view(
            services=services,
            actor=actor,
            window=Interval(HORIZON_START, HORIZON_END),
            filters=BoardFilter(),
        )
        plan = (plan_export.HEADERS, [row.cells() for row in rows])
    return workbook.xlsx_bytes(plant_rows(plant, zone=zone), plan=plan)  # type: ignore[arg-type]


async def _all(session: AsyncSession, query: Any) -> list[Any]:
    return list(await session.execute(query))


async def _equipment(session: AsyncSession) -> tuple[tuple[PlantEquipment, ...], dict[int, str]]:
    e, d = t.Equipment.__table__.c, t.EquipmentDowntime.__table__.c
    downtime: dict[int, list[DowntimeWindow]] = defaultdict(list)
    for row in await _all(
        session, select(d.equipment_id, d.start, d.end, d.reason).order_by(d.start, d.id)
    ):
        downtime[row.equipment_id].append(
            DowntimeWindow(_utc(row.start), _utc(row.end), row.reason)
        )
    rows = await _all(
        session, select(e.id, e.name, e.type, e.capabilities, e.status).order_by(e.id)
    )
    units = tuple(
        PlantEquipment(
            key=row.name,
            name=row.name,
            type=row.type,
            capabilities=tuple(row.capabilities or ()),
            status=EquipmentStatus(row.status),
            downtime=tuple(downtime[row.id]),
        )
        for row in rows
    )
    return units, {row.id: row.name for row in rows}  # fmt: skip


async def _operators(session: AsyncSession) -> tuple[PlantOperator, ...]:
    o, s = t.Operator.__table__.c, t.OperatorSkill.__table__.c
    w, x = t.WeeklyShift.__table__.c, t.CalendarException.__table__.c
    skills: dict[int, dict[str, int]] = defaultdict(dict)
    for row in await _all(session, select(s.operator_id, s.skill, s.level)):
        skills[row.operator_id][row.skill] = row.level
    shifts: dict[int, list[WeeklyShift]] = defaultdict(list)
    for row in await _all(session, select(w.operator_id, w.weekday, w.start, w.end).order_by(w.id)):
        shifts[row.operator_id].append(WeeklyShift(row.weekday, row.start, row.end))
    exceptions: dict[int, list[CalendarException]] = defaultdict(list)
    query = select(x.operator_id, x.kind, x.start, x.end, x.reason).order_by(x.start, x.id)
    for row in await _all(session, query):
        exceptions[row.operator_id].append(
            CalendarException(_utc(row.start), _utc(row.end), row.kind, row.reason)
        )
    return tuple(
        PlantOperator(
            key=row.name,
            name=row.name,
            skills=skills[row.id],
            weekly_shifts=tuple(shifts[row.id]),
            exceptions=tuple(exceptions[row.id]),
        )
        for row in await _all(session, select(o.id, o.name).order_by(o.id))
    )


async def _jobs(session: AsyncSession, equipment: dict[int, str]) -> tuple[PlantJob, ...]:
    j, k = t.Job.__table__.c, t.Task.__table__.c
    dep, alt = t.TaskDependency.__table__.c, t.TaskAlternative.__table__.c
    jobs = await _all(
        session,
        select(j.id, j.name, j.customer, j.reference, j.priority, j.release, j.due).order_by(j.id),
    )
    keys = job_keys((row.id, row.reference) for row in jobs)
    tasks: dict[int, list[Any]] = defaultdict(list)
    task_keys: dict[int, str] = {}
    query = select(t.Task.__table__).order_by(k.job_id, k.sequence, k.id)
    for row in await _all(session, query):
        tasks[row.job_id].append(row)
        task_keys[row.id] = f"{keys[row.job_id]}/{(len(tasks[row.job_id])) * 10}"
    before: dict[int, list[str]] = defaultdict(list)
    for row in await _all(session, select(dep.task_id, dep.predecessor_id)):
        before[row.task_id].append(task_keys[row.predecessor_id])
    routings: dict[int, list[tuple[str, int]]] = defaultdict(list)
    query = select(alt.task_id, alt.equipment_id, alt.duration_minutes).order_by(alt.equipment_id)
    for row in await _all(session, query):
        routings[row.task_id].append((equipment[row.equipment_id], row.duration_minutes))
    return tuple(
        PlantJob(
            key=keys[job.id],
            name=job.name,
            customer=job.customer,
            reference=job.reference,
            priority=job.priority,
            release=_maybe_utc(job.release),
            due=_maybe_utc(job.due),
            tasks=tuple(
                PlantTask(
                    key=task_keys[task.id],
                    name=task.name,
                    duration_minutes=task.duration_minutes,
                    required_skill=task.required_skill,
                    min_level=task.min_level,
                    required_capability=task.required_capability,
                    predecessors=tuple(sorted(before[task.id], key=_step_order)),
                    instructions=task.instructions,
                    alternatives=tuple(routings[task.id]),
                )
                for task in tasks[job.id]
            ),
        )
        for job in jobs
    )


def job_keys(jobs: Iterable[tuple[int, str]]) -> dict[int, str]:
    """A key per job: its reference, numbered `#1`, `#2` when several jobs share it."""
    found = [
        (job_id, (reference or "").replace("/", "-").strip() or "job") for job_id, reference in jobs
    ]
    shared = Counter(reference for _, reference in found)
    seen: Counter[str] = Counter()
    keys = {}
    for job_id, reference in found:
        if shared[reference] == 1:
            keys[job_id] = reference
        else:
            seen[reference] += 1
            keys[job_id] = f"{reference}#{seen[reference]}"
    return keys


def _step_order(key: str) -> tuple[str, int]:
    job, _, step = key.rpartition("/")
    return job, int(step)


def _utc(moment: datetime) -> datetime:
    return as_utc(moment)


def _maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)
