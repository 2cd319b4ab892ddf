"""The demo plant's first days of plan, and the disturbances that test it.

`plan_forward` is a plain list scheduler: jobs in release order, each task
after its predecessors, on the qualified operator and capable machine that
finish it first (a few sampled candidates each), in the first gap that fits
inside one shift and outside maintenance. Good enough for a believable board,
and fast for ten thousand tasks.

`add_disturbances` then changes a few facts the way a real week does - a
drawing revision asks for a more skilled operator, a spindle fails, someone
takes a day off, material arrives late, a customer pulls a date in, two
schedulers book the same person or machine - so the board opens with a few
conflicts of several kinds.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from app.domain.calendar import availability, covers
from app.domain.plan import Interval
from app.domain.plants.plant_data import (
    CalendarException,
    DowntimeWindow,
    PlantAssignment,
    PlantData,
    PlantEquipment,
    PlantJob,
    PlantOperator,
    PlantTask,
    PlantUser,
    as_operator,
)
from app.domain.validation import capable, qualified

_CANDIDATE_OPERATORS = 4
_CANDIDATE_MACHINES = 3


@dataclass
class ShopFloor:
    """The demo plant while it is being planned: mutable, keyed by local keys."""

    timezone: str
    start: datetime
    equipment: dict[str, PlantEquipment]
    operators: dict[str, PlantOperator]
    jobs: dict[str, PlantJob]
    tasks: dict[str, PlantTask]
    job_of: dict[str, str]
    shifts: dict[str, list[Interval]] = field(default_factory=dict)
    assignments: dict[str, PlantAssignment] = field(default_factory=dict)
    # Tasks a disturbance already involves, or that start before `now` (they
    # have happened, see `record_history`): the next disturbance picks others.
    disturbed: set[str] = field(default_factory=set)
    # The moment the plant is loaded; None: nothing has happened yet.
    now: datetime | None = None

    @classmethod
    def build(
        cls,
        equipment: Iterable[PlantEquipment],
        operators: Iterable[PlantOperator],
        jobs: Iterable[PlantJob],
        *,
        timezone: str,
        start: datetime,
        now: datetime | None = None,
    ) -> ShopFloor:
        jobs = list(jobs)
        floor = cls(
            timezone=timezone,
            start=start,
            now=now,
            equipment={unit.key: unit for unit in equipment},
            operators={operator.key: operator for operator in operators},
            jobs={job.key: job for job in jobs},
            tasks={task.key: task for job in jobs for task in job.tasks},
            job_of={task.key: job.key for job in jobs for task in job.tasks},
        )
        for key in floor.operators:
            floor.refresh_shifts(key)
        return floor

    def refresh_shifts(self, operator_key: str) -> None:
        horizon = Interval(self.start - timedelta(days=1), self.start + timedelta(days=28))
        operator = as_operator(self.operators[operator_key])
        self.shifts[operator_key] = availability(operator, self.timezone, horizon)

    def level(self, operator_key: str, task: PlantTask) -> int:
        if task.required_skill is None:
            return 5
        return self.operators[operator_key].skills.get(task.required_skill, 0)

    def qualified(self, operator_key: str, task: PlantTask) -> bool:
        skills = self.operators[operator_key].skills
        return qualified(skills, skill=task.required_skill, min_level=task.min_level)

    def capable(self, equipment_key: str, task: PlantTask) -> bool:
        capabilities = self.equipment[equipment_key].capabilities
        return capable(capabilities, capability=task.required_capability)

    def is_down(self, equipment_key: str, slot: Interval) -> bool:
        return any(
            Interval(d.start, d.end).overlaps(slot) for d in self.equipment[equipment_key].downtime
        )

    def assign(self, task_key: str, operator_key: str, equipment_key: str, slot: Interval) -> None:
        self.assignments[task_key] = PlantAssignment(
            task_key, operator_key, equipment_key, slot.start, slot.end
        )

    def ordered_assignments(self) -> list[PlantAssignment]:
        return sorted(self.assignments.values(), key=lambda a: (a.start, a.task_key))

    def plant_data(self, *, name: str, users: tuple[PlantUser, ...]) -> PlantData:
        """The plant as planned and disturbed, ready to load."""
        jobs = tuple(
            replace(job, tasks=tuple(self.tasks[task.key] for task in job.tasks))
            for job in self.jobs.values()
        )
        return PlantData(
            name=name,
            equipment=tuple(self.equipment.values()),
            operators=tuple(self.operators.values()),
            jobs=jobs,
            assignments=tuple(self.ordered_assignments()),
            users=users,
            timezone=self.timezone,
        )


# -- planning -------------------------------------------------------------------------------


def plan_forward(floor: ShopFloor, rng: random.Random, *, until: datetime) -> None:
    """Place tasks that can start before `until`; a job stops at its first unplaced task."""
    busy: dict[str, list[Interval]] = defaultdict(list)
    for unit in floor.equipment.values():
        busy[unit.key] = sorted(Interval(d.start, d.end) for d in unit.downtime)
    by_skill: dict[str, list[str]] = defaultdict(list)
    for key, operator in floor.operators.items():
        for skill in operator.skills:
            by_skill[skill].append(key)
    by_capability: dict[str, list[str]] = defaultdict(list)
    for key, unit in floor.equipment.items():
        for capability in unit.capabilities:
            by_capability[capability].append(key)
    for job in sorted(floor.jobs.values(), key=lambda job: job.release or floor.start):
        for task in job.tasks:
            if any(p not in floor.assignments for p in task.predecessors):
                break
            earliest = max(
                [floor.start, job.release or floor.start]
                + [floor.assignments[p].end for p in task.predecessors]
            )
            operators = [k for k in by_skill[task.required_skill or ""] if floor.qualified(k, task)]
            machines = by_capability[task.required_capability or ""]
            choice = _best_slot(floor, task, earliest, busy, rng, operators, machines)
            if choice is None or choice[2].start >= until:
                break
            operator_key, equipment_key, slot = choice
            floor.assign(task.key, operator_key, equipment_key, slot)
            insort(busy[operator_key], slot)
            insort(busy[equipment_key], slot)


def _best_slot(
    floor: ShopFloor,
    task: PlantTask,
    earliest: datetime,
    busy: dict[str, list[Interval]],
    rng: random.Random,
    operators: Sequence[str],
    machines: Sequence[str],
) -> tuple[str, str, Interval] | None:
    """The candidate operator and machine that finish the task first."""
    operators = rng.sample(operators, min(len(operators), _CANDIDATE_OPERATORS))
    machines = rng.sample(machines, min(len(machines), _CANDIDATE_MACHINES))
    best: tuple[str, str, Interval] | None = None
    duration = timedelta(minutes=task.duration_minutes)
    for operator_key in operators:
        for equipment_key in machines:
            slot = _earliest_slot(
                floor.shifts[operator_key],
                (busy[operator_key], busy[equipment_key]),
                earliest,
                duration,
            )
            if slot is not None and (best is None or slot.end < best[2].end):
                best = (operator_key, equipment_key, slot)
    return best


def _earliest_slot(
    shifts: Sequence[Interval],
    taken: Sequence[Sequence[Interval]],
    begin: datetime,
    duration: timedelta,
) -> Interval | None:
    """The first slot from `begin` inside one shift that overlaps nothing `taken`.

    Each list in `taken` is sorted and free of overlaps, so the only interval
    that can block a slot is the last one starting before the slot ends.
    """
    while True:
        index = max(bisect_right(shifts, begin, key=_start) - 1, 0)
        slot = next(
            (
                Interval(max(begin, shift.start), max(begin, shift.start) + duration)
                for shift in shifts[index:]
                if max(begin, shift.start) + duration <= shift.end
            ),
            None,
        )
        if slot is None:
            return None
        blocked_until = max(
            (
                intervals[position - 1].end
                for intervals in taken
                if (position := bisect_left(intervals, slot.end, key=_start)) > 0
                and intervals[position - 1].end > slot.start
            ),
            default=None,
        )
        if blocked_until is None:
            return slot
        begin = blocked_until


def _start(interval: Interval) -> datetime:
    return interval.start


# -- what has happened ---------------------------------------------------------------------


def record_history(floor: ShopFloor) -> None:
    """What the plan puts before `floor.now` has happened as planned: done, or in
    progress when it runs across `now` - the floor a scheduler finds mid-shift."""
    if floor.now is None:
        return
    for key, a in floor.assignments.items():
        if a.start < floor.now:
            done = a.end if a.end <= floor.now else None
            floor.assignments[key] = replace(a, actual_start=a.start, actual_end=done)


# -- disturbances ---------------------------------------------------------------------------

Disturbance = Callable[[ShopFloor, random.Random], bool]


def add_disturbances(floor: ShopFloor, rng: random.Random, *, count: int) -> None:
    """Apply each kind of disturbance `count` times (when a fitting spot exists),
    to tasks that start at `floor.now` or later."""
    if floor.now is not None:
        floor.disturbed.update(
            a.task_key for a in floor.assignments.values() if a.start < floor.now
        )
    for disturbance in _DISTURBANCES:
        for _ in range(count):
            disturbance(floor, rng)


def _candidates(floor: ShopFloor, rng: random.Random) -> list[PlantAssignment]:
    """Undisturbed assignments in random order; with `floor.now`, those of the
    next day first, so a board opened now shows some of the disturbances."""
    found = [a for a in floor.ordered_assignments() if a.task_key not in floor.disturbed]
    rng.shuffle(found)
    if floor.now is not None:
        soon = floor.now + timedelta(days=1)
        found.sort(key=lambda a: a.start >= soon)
    return found


def _drawing_revision(floor: ShopFloor, rng: random.Random) -> bool:
    """skill_mismatch: the task now needs a higher level than its operator has."""
    for assignment in _candidates(floor, rng):
        task = floor.tasks[assignment.task_key]
        level = floor.level(assignment.operator_key, task)
        if 1 <= level < 5 and task.required_skill is not None:
            note = f" Rev. B: needs {task.required_skill} level {level + 1}."
            floor.tasks[task.key] = replace(
                task, min_level=level + 1, instructions=task.instructions + note
            )
            floor.disturbed.add(task.key)
            return True
    return False


def _breakdown(floor: ShopFloor, rng: random.Random) -> bool:
    """equipment_unavailable: an unplanned repair during a planned task."""
    for assignment in _candidates(floor, rng):
        unit = floor.equipment[assignment.equipment_key]
        end = min(assignment.end, assignment.start + timedelta(hours=2))
        window = DowntimeWindow(assignment.start, end, "Unplanned repair: coolant pump")
        downtime = tuple(sorted((*unit.downtime, window), key=lambda d: d.start))
        floor.equipment[unit.key] = replace(unit, downtime=downtime)
        floor.disturbed.add(assignment.task_key)
        return True
    return False


def _day_off(floor: ShopFloor, rng: random.Random) -> bool:
    """outside_shift: time off granted after the task was planned."""
    for assignment in _candidates(floor, rng):
        operator = floor.operators[assignment.operator_key]
        leave = CalendarException(assignment.start, assignment.end, "time_off", "Time off")
        floor.operators[operator.key] = replace(operator, exceptions=(*operator.exceptions, leave))
        floor.refresh_shifts(operator.key)
        floor.disturbed.add(assignment.task_key)
        return True
    return False


def _rushed_successor(floor: ShopFloor, rng: random.Random) -> bool:
    """dependency_violation: a follow-up task pulled in before its predecessor ends."""
    busy = _busy(floor)
    for assignment in _candidates(floor, rng):
        task = floor.tasks[assignment.task_key]
        before = [floor.assignments.get(p) for p in task.predecessors]
        predecessor = next((p for p in before if p and p.task_key not in floor.disturbed), None)
        if predecessor is None:
            continue
        overlap = min(timedelta(minutes=30), (predecessor.end - predecessor.start) / 2)
        begin = predecessor.end - overlap
        moved = Interval(begin, begin + (assignment.end - assignment.start))
        release = floor.jobs[floor.job_of[task.key]].release
        if (
            (release is not None and moved.start < release)
            or not covers(floor.shifts[assignment.operator_key], moved)
            or floor.is_down(assignment.equipment_key, moved)
            or _clashes(busy[assignment.operator_key], moved, task.key)
            or _clashes(busy[assignment.equipment_key], moved, task.key)
        ):
            continue
        floor.assign(task.key, assignment.operator_key, assignment.equipment_key, moved)
        floor.disturbed.update((task.key, predecessor.task_key))
        return True
    return False


def _late_material(floor: ShopFloor, rng: random.Random) -> bool:
    """before_release: the material for a planned job arrives later than expected."""
    for assignment in _candidates(floor, rng):
        job = floor.jobs[floor.job_of[assignment.task_key]]
        if job.tasks[0].key != assignment.task_key:
            continue
        release = assignment.start + timedelta(minutes=30)
        if job.due is not None and release >= job.due:
            continue
        floor.jobs[job.key] = replace(job, release=release)
        floor.disturbed.update(task.key for task in job.tasks)
        return True
    return False


def _pulled_in_due_date(floor: ShopFloor, rng: random.Random) -> bool:
    """late: the customer wants a fully planned job earlier than the plan delivers."""
    for assignment in _candidates(floor, rng):
        job = floor.jobs[floor.job_of[assignment.task_key]]
        last = floor.assignments.get(job.tasks[-1].key)
        if last is None or any(task.key in floor.disturbed for task in job.tasks):
            continue
        due = last.end - timedelta(hours=3)
        if job.release is not None and due <= job.release:
            continue
        if floor.now is not None and due <= floor.now:
            continue
        floor.jobs[job.key] = replace(job, due=due)
        floor.disturbed.update(task.key for task in job.tasks)
        return True
    return False


def _double_booked_operator(floor: ShopFloor, rng: random.Random) -> bool:
    """operator_double_booked: a second task given to someone already busy then."""
    for first, second in _overlapping_pairs(floor, rng):
        task = floor.tasks[second.task_key]
        slot = Interval(second.start, second.end)
        if floor.qualified(first.operator_key, task) and covers(
            floor.shifts[first.operator_key], slot
        ):
            floor.assign(task.key, first.operator_key, second.equipment_key, slot)
            floor.disturbed.update((first.task_key, second.task_key))
            return True
    return False


def _double_booked_machine(floor: ShopFloor, rng: random.Random) -> bool:
    """equipment_double_booked: a second task put on a machine already running one."""
    for first, second in _overlapping_pairs(floor, rng):
        task = floor.tasks[second.task_key]
        slot = Interval(second.start, second.end)
        if floor.capable(first.equipment_key, task) and not floor.is_down(
            first.equipment_key, slot
        ):
            floor.assign(task.key, second.operator_key, first.equipment_key, slot)
            floor.disturbed.update((first.task_key, second.task_key))
            return True
    return False


def _overlapping_pairs(
    floor: ShopFloor, rng: random.Random
) -> Iterable[tuple[PlantAssignment, PlantAssignment]]:
    """Undisturbed pairs overlapping in time on different people and machines."""
    ordered = [a for a in floor.ordered_assignments() if a.task_key not in floor.disturbed]
    if not ordered:
        return
    offset = rng.randrange(len(ordered))
    for index in range(len(ordered)):
        position = (offset + index) % len(ordered)
        first = ordered[position]
        for second in ordered[position + 1 :]:
            if second.start >= first.end:
                break
            if (
                second.operator_key != first.operator_key
                and second.equipment_key != first.equipment_key
            ):
                yield first, second


def _busy(floor: ShopFloor) -> dict[str, list[PlantAssignment]]:
    busy: dict[str, list[PlantAssignment]] = defaultdict(list)
    for assignment in floor.assignments.values():
        busy[assignment.operator_key].append(assignment)
        busy[assignment.equipment_key].append(assignment)
    return busy


def _clashes(assignments: Iterable[PlantAssignment], slot: Interval, task_key: str) -> bool:
    return any(
        a.task_key != task_key and a.start < slot.end and slot.start < a.end for a in assignments
    )


_DISTURBANCES: tuple[Disturbance, ...] = (
    _drawing_revision,
    _breakdown,
    _day_off,
    _rushed_successor,
    _late_material,
    _pulled_in_due_date,
    _double_booked_operator,
    _double_booked_machine,
)
