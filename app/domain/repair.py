"""Repair: the fewest changes that take a disruption out of the live plan.

    repaired = repair(plan, MachineDown(equipment_id=7, until=back), now=now)
    repaired.slots        # task id -> its new slot (None: back to the tray); changed tasks only

Three disruptions: a machine down (`MachineDown`, until it is back, or for
good when nobody knows), an operator away (`OperatorAbsent`), a task running
late (`TaskLate`, its slot now ends later). What must move is what the
disruption hits: the open tasks booked on the machine or with the operator in
that window, or those the late task now runs into on its machine or its
operator. Each goes to the earliest slot, no earlier than it was booked, that
breaks no rule (capable machine, qualified operator in shift, nothing else
booked there, machine not down, predecessors done, job released), preferring
to keep its operator and machine; its successors then follow if they would
start before it ends, and theirs in turn. Nothing else moves. A task for which
no slot exists within `search_days` goes back to the tray rather than onto a
slot that breaks a rule.

Why a greedy right-shift and not CP-SAT on a neighbourhood: the scheduler
wants the plan as it was, minus the disruption, within seconds. Placing each
hit task into a gap leaves every other slot alone by construction (a solver
needs churn modelled to do the same and a time grid to do it at all), checks
every hard rule at each placement (so the draft has no error conflicts unless
none can be avoided), is deterministic, and costs milliseconds per moved task
however big the plant. Better sequences are the whole-plant optimizer's job;
a repair is first aid.

Pure: a `Plan`, the disruption and `now` in, slots out; no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from heapq import heappop, heappush

from app.domain.calendar import availability
from app.domain.plan import Assignment, Equipment, EquipmentStatus, Interval, Plan, Task, TaskStatus
from app.domain.validation import capable, qualified

__all__ = [
    "Disruption",
    "MachineDown",
    "OperatorAbsent",
    "Repair",
    "TaskLate",
    "repair",
]

# Slots start on this grid (the board's and the optimizer's 5 minutes).
GRID = timedelta(minutes=5)
SEARCH_DAYS = 14
# Once a slot is found, at most this many more (machine, operator) pairs are tried for
# a better one: each pair's bound is only its resources' own earliest starts, and
# trying all of them costs seconds on a large plant for minutes of lateness.
PAIRS = 40
# A task placed more often than this in one repair is on a cycle of predecessors.
MAX_PLACEMENTS = 25
_OPEN = frozenset({TaskStatus.PENDING, TaskStatus.SCHEDULED})


@dataclass(frozen=True, slots=True)
class MachineDown:
    """The machine cannot run from `start` (None: now) until `until` (None: nobody knows when)."""

    equipment_id: int
    until: datetime | None = None
    start: datetime | None = None


@dataclass(frozen=True, slots=True)
class OperatorAbsent:
    operator_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class TaskLate:
    """A task (usually in progress) will end at `expected_end`, later than booked."""

    task_id: int
    expected_end: datetime


Disruption = MachineDown | OperatorAbsent | TaskLate


@dataclass(frozen=True, slots=True)
class Repair:
    # Each task whose slot changes: the new slot, or None (back to the tray, no slot found).
    slots: dict[int, Assignment | None]
    # The tasks the disruption itself hit (the rest of `slots` are their successors).
    hit: tuple[int, ...]
    # Hit, but started or done: left where they are (work on the floor is not re-planned).
    left: tuple[int, ...]


def repair(
    plan: Plan, disruption: Disruption, *, now: datetime, search_days: int = SEARCH_DAYS
) -> Repair:
    """The minimal-change repair of `plan` after `disruption` (see the module's top)."""
    run = _Run(plan, now=_on_grid(now), search=timedelta(days=search_days))
    hit, left = run.block(disruption)
    run.place_all(hit)
    return Repair(slots=run.changed(), hit=tuple(sorted(hit)), left=tuple(sorted(left)))


# --- bookings --------------------------------------------------------------------------------


@dataclass
class _Bookings:
    """One resource's busy intervals, sorted by start (overlaps allowed: a plan may have them)."""

    items: list[tuple[datetime, datetime, int]] = field(default_factory=list)
    longest: timedelta = timedelta(0)

    def add(self, start: datetime, end: datetime, task_id: int) -> None:
        insort(self.items, (start, end, task_id))
        self.longest = max(self.longest, end - start)

    def remove(self, start: datetime, end: datetime, task_id: int) -> None:
        index = bisect_left(self.items, (start, end, task_id))
        if index < len(self.items) and self.items[index] == (start, end, task_id):
            del self.items[index]

    def blocked_until(self, start: datetime, end: datetime) -> datetime | None:
        """The latest end of what overlaps [start, end), or None when it is free."""
        index = bisect_left(self.items, (end,))
        latest: datetime | None = None
        while index > 0:
            index -= 1
            begin, finish, _ = self.items[index]
            if begin < start - self.longest:
                break
            if finish > start and (latest is None or finish > latest):
                latest = finish
        return latest


# --- the run ---------------------------------------------------------------------------------


class _Run:
    def __init__(self, plan: Plan, *, now: datetime, search: timedelta) -> None:
        self.plan = plan
        self.now = now
        self.search = search
        self.slots: dict[int, Assignment | None] = dict(plan.assignments)
        self.machines: dict[int, _Bookings] = defaultdict(_Bookings)
        self.operators: dict[int, _Bookings] = defaultdict(_Bookings)
        self.successors: dict[int, list[int]] = defaultdict(list)
        self._shifts: dict[int, tuple[datetime, list[Interval]]] = {}
        for task in plan.tasks.values():
            for predecessor in task.predecessors:
                self.successors[predecessor].append(task.id)
        for slot in plan.assignments.values():
            self._book(slot)
        for machine in plan.equipment.values():
            for blocked in _machine_blocked(machine, now):
                self.machines[machine.id].add(blocked.start, blocked.end, 0)

    # The disruption's own effect on the resources, and the tasks it hits.

    def block(self, disruption: Disruption) -> tuple[set[int], set[int]]:
        if isinstance(disruption, MachineDown):
            until = disruption.until or self.now + timedelta(days=3650)
            window = Interval(max(disruption.start or self.now, self.now), until)
            self.machines[disruption.equipment_id].add(window.start, window.end, 0)
            return self._hit(lambda s: s.equipment_id == disruption.equipment_id, window)
        if isinstance(disruption, OperatorAbsent):
            window = Interval(max(disruption.start, self.now), disruption.end)
            self.operators[disruption.operator_id].add(window.start, window.end, 0)
            return self._hit(lambda s: s.operator_id == disruption.operator_id, window)
        return self._late(disruption)

    def _hit(self, on: Callable[[Assignment], bool], window: Interval) -> tuple[set[int], set[int]]:
        hit: set[int] = set()
        left: set[int] = set()
        for slot in self.plan.assignments.values():
            task = self.plan.tasks.get(slot.task_id)
            if task is None or not on(slot) or not slot.interval.overlaps(window):
                continue
            if task.status in _OPEN:
                hit.add(task.id)
            elif task.status is not TaskStatus.DONE:
                left.add(task.id)
        return hit, left

    def _late(self, late: TaskLate) -> tuple[set[int], set[int]]:
        slot = self.plan.assignments.get(late.task_id)
        if slot is None or late.expected_end <= slot.end:
            return set(), set()
        longer = Assignment(
            slot.task_id, slot.operator_id, slot.equipment_id, slot.start, late.expected_end
        )
        self._unbook(slot)
        self._book(longer)
        self.slots[slot.task_id] = longer
        extra = Interval(slot.end, late.expected_end)
        hit, left = self._hit(
            lambda s: (
                s.task_id != slot.task_id
                and (s.equipment_id == slot.equipment_id or s.operator_id == slot.operator_id)
            ),
            extra,
        )
        hit |= {s for s in self._open_successors(slot.task_id) if self._starts_before(s, extra.end)}
        return hit, left

    # Placing what must move, then what follows it.

    def place_all(self, hit: Iterable[int]) -> None:
        queue: list[tuple[datetime, int]] = []
        for task_id in hit:
            heappush(queue, (self._booked_start(task_id), task_id))
        placed: dict[int, int] = defaultdict(int)
        while queue:
            _, task_id = heappop(queue)
            placed[task_id] += 1
            if placed[task_id] > MAX_PLACEMENTS:
                # Only a cycle of predecessors pushes a task this often: it cannot be
                # placed after itself, so it goes to the tray.
                self._to_tray(task_id)
                continue
            new = self._place(self.plan.tasks[task_id])
            if new is None:
                continue
            for successor in self._open_successors(task_id):
                if self._starts_before(successor, new.end):
                    heappush(queue, (new.end, successor))

    def _to_tray(self, task_id: int) -> None:
        slot = self.slots.get(task_id)
        if slot is not None:
            self._unbook(slot)
        self.slots[task_id] = None

    def _place(self, task: Task) -> Assignment | None:
        old = self.slots.get(task.id)
        if old is not None:
            self._unbook(old)
        earliest = self._earliest(task, old)
        duration = _duration(task)
        best: tuple[tuple[datetime, int, int, int], Assignment] | None = None
        tried_after_best = 0
        for bound, changes, machine, operator in self._candidates(task, old, earliest):
            if best is not None:
                tried_after_best += 1
                if (bound + duration, changes) >= best[0][:2] or tried_after_best > PAIRS:
                    break
            start = self._fit(duration, machine, operator, bound)
            if start is None:
                continue
            slot = Assignment(task.id, operator, machine, start, start + duration)
            key = (slot.end, changes, machine, operator)
            if best is None or key < best[0]:
                best = (key, slot)
        found = best[1] if best is not None else None
        self.slots[task.id] = found
        if found is not None:
            self._book(found)
        return found

    def _earliest(self, task: Task, old: Assignment | None) -> datetime:
        bounds = [self.now]
        if old is not None:
            bounds.append(old.start)
        job = self.plan.jobs.get(task.job_id)
        if job is not None and job.release is not None:
            bounds.append(job.release)
        for predecessor in task.predecessors:
            slot = self.slots.get(predecessor)
            if slot is not None:
                bounds.append(slot.end)
        # Not rounded: a task that can keep its time keeps it to the minute (now is on the grid).
        return max(bounds)

    def _candidates(
        self, task: Task, old: Assignment | None, earliest: datetime
    ) -> list[tuple[datetime, int, int, int]]:
        """(no start before, changes, machine, operator) for every pair that may run the task,
        best first: each resource's own earliest start bounds the pair's."""
        duration = _duration(task)
        machines: dict[int, datetime] = {}
        for machine in _capable(self.plan.equipment.values(), task):
            start = self._fit(duration, machine.id, None, earliest)
            if start is not None:
                machines[machine.id] = start
        operators: dict[int, datetime] = {}
        for operator in self.plan.operators.values():
            if not qualified(operator.skills, skill=task.required_skill, min_level=task.min_level):
                continue
            start = self._fit(duration, None, operator.id, earliest)
            if start is not None:
                operators[operator.id] = start
        booked = (old.equipment_id, old.operator_id) if old is not None else (None, None)
        return sorted(
            (
                max(machine_start, operator_start),
                int(machine != booked[0]) + int(operator != booked[1]),
                machine,
                operator,
            )
            for machine, machine_start in machines.items()
            for operator, operator_start in operators.items()
        )

    def _fit(
        self, duration: timedelta, machine: int | None, operator: int | None, earliest: datetime
    ) -> datetime | None:
        """The earliest start from `earliest` where the machine and the operator (each
        optional) are both free, and the operator on shift."""
        limit = earliest + self.search
        shifts = None if operator is None else self._shifts_of(operator, limit + duration)
        start = earliest
        while start < limit:
            end = start + duration
            blocked = None if machine is None else self.machines[machine].blocked_until(start, end)
            if operator is not None:
                blocked = _later(blocked, self.operators[operator].blocked_until(start, end))
            if blocked is not None:
                start = _on_grid(blocked)
                continue
            if shifts is not None:
                shift_start = _shift_start(shifts, start, end)
                if shift_start is None:
                    return None
                if shift_start > start:
                    start = _on_grid(shift_start)
                    continue
            return start
        return None

    def _shifts_of(self, operator_id: int, end: datetime) -> list[Interval]:
        """The operator's working time from a day before now until past `end` (kept)."""
        known = self._shifts.get(operator_id)
        if known is None or known[0] < end:
            until = end + self.search
            horizon = Interval(self.now - timedelta(days=1), until)
            known = (
                until,
                availability(self.plan.operators[operator_id], self.plan.timezone, horizon),
            )
            self._shifts[operator_id] = known
        return known[1]

    # Small pieces.

    def _open_successors(self, task_id: int) -> list[int]:
        return [
            s
            for s in self.successors.get(task_id, ())
            if self.plan.tasks[s].status in _OPEN and self.slots.get(s) is not None
        ]

    def _starts_before(self, task_id: int, moment: datetime) -> bool:
        slot = self.slots.get(task_id)
        return slot is not None and slot.start < moment

    def _booked_start(self, task_id: int) -> datetime:
        slot = self.slots.get(task_id)
        return slot.start if slot is not None else self.now

    def _book(self, slot: Assignment) -> None:
        self.machines[slot.equipment_id].add(slot.start, slot.end, slot.task_id)
        self.operators[slot.operator_id].add(slot.start, slot.end, slot.task_id)

    def _unbook(self, slot: Assignment) -> None:
        self.machines[slot.equipment_id].remove(slot.start, slot.end, slot.task_id)
        self.operators[slot.operator_id].remove(slot.start, slot.end, slot.task_id)

    def changed(self) -> dict[int, Assignment | None]:
        return {
            task_id: slot
            for task_id, slot in self.slots.items()
            if self.plan.assignments.get(task_id) != slot
        }


def _capable(machines: Iterable[Equipment], task: Task) -> list[Equipment]:
    return [m for m in machines if capable(m.capabilities, capability=task.required_capability)]


def _machine_blocked(machine: Equipment, now: datetime) -> Iterator[Interval]:
    """When the plan already says the machine cannot run: its status and its downtime."""
    if machine.status is not EquipmentStatus.AVAILABLE:
        back = machine.expected_back or now + timedelta(days=3650)
        if back > now:
            yield Interval(now, back)
    yield from machine.downtime


def _shift_start(shifts: Sequence[Interval], start: datetime, end: datetime) -> datetime | None:
    """`start` if one shift covers [start, end), else the start of the next shift long enough."""
    duration = end - start
    index = max(0, bisect_left(shifts, (start,)) - 1)
    for shift in shifts[index:]:
        begin = max(shift.start, start)
        if shift.end - begin >= duration:
            return begin
    return None


def _duration(task: Task) -> timedelta:
    return timedelta(minutes=task.duration_minutes)


def _later(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)


def _on_grid(moment: datetime) -> datetime:
    """`moment` rounded up to the 5-minute grid (in UTC, where every zone's 5 minutes agree)."""
    if moment.microsecond == 0 and moment.second == 0 and moment.minute % 5 == 0:
        return moment
    base = moment.replace(second=0, microsecond=0)
    extra = (base.minute % 5) * 60 + (moment - base).total_seconds()
    if extra == 0:
        return moment
    return base - timedelta(minutes=base.minute % 5) + GRID
