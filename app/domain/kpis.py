"""What the managers' dashboard wall shows, computed from one plan snapshot.

Every KPI is a pure function of a `Plan`, the moment `now` and the plant's IANA
time zone; `dashboard` gathers them into one frozen tree for the page. Each
function makes one pass over the tasks or assignments (plus an index built in
one pass), so the 10,000-task demo plant stays well under a frame's budget.

Windows are half-open `Interval`s in UTC, like everywhere else. "Today" is the
plant-local calendar day containing `now` (23 or 25 hours long on the nights
the clocks change). A task counts as *done at* its `actual_end`; a done task
without one is not counted in any time-bucketed figure, because we cannot say
when it was finished (the loader fills `actual_end` for completions).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domain.calendar import availability, merge
from app.domain.conflicts import SEVERITY, Conflict, ConflictType, Severity
from app.domain.plan import (
    Assignment,
    Equipment,
    EquipmentStatus,
    Interval,
    JobStatus,
    Plan,
    Task,
    TaskStatus,
)

__all__ = [
    "ON_TIME_WINDOW",
    "ConflictCount",
    "Dashboard",
    "EquipmentDown",
    "HourCount",
    "LateJob",
    "OnTimeRate",
    "PlannedVsDone",
    "Utilization",
    "dashboard",
    "equipment_down",
    "late_jobs",
    "on_time_rate",
    "open_conflicts_by_type",
    "planned_vs_done_today",
    "plant_day",
    "throughput_per_hour",
    "utilization_by_equipment",
    "utilization_by_operator",
]

# The wall's on-time rate looks back one week: one day holds too few jobs.
ON_TIME_WINDOW = timedelta(days=7)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class OnTimeRate:
    window: Interval
    finished_jobs: int
    on_time_jobs: int

    @property
    def rate(self) -> float | None:
        """Share of finished jobs that were on time; None when none finished."""
        return self.on_time_jobs / self.finished_jobs if self.finished_jobs else None


@dataclass(frozen=True, slots=True)
class PlannedVsDone:
    day: date
    window: Interval
    planned_tasks: int
    done_tasks: int
    planned_minutes: int
    done_minutes: int


@dataclass(frozen=True, slots=True)
class Utilization:
    resource_id: int
    name: str
    booked_minutes: float
    available_minutes: float

    @property
    def overbooked(self) -> bool:
        """More booked than available: a double booking, or work outside shift/in downtime."""
        return self.booked_minutes > self.available_minutes

    @property
    def ratio(self) -> float:
        """Booked over available, clamped to 0..1 (see `overbooked` for the excess)."""
        if self.available_minutes <= 0:
            return 1.0 if self.booked_minutes > 0 else 0.0
        return min(self.booked_minutes / self.available_minutes, 1.0)


@dataclass(frozen=True, slots=True)
class EquipmentDown:
    equipment_id: int
    name: str
    status: EquipmentStatus
    # None: nobody knows yet.
    expected_back: datetime | None
    # Not-done tasks booked on it between now and expected_back.
    affected_tasks: int
    # True when the machine is "available" but inside a planned downtime window.
    planned: bool = False


@dataclass(frozen=True, slots=True)
class ConflictCount:
    type: ConflictType
    severity: Severity
    count: int


@dataclass(frozen=True, slots=True)
class LateJob:
    job_id: int
    name: str
    due: datetime
    # Latest end among its tasks (actual end if done, else the booked end).
    projected_end: datetime | None
    lateness: timedelta
    # Past its due time already (as opposed to only projected to miss it).
    overdue: bool
    # Not-done tasks with no slot yet: the job may end later than projected.
    unscheduled_tasks: int
    reference: str = ""


@dataclass(frozen=True, slots=True)
class HourCount:
    start: datetime
    # Plant-local wall-clock hour, e.g. "14:00" (repeats on the autumn DST night).
    label: str
    completed: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    now: datetime
    timezone: str
    on_time: OnTimeRate
    today: PlannedVsDone
    equipment_utilization: tuple[Utilization, ...]
    operator_utilization: tuple[Utilization, ...]
    equipment_down: tuple[EquipmentDown, ...]
    open_conflicts: tuple[ConflictCount, ...]
    late_jobs: tuple[LateJob, ...]
    throughput: tuple[HourCount, ...]


def dashboard(
    plan: Plan, conflicts: Sequence[Conflict], *, now: datetime, timezone: str
) -> Dashboard:
    """Every KPI of the wall at `now`.

    Windows: on-time rate over the last `ON_TIME_WINDOW`; planned vs done and
    utilization over the plant-local today; throughput over the last 12 hours.
    """
    today = plant_day(now, timezone)
    return Dashboard(
        now=now,
        timezone=timezone,
        on_time=on_time_rate(plan, window=Interval(now - ON_TIME_WINDOW, now)),
        today=planned_vs_done_today(plan, now=now, timezone=timezone),
        equipment_utilization=utilization_by_equipment(plan, window=today),
        operator_utilization=utilization_by_operator(plan, window=today, timezone=timezone),
        equipment_down=equipment_down(plan, now=now),
        open_conflicts=open_conflicts_by_type(conflicts),
        late_jobs=late_jobs(plan, now=now),
        throughput=throughput_per_hour(plan, now=now, timezone=timezone),
    )


def plant_day(now: datetime, timezone: str) -> Interval:
    """The plant-local calendar day containing `now`, from local midnight to midnight, in UTC."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    return Interval(_local_midnight(day, zone), _local_midnight(day + timedelta(days=1), zone))


