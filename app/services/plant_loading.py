"""Load a whole plant (the demo, a job-shop instance) in one change.

Everything is written in ONE transaction of the write path, kind
`plant.loaded`: one revision, one change-log row, one audit entry that
summarises the load with counts and id ranges (no names, no personal data).
Rows go in with Core `INSERT ... executemany` (with `RETURNING` where the ids
are needed), so ten thousand tasks load in about a second even on SQLite. The slow
parts - argon2 password hashes, encrypting contact data - happen before the
transaction takes the write lock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.db import tables
from app.domain.plants.plant_data import PlantData, PlantOperator, check_references, progress_of
from app.security.crypto import DataCipher
from app.security.passwords import hash_password
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import InvalidInput, StateConflict
from app.services.write_path import Transaction, change

__all__ = ["STEPS", "LoadedPlant", "load_plant", "plant_is_empty"]


@dataclass(frozen=True, slots=True)
class LoadedPlant:
    """Database ids of what was loaded, by the plant description's local keys."""

    revision: int
    timezone: str
    equipment: dict[str, int] = field(default_factory=dict)
    operators: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    # username -> user id
    users: dict[str, int] = field(default_factory=dict)
    assignments: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "equipment": len(self.equipment),
            "operators": len(self.operators),
            "jobs": len(self.jobs),
            "tasks": len(self.tasks),
            "assignments": self.assignments,
            "users": len(self.users),
        }


async def plant_is_empty(services: Services) -> bool:
    """True when the plant has no equipment, operators or jobs yet."""
    async with services.db.read() as session:
        for table in (tables.Equipment, tables.Operator, tables.Job):
            if await session.scalar(select(table.id).limit(1)) is not None:
                return False
    return True


# What the load tells `on_step` as it goes, in order (an import shows it as progress).
STEPS = ("equipment", "operators", "jobs", "tasks", "routings", "plan", "users")
OnStep = Callable[[str], None]


async def load_plant(
    *,
    services: Services,
    actor: Actor,
    plant: PlantData,
    timezone: str | None = None,
    on_step: OnStep | None = None,
) -> LoadedPlant:
    """Write `plant` into the live schedule; `timezone` overrides the plant's own.

    `on_step` hears each of `STEPS` as its rows are written (all inside the one
    transaction: an exception from it rolls everything back).
    """
    require(actor, "resources.manage")
    if plant.users:
        require(actor, "users.manage")
    try:
        check_references(plant)
    except ValueError as error:
        raise InvalidInput(f"the plant description is inconsistent: {error}") from None
    zone = _checked_zone(timezone or plant.timezone or services.settings.plant_timezone)
    cipher = DataCipher(services.settings.data_keys)
    contacts = [_sealed_contact(cipher, operator) for operator in plant.operators]
    hashes = await asyncio.gather(
        *(asyncio.to_thread(hash_password, user.password) for user in plant.users)
    )
    async with change(services, actor, "plant.loaded") as tx:
        await _check_no_clashes(tx.session, plant)
        loaded = await _write(tx, plant, contacts, hashes, zone, on_step or _quiet)
    assert tx.revision is not None
    return LoadedPlant(revision=tx.revision, timezone=zone, **loaded)


def _checked_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", {"field": "timezone"}) from None
    return name


def _sealed_contact(cipher: DataCipher, operator: PlantOperator) -> bytes | None:
    if not operator.contact:
        return None
    return cipher.encrypt(json.dumps(dict(operator.contact)).encode())


async def _check_no_clashes(session: AsyncSession, plant: PlantData) -> None:
    """Equipment names and usernames are unique: say which ones exist already."""
    names = [unit.name for unit in plant.equipment]
    taken = await _existing(session, tables.Equipment.name, names)
    if taken:
        raise StateConflict(
            f"the plant already has equipment named {', '.join(sorted(taken)[:5])}; "
            "load into an empty database",
            {"equipment": sorted(taken)},
        )
    usernames = [user.username.strip().lower() for user in plant.users]
    taken = await _existing(session, tables.User.username, usernames)
    if taken:
        raise StateConflict(f"users already exist: {', '.join(sorted(taken))}")


