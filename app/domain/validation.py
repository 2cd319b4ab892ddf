"""The validation engine: which assignments of a plan break which rules.

Two entry points share one set of rule functions:

- `validate_plan` checks the whole plan; overlaps are found with a sort and
  sweep per resource, O(n log n + k) for k overlapping pairs.
- `validate_assignment` answers "what if this task were placed here?" while a
  bar is dragged: only the conflicts that involve that task (and the `late`
  warning of its job), found by looking at its neighbours directly.

For any proposal `a`, `validate_assignment(plan, a)` equals the conflicts of
`validate_plan(plan.with_assignment(a))` that `involve` the task.

Done tasks are history: a conflict is only reported when at least one task it
is on is not done. So a done task is never checked alone (skill, shift,
release...), two done tasks never conflict with each other, but a live task
that collides with a done one is still reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.domain.calendar import availability, covers, week_horizon
from app.domain.conflicts import Conflict, ConflictType
from app.domain.plan import (
    Assignment,
    EquipmentStatus,
    Interval,
    Operator,
    Plan,
    Task,
    TaskStatus,
)

__all__ = [
    "capable",
    "involves",
    "ordered",
    "qualified",
    "valid_until",
    "validate_assignment",
    "validate_plan",
]


def qualified(skills: Mapping[str, int], *, skill: str | None, min_level: int) -> bool:
    """The one qualification check: the operator has the skill at the task's level or above.

    Validation, the optimizer, the board's suggestions and its "Qualified" group
    all ask this, so they never disagree about who may do a task.
    """
    if skill is None:
        return True
    level = skills.get(skill)
    return level is not None and level >= min_level


def capable(capabilities: Collection[str], *, capability: str | None) -> bool:
    """The one capability check: the equipment has the capability the task needs."""
    return capability is None or capability in capabilities


def validate_plan(plan: Plan, *, now: datetime) -> list[Conflict]:
    """Every conflict of the plan, in a deterministic order."""
    by_operator = _group(plan.assignments.values(), lambda a: a.operator_id)
    by_equipment = _group(plan.assignments.values(), lambda a: a.equipment_id)
    context = _Context(plan, now)
    found: list[Conflict] = []
    for assignment in plan.assignments.values():
        found.extend(_single_conflicts(context, assignment))
        found.extend(_predecessor_conflicts(context, assignment))
    for kind, groups in (
        (ConflictType.OPERATOR_DOUBLE_BOOKED, by_operator),
        (ConflictType.EQUIPMENT_DOUBLE_BOOKED, by_equipment),
    ):
        for group in groups.values():
            for first, second in _overlapping_pairs(group):
                found.extend(_double_booked(context, kind, first, second))
    for job_id, assignments in _assignments_by_job(plan).items():
        found.extend(_late(context, job_id, assignments))
    return ordered(found)


def valid_until(plan: Plan, *, now: datetime) -> datetime | None:
    """Until when `validate_plan(plan, now=now)` stays the answer as the clock moves on
    (None: for as long as the plan does not change).

    The clock matters in one place: work on equipment that is down or in
    maintenance conflicts only until the work's end has passed.
    """
    return min(
        (
            assignment.end
            for assignment in plan.assignments.values()
            if assignment.end > now
            and (equipment := plan.equipment.get(assignment.equipment_id)) is not None
            and equipment.status is not EquipmentStatus.AVAILABLE
        ),
        default=None,
    )


def validate_assignment(plan: Plan, assignment: Assignment, *, now: datetime) -> list[Conflict]:
    """The conflicts `assignment` would have if it replaced its task's current one.

    `plan` may be partial (the task's neighbourhood); ids it cannot resolve
    are skipped.
    """
    proposed = plan.with_assignment(assignment)
    context = _Context(proposed, now)
    found = list(_single_conflicts(context, assignment))
    found.extend(_neighbour_overlaps(context, assignment))
    found.extend(_predecessor_conflicts(context, assignment))
    for successor in _successors(proposed, assignment.task_id):
        if successor.id == assignment.task_id:
            continue  # a self-loop was already reported as its own predecessor
        if (successor_assignment := proposed.assignments.get(successor.id)) is not None:
            found.extend(_dependency(context, successor_assignment, assignment))
    task = proposed.tasks.get(assignment.task_id)
    if task is not None:
        job_assignments = [
            proposed.assignments[t.id]
            for t in proposed.tasks_of_job(task.job_id)
            if t.id in proposed.assignments
        ]
        found.extend(_late(context, task.job_id, job_assignments))
    return ordered(found)


def involves(conflict: Conflict, task: Task) -> bool:
    """Whether `validate_assignment` for `task` reports `conflict`."""
    if conflict.type is ConflictType.LATE:
        return conflict.job_id == task.job_id
    return task.id in conflict.task_ids


# -- context -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    plan: Plan
    now: datetime
    zone: ZoneInfo = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", ZoneInfo(self.plan.timezone))

    def shifts(self, operator: Operator, slot: Interval) -> Sequence[Interval]:
        """The operator's merged availability over the whole weeks around `slot`.

        Per slot, not over the span of all the operator's slots: the work
        follows the slots' own length (at most a few weeks each), however far
        apart they lie, and every slot in the same weeks shares one cache entry.
        """
        return availability(operator, self.plan.timezone, week_horizon(slot.start, slot.end))

    def task_name(self, task_id: int) -> str:
        task = self.plan.tasks.get(task_id)
        return task.name if task is not None else f"task #{task_id}"

    def is_live(self, *task_ids: int) -> bool:
        """Whether any of the tasks is not done (unknown tasks count as live)."""
        for task_id in task_ids:
            task = self.plan.tasks.get(task_id)
            if task is None or task.status is not TaskStatus.DONE:
                return True
        return False

    def at(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def span(self, interval: Interval) -> str:
        start, end = interval.start.astimezone(self.zone), interval.end.astimezone(self.zone)
        end_format = "%H:%M" if start.date() == end.date() else "%Y-%m-%d %H:%M"
        return f"{start:%Y-%m-%d %H:%M} to {end.strftime(end_format)}"


def _group(
    assignments: Iterable[Assignment], key: Callable[[Assignment], int]
) -> dict[int, list[Assignment]]:
    groups: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in assignments:
        groups[key(assignment)].append(assignment)
    return groups


# -- rules on one assignment ---------------------------------------------------

_SingleRule = Callable[[_Context, Assignment, Task], Conflict | None]


def _single_conflicts(context: _Context, assignment: Assignment) -> Iterator[Conflict]:
    task = context.plan.tasks.get(assignment.task_id)
    if task is None or task.status is TaskStatus.DONE:
        return
    for rule in _SINGLE_RULES:
        conflict = rule(context, assignment, task)
        if conflict is not None:
            yield conflict


def _skill_mismatch(context: _Context, assignment: Assignment, task: Task) -> Conflict | None:
    operator = context.plan.operators.get(assignment.operator_id)
    if operator is None or qualified(
        operator.skills, skill=task.required_skill, min_level=task.min_level
    ):
        return None
    level = operator.skills.get(task.required_skill or "")
    has = "none" if level is None else str(level)
    return Conflict(
        type=ConflictType.SKILL_MISMATCH,
        task_ids=(task.id,),
        message=(
            f"Operator {operator.name} lacks skill {task.required_skill} "
            f"level {task.min_level} (has {has})"
        ),
        operator_id=operator.id,
        job_id=task.job_id,
    )


def _capability_mismatch(context: _Context, assignment: Assignment, task: Task) -> Conflict | None:
    equipment = context.plan.equipment.get(assignment.equipment_id)
    capability = task.required_capability
    if equipment is None or capable(equipment.capabilities, capability=capability):
        return None
    return Conflict(
        type=ConflictType.CAPABILITY_MISMATCH,
        task_ids=(task.id,),
        message=f"Equipment {equipment.name} lacks capability {capability} needed by {task.name}",
        equipment_id=equipment.id,
        equipment_name=equipment.name,
        job_id=task.job_id,
    )


def _duration_mismatch(context: _Context, assignment: Assignment, task: Task) -> Conflict | None:
    """A task with alternative routings must take its duration on the chosen equipment.

    Only planned work is held to it: a task on the floor takes what it takes,
    and a task without alternatives keeps the length the scheduler gave it.
    """
    if not task.alternatives or task.status not in (TaskStatus.PENDING, TaskStatus.SCHEDULED):
        return None
    wanted = task.duration_on(assignment.equipment_id)
    booked = assignment.end - assignment.start
    if booked == timedelta(minutes=wanted):
        return None
    equipment = context.plan.equipment.get(assignment.equipment_id)
    where = equipment.name if equipment is not None else f"equipment #{assignment.equipment_id}"
    return Conflict(
        type=ConflictType.DURATION_MISMATCH,
        task_ids=(task.id,),
        message=(
            f"{task.name} takes {_duration(timedelta(minutes=wanted))} on {where}, "
            f"booked for {_duration(booked)}"
        ),
        equipment_id=assignment.equipment_id,
        job_id=task.job_id,
    )


def _equipment_unavailable(
    context: _Context, assignment: Assignment, task: Task
) -> Conflict | None:
    equipment = context.plan.equipment.get(assignment.equipment_id)
    if equipment is None:
        return None
    slot = assignment.interval
    reason: str | None = None
    if equipment.status is not EquipmentStatus.AVAILABLE and slot.end > context.now:
        back = equipment.expected_back
        if back is None or slot.start < back:
            state = "down" if equipment.status is EquipmentStatus.DOWN else "in maintenance"
            until = "with no expected return" if back is None else f"until {context.at(back)}"
            reason = f"is {state} {until}"
    if reason is None:
        downtime = next((d for d in equipment.downtime if d.overlaps(slot)), None)
        if downtime is None:
            return None
        reason = f"has downtime {context.span(downtime)}"
    return Conflict(
        type=ConflictType.EQUIPMENT_UNAVAILABLE,
        task_ids=(task.id,),
        message=f"Equipment {equipment.name} {reason}, during {task.name} ({context.span(slot)})",
        equipment_id=equipment.id,
        equipment_name=equipment.name,
        job_id=task.job_id,
    )


def _outside_shift(context: _Context, assignment: Assignment, task: Task) -> Conflict | None:
    operator = context.plan.operators.get(assignment.operator_id)
    if operator is None:
        return None
    if covers(context.shifts(operator, assignment.interval), assignment.interval):
        return None
    return Conflict(
        type=ConflictType.OUTSIDE_SHIFT,
        task_ids=(task.id,),
        message=(
            f"{task.name} ({context.span(assignment.interval)}) falls outside "
            f"{operator.name}'s shifts or in their time off"
        ),
        operator_id=operator.id,
        job_id=task.job_id,
    )


def _before_release(context: _Context, assignment: Assignment, task: Task) -> Conflict | None:
    job = context.plan.jobs.get(task.job_id)
    if job is None or job.release is None or assignment.start >= job.release:
        return None
    return Conflict(
        type=ConflictType.BEFORE_RELEASE,
        task_ids=(task.id,),
        message=(
            f"{task.name} starts at {context.at(assignment.start)}, before job "
            f"{job.name} is released at {context.at(job.release)}"
        ),
        job_id=job.id,
    )


_SINGLE_RULES: tuple[_SingleRule, ...] = (
    _skill_mismatch,
    _capability_mismatch,
    _duration_mismatch,
    _equipment_unavailable,
    _outside_shift,
    _before_release,
)


# -- rules on pairs of assignments ---------------------------------------------


def _sweep_key(assignment: Assignment) -> tuple[datetime, datetime, int]:
    return assignment.start, assignment.end, assignment.task_id


def _overlapping_pairs(
    assignments: Iterable[Assignment],
) -> Iterator[tuple[Assignment, Assignment]]:
    """Overlapping pairs, each (earlier, later) by `_sweep_key`.

    Active slots are pruned as the sweep passes their end; every slot kept
    after pruning overlaps the current one, so the work is O(n log n + k).
    """
    active: list[Assignment] = []
    for current in sorted(assignments, key=_sweep_key):
        active = [a for a in active if a.end > current.start]
        for other in active:
            if other.interval.overlaps(current.interval):
                yield other, current
        active.append(current)


def _double_booked(
    context: _Context, kind: ConflictType, first: Assignment, second: Assignment
) -> Iterator[Conflict]:
    if not context.is_live(first.task_id, second.task_id):
        return
    overlap = Interval(max(first.start, second.start), min(first.end, second.end))
    names = f"{context.task_name(first.task_id)} and {context.task_name(second.task_id)}"
    task_ids = tuple(sorted((first.task_id, second.task_id)))
    if kind is ConflictType.OPERATOR_DOUBLE_BOOKED:
        operator = context.plan.operators.get(first.operator_id)
        who = operator.name if operator is not None else f"#{first.operator_id}"
        yield Conflict(
            type=kind,
            task_ids=task_ids,
            message=f"Operator {who} is booked on {names} at once ({context.span(overlap)})",
            operator_id=first.operator_id,
        )
    else:
        equipment = context.plan.equipment.get(first.equipment_id)
        what = equipment.name if equipment is not None else f"#{first.equipment_id}"
        yield Conflict(
            type=kind,
            task_ids=task_ids,
            message=f"Equipment {what} is booked for {names} at once ({context.span(overlap)})",
            equipment_id=first.equipment_id,
            equipment_name=equipment.name if equipment is not None else None,
        )


def _neighbour_overlaps(context: _Context, assignment: Assignment) -> Iterator[Conflict]:
    """Double bookings of one slot, by a direct scan instead of the sweep."""
    for other in context.plan.assignments.values():
        same_operator = other.operator_id == assignment.operator_id
        same_equipment = other.equipment_id == assignment.equipment_id
        if not (same_operator or same_equipment) or other.task_id == assignment.task_id:
            continue
        if not other.interval.overlaps(assignment.interval):
            continue
        first, second = sorted((assignment, other), key=_sweep_key)
        if same_operator:
            yield from _double_booked(context, ConflictType.OPERATOR_DOUBLE_BOOKED, first, second)
        if same_equipment:
            yield from _double_booked(context, ConflictType.EQUIPMENT_DOUBLE_BOOKED, first, second)


def _predecessor_conflicts(context: _Context, assignment: Assignment) -> Iterator[Conflict]:
    task = context.plan.tasks.get(assignment.task_id)
    if task is None:
        return
    for predecessor_id in task.predecessors:
        predecessor = context.plan.assignments.get(predecessor_id)
        if predecessor is not None:
            yield from _dependency(context, assignment, predecessor)


def _dependency(
    context: _Context, successor: Assignment, predecessor: Assignment
) -> Iterator[Conflict]:
    """Finish-to-start: the successor may not start before the predecessor ends."""
    if successor.start >= predecessor.end:
        return
    if not context.is_live(successor.task_id, predecessor.task_id):
        return
    task = context.plan.tasks.get(successor.task_id)
    yield Conflict(
        type=ConflictType.DEPENDENCY_VIOLATION,
        task_ids=tuple(sorted((successor.task_id, predecessor.task_id))),
        message=(
            f"{context.task_name(successor.task_id)} starts at {context.at(successor.start)}, "
            f"before its predecessor {context.task_name(predecessor.task_id)} ends at "
            f"{context.at(predecessor.end)}"
        ),
        job_id=task.job_id if task is not None else None,
    )


def _successors(plan: Plan, task_id: int) -> Iterator[Task]:
    return (task for task in plan.tasks.values() if task_id in task.predecessors)


# -- rules on a job ------------------------------------------------------------


def _assignments_by_job(plan: Plan) -> dict[int, list[Assignment]]:
    known = (a for a in plan.assignments.values() if a.task_id in plan.tasks)
    return _group(known, lambda a: plan.tasks[a.task_id].job_id)


def _late(context: _Context, job_id: int, assignments: Sequence[Assignment]) -> Iterator[Conflict]:
    """A warning on the job's last-ending task when it ends after the due time."""
    job = context.plan.jobs.get(job_id)
    if job is None or job.due is None or not assignments:
        return
    last = max(assignments, key=lambda a: (a.end, a.task_id))
    # A job whose assigned tasks are all done is history, even if it was late.
    if last.end <= job.due or not context.is_live(*(a.task_id for a in assignments)):
        return
    yield Conflict(
        type=ConflictType.LATE,
        task_ids=(last.task_id,),
        message=(
            f"Job {job.name}{f' ({job.reference})' if job.reference else ''} ends at "
            f"{context.at(last.end)}, "
            f"{_duration(last.end - job.due)} after its due time {context.at(job.due)}"
        ),
        job_id=job.id,
    )


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min"]
    if minutes == 0 and (days or hours):
        parts.pop()
    return " ".join(part for part in parts if part)


def ordered(conflicts: Iterable[Conflict]) -> list[Conflict]:
    return sorted(conflicts, key=lambda c: (c.type.value, c.task_ids, c.message))