def on_time_rate(plan: Plan, *, window: Interval) -> OnTimeRate:
    """Of the jobs that finished within `window`, how many finished by their due time.

    A job *finished* when every one of its tasks (at least one) is done; it
    finished at the latest `actual_end` of its tasks. It counts when that
    moment lies in `window` and it is *on time* when that moment is not after
    its due time. Left out: cancelled jobs, jobs without a due time (no
    promise to keep) and jobs with a done task lacking `actual_end` (we cannot
    tell when they finished).
    """
    finished = on_time = 0
    for job_id, tasks in _tasks_by_job(plan).items():
        job = plan.jobs.get(job_id)
        if job is None or job.due is None or job.status is JobStatus.CANCELLED:
            continue
        ends = [task.actual_end for task in tasks if task.status is TaskStatus.DONE]
        if len(ends) < len(tasks) or None in ends:
            continue
        finished_at = max(end for end in ends if end is not None)
        if _within(finished_at, window):
            finished += 1
            if finished_at <= job.due:
                on_time += 1
    return OnTimeRate(window=window, finished_jobs=finished, on_time_jobs=on_time)


def planned_vs_done_today(plan: Plan, *, now: datetime, timezone: str) -> PlannedVsDone:
    """Tasks booked to end today against tasks done today, in count and minutes.

    *Planned*: tasks whose assignment ends within the plant-local today,
    whatever their status. *Done*: tasks with status done whose `actual_end`
    is within today, wherever they were booked. Minutes are the tasks'
    standard `duration_minutes` on both sides ("earned" minutes), so the two
    compare like with like however long the work really took.
    """
    today = plant_day(now, timezone)
    planned_tasks = planned_minutes = done_tasks = done_minutes = 0
    for task in plan.tasks.values():
        assignment = plan.assignments.get(task.id)
        if assignment is not None and _within(assignment.end, today):
            planned_tasks += 1
            planned_minutes += task.duration_minutes
        if _done_within(task, today):
            done_tasks += 1
            done_minutes += task.duration_minutes
    return PlannedVsDone(
        day=now.astimezone(ZoneInfo(timezone)).date(),
        window=today,
        planned_tasks=planned_tasks,
        done_tasks=done_tasks,
        planned_minutes=planned_minutes,
        done_minutes=done_minutes,
    )


def utilization_by_equipment(plan: Plan, *, window: Interval) -> tuple[Utilization, ...]:
    """Booked minutes over available minutes of each machine within `window`.

    *Booked*: the sum, over the machine's assignments (any task status), of
    each slot's overlap with `window`. Overlapping slots both count, so a
    double booking can push it past what is available. *Available*: the
    window minus the machine's downtime windows. Its current status is not
    subtracted: a breakdown has no known start or end in the plan.
    Sorted by load (booked over available, unclamped), highest first, then by name.
    """
    booked = _booked_minutes(plan.assignments.values(), window, by_equipment=True)
    return _ranked(
        Utilization(
            resource_id=machine.id,
            name=machine.name,
            booked_minutes=booked.get(machine.id, 0.0),
            available_minutes=_minutes(window) - _downtime_minutes(machine, window),
        )
        for machine in plan.equipment.values()
    )