async def _existing(session: AsyncSession, column: Any, values: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        found.update((await session.execute(select(column).where(column.in_(chunk)))).scalars())
    return found


async def _write(
    tx: Transaction,
    plant: PlantData,
    contacts: Sequence[bytes | None],
    hashes: Sequence[str],
    zone: str,
    on_step: OnStep,
) -> dict[str, Any]:
    session, now = tx.session, clock.now()
    on_step("equipment")
    equipment = await _insert_equipment(session, plant)
    on_step("operators")
    operators = await _insert_operators(session, plant, contacts)
    on_step("jobs")
    jobs = await _insert_jobs(session, plant)
    on_step("tasks")
    tasks = await _insert_tasks(session, plant, jobs)
    on_step("routings")
    await _insert_alternatives(session, plant, tasks, equipment)
    on_step("plan")
    await _insert_assignments(tx, plant, equipment, operators, tasks, now)
    on_step("users")
    users = await _insert_users(session, plant, operators, hashes, now)
    await session.execute(
        update(tables.Schedule).where(tables.Schedule.id == tx.schedule_id).values(timezone=zone)
    )
    ids = {
        "equipment": equipment,
        "operators": operators,
        "jobs": jobs,
        "tasks": tasks,
        "users": users,
    }
    for entity, mapping in ids.items():
        tx.touch(entity, *mapping.values())
    counts = {entity: len(mapping) for entity, mapping in ids.items()}
    counts["assignments"] = len(plant.assignments)
    tx.audit(
        "schedules",
        tx.schedule_id,
        before=None,
        after={
            "counts": counts,
            "id_ranges": {e: _id_range(m.values()) for e, m in ids.items() if m},
            "timezone": zone,
        },
    )
    return {**ids, "assignments": len(plant.assignments)}


def _quiet(step: str) -> None:
    pass


def _id_range(ids: Any) -> list[int]:
    values = list(ids)
    return [min(values), max(values)]


def _table(name: str) -> Table:
    return tables.Base.metadata.tables[name]


async def _insert_returning_ids(
    session: AsyncSession, table: Table, keys: Sequence[str], rows: list[dict[str, Any]]
) -> dict[str, int]:
    """Insert `rows` (executemany) and map each row's local key to its new id."""
    if not rows:
        return {}
    if session.get_bind().dialect.name == "sqlite":
        # SQLite numbers new rows max(id) + 1 in VALUES order and we hold the write
        # lock, so ascending ids are the rows in order. (Asking SQLAlchemy to sort
        # RETURNING would make it insert on SQLite row by row: 30x slower.)
        result = await session.execute(insert(table).returning(table.c.id), rows)
        ids = sorted(result.scalars())
        if ids[-1] - ids[0] != len(ids) - 1:
            raise RuntimeError(f"ids of new {table.name} rows are not consecutive")
    else:
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = list((await session.execute(statement, rows)).scalars())
    return dict(zip(keys, ids, strict=True))


async def _insert_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(table), rows)


async def _insert_equipment(session: AsyncSession, plant: PlantData) -> dict[str, int]:
    rows = [
        {
            "name": unit.name,
            "type": unit.type,
            "capabilities": list(unit.capabilities),
            "status": str(unit.status),
            "version": 1,
        }
        for unit in plant.equipment
    ]
    keys = [unit.key for unit in plant.equipment]
    ids = await _insert_returning_ids(session, _table("equipment"), keys, rows)
    downtime = [
        {"equipment_id": ids[unit.key], "start": d.start, "end": d.end, "reason": d.reason}
        for unit in plant.equipment
        for d in unit.downtime
    ]
    await _insert_many(session, _table("equipment_downtime"), downtime)
    return ids


