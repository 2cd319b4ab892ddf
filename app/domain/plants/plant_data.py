"""A plant to load, described before it has database ids.

The demo generator and the job-shop importer both produce a `PlantData`;
`app.services.plant_loading` writes it. Everything refers to everything else
by a *key* local to the description ("mill-01", "job-0007/30"), so a plant can
be built, checked and tested without a database. `as_plan` turns it into the
domain's `Plan` (with local ids 1..n) so validation can look at it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from app.domain.plan import (
    Alternative,
    Assignment,
    Equipment,
    EquipmentStatus,
    Interval,
    Job,
    Operator,
    Plan,
    Task,
    TaskStatus,
    WeeklyShift,
)

CalendarExceptionKind = Literal["time_off", "extra_shift"]
Role = Literal["operator", "scheduler", "manager", "admin"]


@dataclass(frozen=True, slots=True)
class DowntimeWindow:
    """Equipment out of use for a while, e.g. planned maintenance."""

    start: datetime
    end: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PlantEquipment:
    key: str
    name: str
    type: str
    capabilities: tuple[str, ...]
    status: EquipmentStatus = EquipmentStatus.AVAILABLE
    downtime: tuple[DowntimeWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class CalendarException:
    """Time off, or an extra shift outside the operator's weekly pattern."""

    start: datetime
    end: datetime
    kind: CalendarExceptionKind = "time_off"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PlantOperator:
    key: str
    name: str
    # skill tag -> level (1 = novice ... 5 = expert)
    skills: Mapping[str, int]
    weekly_shifts: tuple[WeeklyShift, ...] = ()
    exceptions: tuple[CalendarException, ...] = ()
    # Personal data (email, phone...): stored encrypted, never audited.
    contact: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlantTask:
    """One step of a job's routing. `predecessors` are task keys, in any job."""

    key: str
    name: str
    duration_minutes: int
    required_skill: str | None = None
    min_level: int = 1
    required_capability: str | None = None
    predecessors: tuple[str, ...] = ()
    instructions: str = ""
    # Alternative routings: (equipment key, minutes there); other capable
    # equipment takes `duration_minutes`.
    alternatives: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class PlantJob:
    key: str
    name: str
    tasks: tuple[PlantTask, ...]
    customer: str = ""
    reference: str = ""
    priority: int = 1
    release: datetime | None = None
    due: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlantAssignment:
    task_key: str
    operator_key: str
    equipment_key: str
    start: datetime
    end: datetime
    # What the floor reported: started (the task is in progress), or also
    # ended (done). None when the task has not started.
    actual_start: datetime | None = None
    actual_end: datetime | None = None

    @property
    def status(self) -> TaskStatus:
        if self.actual_end is not None:
            return TaskStatus.DONE
        return TaskStatus.SCHEDULED if self.actual_start is None else TaskStatus.IN_PROGRESS


@dataclass(frozen=True, slots=True)
class PlantUser:
    username: str
    password: str
    role: Role
    display_name: str = ""
    operator_key: str | None = None


@dataclass(frozen=True, slots=True)
class PlantData:
    name: str
    equipment: tuple[PlantEquipment, ...] = ()
    operators: tuple[PlantOperator, ...] = ()
    jobs: tuple[PlantJob, ...] = ()
    assignments: tuple[PlantAssignment, ...] = ()
    users: tuple[PlantUser, ...] = ()
    # IANA zone the weekly shifts are in; None: the loader's default.
    timezone: str | None = None

    def tasks(self) -> Iterator[tuple[PlantJob, PlantTask]]:
        for job in self.jobs:
            for task in job.tasks:
                yield job, task

    @property
    def task_count(self) -> int:
        return sum(len(job.tasks) for job in self.jobs)

    def counts(self) -> dict[str, int]:
        return {
            "equipment": len(self.equipment),
            "operators": len(self.operators),
            "jobs": len(self.jobs),
            "tasks": self.task_count,
            "assignments": len(self.assignments),
            "users": len(self.users),
        }