def utilization_by_operator(
    plan: Plan, *, window: Interval, timezone: str
) -> tuple[Utilization, ...]:
    """Booked minutes over shift minutes of each operator within `window`.

    *Booked* as for equipment (the sum of slot overlaps with the window, so
    double bookings add up). *Available*: the operator's shifts within the
    window (weekly pattern in plant-local time, plus extra shifts, minus time
    off; `calendar.availability`). Work booked outside shift also counts as
    booked, so it shows as load rather than vanishing. Sorted like equipment.
    """
    booked = _booked_minutes(plan.assignments.values(), window, by_equipment=False)
    return _ranked(
        Utilization(
            resource_id=operator.id,
            name=operator.name,
            booked_minutes=booked.get(operator.id, 0.0),
            available_minutes=sum(
                _minutes(shift) for shift in availability(operator, timezone, window)
            ),
        )
        for operator in plan.operators.values()
    )


def equipment_down(plan: Plan, *, now: datetime) -> tuple[EquipmentDown, ...]:
    """Machines out of service at `now`, with the work waiting on them.

    Out of service: status down or maintenance (back at `expected_back`, or
    unknown), or status available but inside a planned downtime window at
    `now` (back at that window's end). *Affected*: tasks not done whose slot
    on the machine overlaps [now, expected back), or ends after now when the
    return is unknown. Sorted by name.
    """
    out: dict[int, tuple[Equipment, datetime | None, bool]] = {}
    for machine in plan.equipment.values():
        if machine.status is not EquipmentStatus.AVAILABLE:
            out[machine.id] = (machine, machine.expected_back, False)
        elif (window := _downtime_at(machine, now)) is not None:
            out[machine.id] = (machine, window.end, True)
    affected: Counter[int] = Counter()
    for assignment in plan.assignments.values():
        if assignment.equipment_id not in out:
            continue
        task = plan.tasks.get(assignment.task_id)
        if task is not None and task.status is TaskStatus.DONE:
            continue
        back = out[assignment.equipment_id][1]
        if assignment.end > now and (back is None or assignment.start < back):
            affected[assignment.equipment_id] += 1
    found = (
        EquipmentDown(
            equipment_id=machine.id,
            name=machine.name,
            status=EquipmentStatus.MAINTENANCE if planned else machine.status,
            expected_back=back,
            affected_tasks=affected[machine.id],
            planned=planned,
        )
        for machine, back, planned in out.values()
    )
    return tuple(sorted(found, key=lambda down: (down.name, down.equipment_id)))


def open_conflicts_by_type(conflicts: Iterable[Conflict]) -> tuple[ConflictCount, ...]:
    """How many conflicts of each type, one row per type (zeros included) in SPEC order.

    Every type always has its row so the wall's layout never shifts.
    """
    counts = Counter(conflict.type for conflict in conflicts)
    return tuple(ConflictCount(kind, SEVERITY[kind], counts[kind]) for kind in ConflictType)


def late_jobs(plan: Plan, *, now: datetime) -> tuple[LateJob, ...]:
    """Open jobs that are past due, or booked to finish after their due time.

    Considered: jobs with a due time, not cancelled, not done (job status done
    or every task done). *Projected end*: the latest end among its tasks: the
    `actual_end` of a done task (its booked end when that is missing), the
    booked end of any other. Unfinished work cannot end before `now`, so
    *lateness* = max(now, projected end) - due; the job is late when that is
    positive. Sorted by lateness, latest first, then by job id.
    """
    found: list[LateJob] = []
    tasks_by_job = _tasks_by_job(plan)
    for job in plan.jobs.values():
        if job.due is None or job.status is not JobStatus.OPEN:
            continue
        tasks = tasks_by_job.get(job.id, [])
        if tasks and all(task.status is TaskStatus.DONE for task in tasks):
            continue
        ends: list[datetime] = []
        unscheduled = 0
        for task in tasks:
            assignment = plan.assignments.get(task.id)
            end = _projected_end(task, assignment)
            if end is not None:
                ends.append(end)
            elif task.status is not TaskStatus.DONE:
                unscheduled += 1
        projected = max(ends, default=None)
        lateness = (now if projected is None else max(now, projected)) - job.due
        if lateness > timedelta(0):
            found.append(
                LateJob(
                    job_id=job.id,
                    name=job.name,
                    due=job.due,
                    projected_end=projected,
                    lateness=lateness,
                    overdue=job.due < now,
                    unscheduled_tasks=unscheduled,
                    reference=job.reference,
                )
            )
    return tuple(sorted(found, key=lambda late: (-late.lateness, late.job_id)))


