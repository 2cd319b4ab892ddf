"""The plan as the domain sees it: plain, immutable facts about a plant.

The database layer builds a `Plan` (the whole plant, or just the neighbourhood
of one task) and hands it to the pure functions in `validation` and
`critical_path`. Nothing here knows about SQL, HTTP or the clock: the caller
passes `now` where it matters.

All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import NamedTuple


class EquipmentStatus(enum.StrEnum):
    AVAILABLE = "available"
    DOWN = "down"
    MAINTENANCE = "maintenance"


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    DONE = "done"


class JobStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Interval(NamedTuple):
    """A half-open span of time [start, end)."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Equipment:
    id: int
    name: str
    type: str
    capabilities: frozenset[str]
    status: EquipmentStatus = EquipmentStatus.AVAILABLE
    # When status is down/maintenance: when it is expected back (None: unknown).
    expected_back: datetime | None = None
    downtime: tuple[Interval, ...] = ()


@dataclass(frozen=True, slots=True)
class WeeklyShift:
    """One shift of an operator's weekly pattern, in the plant's local time.

    `weekday` is 0 for Monday. A shift whose `end` is not after its `start`
    runs past midnight into the next day (a night shift 22:00-06:00).
    """

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    name: str
    # skill tag -> level (1 = novice ... 5 = expert)
    skills: Mapping[str, int]
    weekly_shifts: tuple[WeeklyShift, ...] = ()
    time_off: tuple[Interval, ...] = ()
    extra_shifts: tuple[Interval, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    name: str
    priority: int = 0
    release: datetime | None = None
    due: datetime | None = None
    status: JobStatus = JobStatus.OPEN
    # The order it was made for (e.g. "SO-24394"): many jobs share a name, not this.
    reference: str = ""


class Alternative(NamedTuple):
    """An alternative routing: the task takes `duration_minutes` on this equipment."""

    equipment_id: int
    duration_minutes: int


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    job_id: int
    name: str
    duration_minutes: int
    required_skill: str | None = None
    min_level: int = 1
    required_capability: str | None = None
    predecessors: tuple[int, ...] = ()
    status: TaskStatus = TaskStatus.PENDING
    # What really happened on the floor (None until the operator starts/completes).
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    # Durations on particular equipment; any other capable equipment takes
    # `duration_minutes` (see `duration_on`).
    alternatives: tuple[Alternative, ...] = ()

    def duration_on(self, equipment_id: int) -> int:
        """How long the task takes on that equipment, in minutes."""
        for alternative in self.alternatives:
            if alternative.equipment_id == equipment_id:
                return alternative.duration_minutes
        return self.duration_minutes


@dataclass(frozen=True, slots=True)
class Assignment:
    task_id: int
    operator_id: int
    equipment_id: int
    start: datetime
    end: datetime

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Plan:
    """A consistent snapshot: resources, jobs, tasks and their assignments.

    A plan may be partial (the neighbourhood of one task); rules only look at
    what the plan holds and skip references they cannot resolve.
    """

    equipment: Mapping[int, Equipment] = field(default_factory=dict)
    operators: Mapping[int, Operator] = field(default_factory=dict)
    jobs: Mapping[int, Job] = field(default_factory=dict)
    tasks: Mapping[int, Task] = field(default_factory=dict)
    assignments: Mapping[int, Assignment] = field(default_factory=dict)
    # IANA name of the plant's time zone; weekly shifts are in this zone.
    timezone: str = "UTC"

    def with_assignment(self, assignment: Assignment) -> Plan:
        """The same plan with one task's assignment replaced (or added)."""
        assignments = dict(self.assignments)
        assignments[assignment.task_id] = assignment
        return Plan(
            equipment=self.equipment,
            operators=self.operators,
            jobs=self.jobs,
            tasks=self.tasks,
            assignments=assignments,
            timezone=self.timezone,
        )

    def tasks_of_job(self, job_id: int) -> Sequence[Task]:
        return [task for task in self.tasks.values() if task.job_id == job_id]
