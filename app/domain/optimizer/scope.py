"""What an optimizer run works with: the time grid, which tasks move, what
each resource cannot be used for, and each task's candidates and time bounds.

Time is whole *units* (`TimeGrid`, 1 or 5 minutes) from `origin`, `now`
rounded up to the grid; nothing new starts before it. Rounding is always
conservative, so a solution on the grid is valid to the minute: durations,
downtime and kept slots round outwards, shifts round inwards.

A resource's *blocks* are what the model puts in its NoOverlap as fixed
intervals: the gaps between an operator's merged availability windows (so a
task lies inside one window, as validation's `outside_shift` requires),
equipment downtime and down/maintenance status until expected back (to the
horizon's end when unknown), and the slots of locked tasks. Locked tasks
(in progress, paused, done, pinned, or of a closed job) keep their slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.domain.calendar import availability
from app.domain.critical_path import find_cycle
from app.domain.plan import (
    Assignment,
    EquipmentStatus,
    Interval,
    JobStatus,
    Plan,
    Task,
    TaskStatus,
)
from app.domain.validation import capable, qualified

__all__ = ["Candidates", "Scope", "Span", "TimeGrid", "scope_of"]

_OPEN = frozenset({TaskStatus.PENDING, TaskStatus.SCHEDULED})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WEEK_MINUTES = 7 * 24 * 60
_MAX_HORIZON = timedelta(days=366)

Span = tuple[int, int]
# Qualified operators and capable equipment, each sorted by id.
Candidates = tuple[tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class TimeGrid:
    origin: datetime
    unit_minutes: int

    @classmethod
    def starting_at(cls, now: datetime, unit_minutes: int) -> TimeGrid:
        """The grid whose unit 0 is `now` rounded up to a multiple of the unit."""
        step = timedelta(minutes=unit_minutes)
        return cls(_EPOCH - ((_EPOCH - now) // step) * step, unit_minutes)

    def floor(self, moment: datetime) -> int:
        return (moment - self.origin) // timedelta(minutes=self.unit_minutes)

    def ceil(self, moment: datetime) -> int:
        return -((self.origin - moment) // timedelta(minutes=self.unit_minutes))

    def at(self, units: int) -> datetime:
        return self.origin + timedelta(minutes=units * self.unit_minutes)

    def units(self, minutes: int) -> int:
        # A task always takes at least one unit, so it occupies its resources.
        return max(1, -(-minutes // self.unit_minutes))


@dataclass(frozen=True, slots=True)
class Scope:
    grid: TimeGrid
    horizon: int
    # Slots kept as they are that still occupy a resource after the origin.
    locked: Mapping[int, Assignment]
    operator_blocks: Mapping[int, list[Span]]
    equipment_blocks: Mapping[int, list[Span]]
    # The open tasks to place, with their candidates and (earliest start,
    # latest end); the ones left out, with the reason.
    candidates: Mapping[int, Candidates]
    bounds: Mapping[int, Span]
    unplaceable: Mapping[int, str]


def scope_of(
    plan: Plan,
    *,
    now: datetime,
    time_unit_minutes: int,
    horizon_days: float | None,
    pinned: frozenset[int],
) -> Scope:
    grid = TimeGrid.starting_at(now, time_unit_minutes)
    open_ids, locked = _split(plan, pinned, grid)
    horizon = _horizon(plan, open_ids, locked, grid, horizon_days)
    end = grid.at(horizon)
    windows = {
        o.id: _windows(availability(o, plan.timezone, Interval(grid.origin, end)), grid)
        for o in plan.operators.values()
    }
    operator_blocks = {
        oid: _merge([*_gaps(spans, horizon), *_locked_spans(locked, grid, horizon, oid, True)])
        for oid, spans in windows.items()
    }
    equipment_blocks = {
        eid: _merge([*_equipment_spans(plan, eid, grid, horizon),
                     *_locked_spans(locked, grid, horizon, eid, False)])
        for eid in plan.equipment
    }  # fmt: skip
    unplaceable: dict[int, str] = {}
    candidates = _candidates(plan, open_ids, grid, windows, equipment_blocks, horizon, unplaceable)
    _leave_out_cycles(plan, candidates, unplaceable)
    bounds = _bounds(plan, candidates, grid, horizon, unplaceable)
    return Scope(
        grid, horizon, locked, operator_blocks, equipment_blocks, candidates, bounds, unplaceable
    )


# -- what moves ------------------------------------------------------------------


def _split(
    plan: Plan, pinned: frozenset[int], grid: TimeGrid
) -> tuple[list[int], dict[int, Assignment]]:
    """Open task ids to place, and the kept slots that reach past the origin."""
    open_ids: list[int] = []
    locked: dict[int, Assignment] = {}
    for task in plan.tasks.values():
        job = plan.jobs.get(task.job_id)
        closed = job is not None and job.status is not JobStatus.OPEN
        if task.status in _OPEN and task.id not in pinned and not closed:
            open_ids.append(task.id)
        elif (slot := plan.assignments.get(task.id)) is not None and grid.ceil(slot.end) > 0:
            locked[task.id] = slot
    # Slots of tasks the plan does not hold still occupy their resources.
    for task_id, slot in plan.assignments.items():
        if task_id not in plan.tasks and grid.ceil(slot.end) > 0:
            locked[task_id] = slot
    return sorted(open_ids), locked


def _horizon(
    plan: Plan,
    open_ids: Sequence[int],
    locked: Mapping[int, Assignment],
    grid: TimeGrid,
    horizon_days: float | None,
) -> int:
    if horizon_days is not None:
        return max(1, grid.floor(grid.origin + timedelta(days=horizon_days)))
    # After every release of their jobs, kept or live slot and known downtime, the
    # open tasks fit shared out side by side (see below), stretched by the
    # least available operator's share of the week, plus a week to find a
    # long enough shift. An estimate: what does not fit is left out.
    events = [grid.origin, *(a.end for a in locked.values())]
    # Never before the live plan's own slots of the open tasks end: it stays possible.
    events += [a.end for t in open_ids if (a := plan.assignments.get(t)) is not None]
    jobs = {plan.tasks[t].job_id for t in open_ids}
    events += [j.release for j in plan.jobs.values() if j.release is not None and j.id in jobs]
    for equipment in plan.equipment.values():
        events += [d.end for d in equipment.downtime]
        if equipment.expected_back is not None:
            events.append(equipment.expected_back)
    base = max(0, grid.ceil(min(max(events), grid.origin + _MAX_HORIZON)))
    work = sum(grid.units(plan.tasks[t].duration_minutes) for t in open_ids)
    probe = Interval(grid.origin, grid.origin + timedelta(days=28))
    shares = [
        sum((i.end - i.start for i in availability(o, plan.timezone, probe)), timedelta())
        / (probe.end - probe.start)
        for o in plan.operators.values()
    ]
    share = min((s for s in shares if s > 0), default=1.0)
    # Round the clock and never down (an imported job shop): the classic
    # sum of durations, tight enough not to slow the solver.
    longest = grid.floor(grid.origin + _MAX_HORIZON)
    if share >= 1.0 and not any(e.downtime for e in plan.equipment.values()):
        return max(1, min(base + work, longest))
    # Shared out over the resources that can run side by side, but never
    # shorter than the longest job's own open tasks.
    side_by_side = max(1, min(len(plan.operators), len(plan.equipment)))
    chains: dict[int, int] = {}
    for t in open_ids:
        task = plan.tasks[t]
        chains[task.job_id] = chains.get(task.job_id, 0) + grid.units(task.duration_minutes)
    spread = max(-(-work // side_by_side), max(chains.values(), default=0))
    slack = grid.units(_WEEK_MINUTES)
    return min(base + int(spread / share) + slack, longest)


# -- where it can go -------------------------------------------------------------


def _windows(intervals: Iterable[Interval], grid: TimeGrid) -> list[Span]:
    spans = ((grid.ceil(i.start), grid.floor(i.end)) for i in intervals)
    return [(s, e) for s, e in spans if s < e]


def _gaps(windows: Sequence[Span], horizon: int) -> list[Span]:
    gaps: list[Span] = []
    cursor = 0
    for start, end in windows:
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < horizon:
        gaps.append((cursor, horizon))
    return gaps


def _merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, merged, non-empty: overlapping fixed intervals would make NoOverlap infeasible."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _clip(start: int, end: int, horizon: int) -> Span:
    return max(start, 0), min(end, horizon)


def _locked_spans(
    locked: Mapping[int, Assignment], grid: TimeGrid, horizon: int, rid: int, operator: bool
) -> Iterable[Span]:
    for slot in locked.values():
        if (slot.operator_id if operator else slot.equipment_id) == rid:
            yield _clip(grid.floor(slot.start), grid.ceil(slot.end), horizon)


def _equipment_spans(plan: Plan, eid: int, grid: TimeGrid, horizon: int) -> Iterable[Span]:
    equipment = plan.equipment[eid]
    for downtime in equipment.downtime:
        yield _clip(grid.floor(downtime.start), grid.ceil(downtime.end), horizon)
    if equipment.status is not EquipmentStatus.AVAILABLE:
        back = equipment.expected_back
        yield 0, horizon if back is None else min(max(grid.ceil(back), 0), horizon)


def _longest(spans: Sequence[Span]) -> int:
    return max((end - start for start, end in spans), default=0)


def _candidates(
    plan: Plan,
    open_ids: Sequence[int],
    grid: TimeGrid,
    windows: Mapping[int, list[Span]],
    equipment_blocks: Mapping[int, list[Span]],
    horizon: int,
    unplaceable: dict[int, str],
) -> dict[int, Candidates]:
    """Qualified operators and capable equipment with room for each task, by task id.

    Room for the task's time on each machine (alternative routings), and an
    operator with room for its shortest time on one of those machines. Worked
    out once per kind of task (skill, level, capability, durations): a plant
    has thousands of tasks but a few dozen kinds.
    """
    # The longest stretch each resource is free, to tell whether a task fits at all.
    operator_room = {o.id: (o, _longest(windows[o.id])) for o in plan.operators.values()}
    equipment_room = {
        e.id: (e, _longest(_gaps(equipment_blocks[e.id], horizon))) for e in plan.equipment.values()
    }
    operators_for: dict[tuple[str | None, int, int], tuple[int, ...]] = {}
    equipment_for: dict[tuple[object, ...], tuple[int, ...]] = {}
    found: dict[int, Candidates] = {}
    for task_id in open_ids:
        task = plan.tasks[task_id]
        duration = grid.units(task.duration_minutes)
        capability_key = (task.required_capability, duration, task.alternatives)
        if (equipment := equipment_for.get(capability_key)) is None:
            equipment = equipment_for[capability_key] = tuple(
                eid
                for eid, (e, room) in sorted(equipment_room.items())
                if capable(e.capabilities, capability=task.required_capability)
                and room >= grid.units(task.duration_on(eid))
            )
        shortest = shortest_units(task, equipment, grid)
        skill_key = (task.required_skill, task.min_level, shortest)
        if (operators := operators_for.get(skill_key)) is None:
            operators = operators_for[skill_key] = tuple(
                oid
                for oid, (o, room) in sorted(operator_room.items())
                if qualified(o.skills, skill=task.required_skill, min_level=task.min_level)
                and room >= shortest
            )
        if not operators:
            skill = task.required_skill or "any skill"
            unplaceable[task_id] = (
                f"no operator with {skill} (level {task.min_level}) has a shift long enough"
            )
        elif not equipment:
            capability = task.required_capability or "any capability"
            unplaceable[task_id] = f"no equipment with {capability} is free long enough"
        else:
            found[task_id] = (operators, equipment)
    return found


def shortest_units(task: Task, equipment: Iterable[int], grid: TimeGrid) -> int:
    """The task's shortest time on any of `equipment`, in grid units (its own
    duration when there is none to choose from)."""
    if not task.alternatives:  # the same everywhere (most tasks)
        return grid.units(task.duration_minutes)
    return min(
        (grid.units(task.duration_on(e)) for e in equipment),
        default=grid.units(task.duration_minutes),
    )


def _leave_out_cycles(
    plan: Plan, candidates: dict[int, Candidates], unplaceable: dict[int, str]
) -> None:
    while (cycle := find_cycle(plan.tasks[t] for t in candidates)) is not None:
        loop = " → ".join(str(t) for t in (*cycle, cycle[0]))
        for task_id in cycle:
            unplaceable[task_id] = f"in a dependency cycle: {loop}"
            del candidates[task_id]


def _bounds(
    plan: Plan,
    candidates: dict[int, Candidates],
    grid: TimeGrid,
    horizon: int,
    unplaceable: dict[int, str],
) -> dict[int, Span]:
    """Earliest start and latest end per task, from releases and kept neighbours.

    A task that cannot make it, or waits for one that was left out, is left
    out too (and removed from `candidates`), until nothing changes.
    """
    successors: dict[int, list[Task]] = {}
    for task in plan.tasks.values():
        for predecessor in task.predecessors:
            successors.setdefault(predecessor, []).append(task)
    bounds: dict[int, Span] = {}
    for task_id in candidates:
        task = plan.tasks[task_id]
        job = plan.jobs.get(task.job_id)
        earliest = 0 if job is None or job.release is None else max(0, grid.ceil(job.release))
        for p in task.predecessors:
            if p not in candidates and (slot := plan.assignments.get(p)) is not None:
                earliest = max(earliest, grid.ceil(slot.end))
        latest = horizon
        for successor in successors.get(task_id, ()):
            # A kept successor (even one in the past) must start after this ends.
            kept = successor.id not in candidates and successor.id not in unplaceable
            if kept and (slot := plan.assignments.get(successor.id)) is not None:
                latest = min(latest, grid.floor(slot.start))
        bounds[task_id] = (earliest, latest)
    changed = True
    while changed:
        changed = False
        for task_id in list(candidates):
            task = plan.tasks[task_id]
            earliest, latest = bounds[task_id]
            reason = None
            if latest - earliest < shortest_units(task, candidates[task_id][1], grid):
                reason = "no room between its release, kept predecessors and successors"
            elif left := [p for p in task.predecessors if p in unplaceable]:
                reason = f"waits for task {left[0]}, which cannot be placed"
            if reason is not None:
                unplaceable[task_id] = reason
                del candidates[task_id], bounds[task_id]
                changed = True
    return bounds