def throughput_per_hour(
    plan: Plan, *, now: datetime, timezone: str, hours: int = 12
) -> tuple[HourCount, ...]:
    """Tasks completed in each of the last `hours` plant-local clock hours, oldest first.

    The last bucket is the hour `now` is in (so far). A task counts in the
    bucket holding its `actual_end` when its status is done. Buckets follow
    the local clock, so in a zone with a half-hour offset they start at :30 UTC.
    """
    zone = ZoneInfo(timezone)
    current = now.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    first = current - (hours - 1) * _HOUR
    span = Interval(first, current + _HOUR)
    completed = [0] * hours
    for task in plan.tasks.values():
        if _done_within(task, span) and task.actual_end is not None:
            completed[(task.actual_end - first) // _HOUR] += 1
    starts = (first + index * _HOUR for index in range(hours))
    return tuple(
        HourCount(start=start, label=start.astimezone(zone).strftime("%H:%M"), completed=count)
        for start, count in zip(starts, completed, strict=True)
    )


def _tasks_by_job(plan: Plan) -> dict[int, list[Task]]:
    # One pass; `Plan.tasks_of_job` per job would be quadratic on the big plant.
    grouped: dict[int, list[Task]] = defaultdict(list)
    for task in plan.tasks.values():
        grouped[task.job_id].append(task)
    return grouped


def _booked_minutes(
    assignments: Iterable[Assignment], window: Interval, *, by_equipment: bool
) -> dict[int, float]:
    booked: dict[int, float] = defaultdict(float)
    for assignment in assignments:
        overlap = _overlap_minutes(assignment.interval, window)
        if overlap > 0:
            key = assignment.equipment_id if by_equipment else assignment.operator_id
            booked[key] += overlap
    return booked


def _ranked(rows: Iterable[Utilization]) -> tuple[Utilization, ...]:
    # By the unclamped load, so the worst overbooked resources lead the list.
    return tuple(sorted(rows, key=lambda row: (-_load(row), row.name, row.resource_id)))


def _load(row: Utilization) -> float:
    if row.available_minutes > 0:
        return row.booked_minutes / row.available_minutes
    return float("inf") if row.booked_minutes > 0 else 0.0


def _downtime_minutes(machine: Equipment, window: Interval) -> float:
    # Merged first: overlapping downtime windows must not be subtracted twice.
    return sum(_overlap_minutes(down, window) for down in merge(machine.downtime))


def _downtime_at(machine: Equipment, now: datetime) -> Interval | None:
    current = [down for down in merge(machine.downtime) if down.start <= now < down.end]
    return current[0] if current else None


def _projected_end(task: Task, assignment: Assignment | None) -> datetime | None:
    if task.status is TaskStatus.DONE and task.actual_end is not None:
        return task.actual_end
    return assignment.end if assignment is not None else None


def _done_within(task: Task, window: Interval) -> bool:
    return (
        task.status is TaskStatus.DONE
        and task.actual_end is not None
        and _within(task.actual_end, window)
    )


def _within(moment: datetime, window: Interval) -> bool:
    return window.start <= moment < window.end


def _overlap_minutes(interval: Interval, window: Interval) -> float:
    start, end = max(interval.start, window.start), min(interval.end, window.end)
    return (end - start).total_seconds() / 60 if end > start else 0.0


def _minutes(interval: Interval) -> float:
    return max((interval.end - interval.start).total_seconds() / 60, 0.0)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