def check_references(plant: PlantData) -> None:
    """Raise `ValueError` on duplicate keys or references to keys that do not exist."""
    equipment = _unique("equipment", (e.key for e in plant.equipment))
    operators = _unique("operator", (o.key for o in plant.operators))
    _unique("job", (j.key for j in plant.jobs))
    tasks = _unique("task", (t.key for _, t in plant.tasks()))
    for _, task in plant.tasks():
        for predecessor in task.predecessors:
            _known("task", predecessor, tasks, f"predecessor of task {task.key}")
        _unique(f"routing of task {task.key} on", (key for key, _ in task.alternatives))
        for key, minutes in task.alternatives:
            _known("equipment", key, equipment, f"routing of task {task.key}")
            if minutes <= 0:
                raise ValueError(f"task {task.key} takes {minutes} minutes on {key}")
    _unique("assigned task", (a.task_key for a in plant.assignments))
    for assignment in plant.assignments:
        _known("task", assignment.task_key, tasks, "assignment")
        where = f"assignment of {assignment.task_key}"
        _known("operator", assignment.operator_key, operators, where)
        _known("equipment", assignment.equipment_key, equipment, where)
        if assignment.end <= assignment.start:
            raise ValueError(f"assignment of {assignment.task_key} does not end after it starts")
        if assignment.actual_end is not None and (
            assignment.actual_start is None or assignment.actual_end <= assignment.actual_start
        ):
            raise ValueError(f"{assignment.task_key} is done without having started before")
    _unique("user", (u.username for u in plant.users))
    for user in plant.users:
        if user.operator_key is not None:
            _known("operator", user.operator_key, operators, f"user {user.username}")


def _unique(what: str, keys: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"duplicate {what} key {key!r}")
        seen.add(key)
    return seen


def _known(what: str, key: str, keys: set[str], where: str) -> None:
    if key not in keys:
        raise ValueError(f"{where} refers to unknown {what} {key!r}")


def as_plan(plant: PlantData) -> Plan:
    """The plant as the domain's `Plan`; ids are positions (1..n) in the description."""
    equipment_ids = {e.key: index for index, e in enumerate(plant.equipment, 1)}
    operator_ids = {o.key: index for index, o in enumerate(plant.operators, 1)}
    job_ids = {j.key: index for index, j in enumerate(plant.jobs, 1)}
    task_ids = {t.key: index for index, (_, t) in enumerate(plant.tasks(), 1)}
    assigned = {a.task_key: a for a in plant.assignments}
    return Plan(
        equipment={
            equipment_ids[e.key]: Equipment(
                id=equipment_ids[e.key],
                name=e.name,
                type=e.type,
                capabilities=frozenset(e.capabilities),
                status=e.status,
                downtime=tuple(Interval(d.start, d.end) for d in e.downtime),
            )
            for e in plant.equipment
        },
        operators={
            operator_ids[o.key]: as_operator(o, operator_ids[o.key]) for o in plant.operators
        },
        jobs={
            job_ids[j.key]: Job(
                id=job_ids[j.key],
                name=j.name,
                priority=j.priority,
                release=j.release,
                due=j.due,
                reference=j.reference,
            )
            for j in plant.jobs
        },
        tasks={
            task_ids[t.key]: Task(
                id=task_ids[t.key],
                job_id=job_ids[j.key],
                name=t.name,
                duration_minutes=t.duration_minutes,
                required_skill=t.required_skill,
                min_level=t.min_level,
                required_capability=t.required_capability,
                predecessors=tuple(task_ids[p] for p in t.predecessors),
                alternatives=tuple(
                    Alternative(equipment_ids[key], minutes) for key, minutes in t.alternatives
                ),
                **progress_of(assigned.get(t.key)),
            )
            for j, t in plant.tasks()
        },
        assignments={
            task_ids[a.task_key]: Assignment(
                task_id=task_ids[a.task_key],
                operator_id=operator_ids[a.operator_key],
                equipment_id=equipment_ids[a.equipment_key],
                start=a.start,
                end=a.end,
            )
            for a in plant.assignments
        },
        timezone=plant.timezone or "UTC",
    )


def progress_of(assignment: PlantAssignment | None) -> dict[str, Any]:
    """A task's status and actual times, from its assignment (None: in the tray)."""
    if assignment is None:
        return {"status": TaskStatus.PENDING, "actual_start": None, "actual_end": None}
    return {
        "status": assignment.status,
        "actual_start": assignment.actual_start,
        "actual_end": assignment.actual_end,
    }


def as_operator(operator: PlantOperator, operator_id: int = 0) -> Operator:
    """The operator as the domain sees it (its calendar, skills and name)."""
    return Operator(
        id=operator_id,
        name=operator.name,
        skills=dict(operator.skills),
        weekly_shifts=operator.weekly_shifts,
        time_off=tuple(
            Interval(e.start, e.end) for e in operator.exceptions if e.kind == "time_off"
        ),
        extra_shifts=tuple(
            Interval(e.start, e.end) for e in operator.exceptions if e.kind == "extra_shift"
        ),
    )