async def _insert_operators(
    session: AsyncSession, plant: PlantData, contacts: Sequence[bytes | None]
) -> dict[str, int]:
    rows = [
        {"name": operator.name, "contact_encrypted": contact, "version": 1}
        for operator, contact in zip(plant.operators, contacts, strict=True)
    ]
    keys = [operator.key for operator in plant.operators]
    ids = await _insert_returning_ids(session, _table("operators"), keys, rows)
    skills, shifts, exceptions = [], [], []
    for operator in plant.operators:
        operator_id = ids[operator.key]
        skills += [
            {"operator_id": operator_id, "skill": skill, "level": level}
            for skill, level in operator.skills.items()
        ]
        shifts += [
            {"operator_id": operator_id, "weekday": s.weekday, "start": s.start, "end": s.end}
            for s in operator.weekly_shifts
        ]
        exceptions += [
            {"operator_id": operator_id, "kind": e.kind, "start": e.start, "end": e.end,
             "reason": e.reason}
            for e in operator.exceptions
        ]  # fmt: skip
    await _insert_many(session, _table("operator_skills"), skills)
    await _insert_many(session, _table("operator_shifts"), shifts)
    await _insert_many(session, _table("operator_calendar_exceptions"), exceptions)
    return ids


async def _insert_jobs(session: AsyncSession, plant: PlantData) -> dict[str, int]:
    rows = [
        {
            "name": job.name,
            "customer": job.customer,
            "reference": job.reference,
            "priority": job.priority,
            "release": job.release,
            "due": job.due,
            "status": "open",
            "version": 1,
        }
        for job in plant.jobs
    ]
    return await _insert_returning_ids(session, _table("jobs"), [j.key for j in plant.jobs], rows)


async def _insert_tasks(
    session: AsyncSession, plant: PlantData, jobs: Mapping[str, int]
) -> dict[str, int]:
    assigned = {assignment.task_key: assignment for assignment in plant.assignments}
    rows: list[dict[str, Any]] = []
    keys: list[str] = []
    for job in plant.jobs:
        for sequence, task in enumerate(job.tasks):
            keys.append(task.key)
            rows.append(
                {
                    "job_id": jobs[job.key],
                    "name": task.name,
                    "sequence": sequence,
                    "duration_minutes": task.duration_minutes,
                    "required_skill": task.required_skill,
                    "min_level": task.min_level,
                    "required_capability": task.required_capability,
                    "instructions": task.instructions,
                    **progress_of(assigned.get(task.key)),
                    "version": 1,
                }
            )
    ids = await _insert_returning_ids(session, _table("tasks"), keys, rows)
    dependencies = [
        {"task_id": ids[task.key], "predecessor_id": ids[predecessor]}
        for _, task in plant.tasks()
        for predecessor in dict.fromkeys(task.predecessors)
    ]
    await _insert_many(session, _table("task_dependencies"), dependencies)
    return ids


async def _insert_alternatives(
    session: AsyncSession,
    plant: PlantData,
    tasks: Mapping[str, int],
    equipment: Mapping[str, int],
) -> None:
    rows = [
        {"task_id": tasks[task.key], "equipment_id": equipment[key], "duration_minutes": minutes}
        for _, task in plant.tasks()
        for key, minutes in task.alternatives
    ]
    await _insert_many(session, _table("task_alternatives"), rows)


async def _insert_assignments(
    tx: Transaction,
    plant: PlantData,
    equipment: Mapping[str, int],
    operators: Mapping[str, int],
    tasks: Mapping[str, int],
    now: datetime,
) -> None:
    rows = [
        {
            "schedule_id": tx.schedule_id,
            "task_id": tasks[a.task_key],
            "operator_id": operators[a.operator_key],
            "equipment_id": equipment[a.equipment_key],
            "start": a.start,
            "end": a.end,
            "assigned_by": tx.actor.user_id,
            "assigned_at": now,
        }
        for a in plant.assignments
    ]
    await _insert_many(tx.session, _table("assignments"), rows)


async def _insert_users(
    session: AsyncSession,
    plant: PlantData,
    operators: Mapping[str, int],
    hashes: Sequence[str],
    now: datetime,
) -> dict[str, int]:
    rows = [
        {
            "username": user.username.strip().lower(),
            "display_name": user.display_name,
            "password_hash": password_hash,
            "role": user.role,
            "operator_id": operators[user.operator_key] if user.operator_key else None,
            "active": True,
            "created_at": now,
            "version": 1,
        }
        for user, password_hash in zip(plant.users, hashes, strict=True)
    ]
    usernames = [user.username.strip().lower() for user in plant.users]
    return await _insert_returning_ids(session, _table("users"), usernames, rows)
