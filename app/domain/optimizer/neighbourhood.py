"""One step of the large-neighbourhood search: a few tasks freed, the rest fixed.

`resolve` builds a small CP-SAT model of the freed tasks around the current
plan (`Slots`): every other task's slot is a fixed interval on its operator
and machine, and bounds a freed neighbour's start or end. Like the whole
model (`optimizer.model`) and PyJobShop's, a task with several candidates
has one optional interval per candidate and exactly one of them present;
under alternative routings each equipment's interval has that equipment's
duration, and the task's size follows the one chosen.

The objective is the search's, lexicographic by weights: the weighted
lateness of the jobs the freed tasks belong to (a job's other tasks keep
their ends, so this is the whole plan's lateness less a constant), then the
freed tasks that leave their live slot (churn), then the neighbourhood's
last end. Hinted with the current plan, the solver's answer is never worse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model

from app.domain.optimizer.model import ModelTask, ScheduleModel

__all__ = ["Frame", "Slot", "Slots", "end_of", "resolve"]

# A task's place on the grid: (start unit, operator id, equipment id).
Slot = tuple[int, int, int]
Slots = dict[int, Slot]


@dataclass(frozen=True, slots=True)
class Frame:
    """The whole model's tasks with what the search looks up often."""

    model: ScheduleModel
    # Successors within the model, and the model's tasks of each job.
    successors: Mapping[int, list[int]]
    job_tasks: Mapping[int, list[int]]
    # Jobs the live plan had complete: a neighbourhood never makes one later
    # than it is in the current plan (new work fits around what was promised).
    promised_jobs: frozenset[int] = frozenset()


@dataclass(slots=True)
class _Free:
    start: Any
    # The end: `start` plus the duration on the equipment chosen.
    end: Any
    operators: dict[int, Any]
    equipment: dict[int, Any]


def end_of(model: ScheduleModel, slots: Slots, task_id: int) -> int:
    """When a task ends in `slots`: its duration on the equipment it has there."""
    s, _, e = slots[task_id]
    return s + model.tasks[task_id].duration_on(e)


def resolve(
    frame: Frame,
    slots: Slots,
    free: set[int],
    *,
    seconds: float,
    workers: int,
    seed: int,
    stop: Callable[[cp_model.CpSolver], None] | None = None,
) -> Slots | None:
    """The freed tasks' best slots found in `seconds`, or None when the solver
    found none (it always can: the current slots are a solution)."""
    model = frame.model
    m = cp_model.CpModel()
    chosen: dict[int, _Free] = {}
    by_resource: dict[tuple[str, int], list[Any]] = {}
    ceiling = _ceiling(frame, slots, free)
    for task_id in sorted(free):
        t = model.tasks[task_id]
        low, high = _room(frame, slots, free, task_id, ceiling)
        s, o, e = slots[task_id]
        start, interval = _interval(m, t, task_id, (low, high), (s, e))
        operators = _choose(
            m, interval, t.operators, ("o", task_id), by_resource, varying=bool(t.durations)
        )
        equipment = _choose(
            m, interval, t.equipment, ("e", task_id), by_resource, t.durations or None
        )
        chosen[task_id] = _Free(start, interval.end_expr(), operators, equipment)
        m.add_hint(start, s)
        for rid, literal in operators.items():
            m.add_hint(literal, int(rid == o))
        for rid, literal in equipment.items():
            m.add_hint(literal, int(rid == e))
    _fix_the_rest(frame, slots, free, by_resource, m)
    for task_id, f in chosen.items():
        for p in model.tasks[task_id].task.predecessors:
            if p in chosen:
                m.add(f.start >= chosen[p].end)
    lateness = _lateness(frame, slots, free, chosen, m, ceiling)
    churn = _churn(model, slots, chosen, m)
    last = m.new_int_var(0, ceiling, "last")
    for f in chosen.values():
        m.add(last >= f.end)
    m.add_hint(last, max(end_of(model, slots, t) for t in chosen))
    # Lexicographic by weights: one churn unit outweighs any last end, one
    # lateness unit any churn.
    churn_weight = ceiling + 1
    lateness_weight = churn_weight * (len(free) + 1)
    m.minimize(lateness_weight * lateness + churn_weight * churn + last)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, seconds)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed % (2**31)
    # Probing thousands of optional intervals takes the whole step's time.
    solver.parameters.cp_model_probing_level = 0
    if stop is not None:
        stop(solver)
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return {
        task_id: (
            solver.value(f.start),
            _picked(f.operators, solver, slots[task_id][1]),
            _picked(f.equipment, solver, slots[task_id][2]),
        )
        for task_id, f in chosen.items()
    }


def _ceiling(frame: Frame, slots: Slots, free: set[int]) -> int:
    """The latest any freed task may end: as far past their current last end as
    they span now. Without it the model reaches to the horizon, with every
    shift and slot on the way as a fixed interval, and solves too slowly."""
    model = frame.model
    first = min(slots[t][0] for t in free)
    last = max(end_of(model, slots, t) for t in free)
    return last + max(last - first, model.grid.units(8 * 60))


def _room(
    frame: Frame, slots: Slots, free: set[int], task_id: int, ceiling: int
) -> tuple[int, int]:
    """Earliest start and latest end of a freed task, its fixed neighbours included."""
    model = frame.model
    t = model.tasks[task_id]
    low, high = t.earliest, min(t.latest, ceiling)
    for p in t.task.predecessors:
        if p in slots and p not in free:
            low = max(low, end_of(model, slots, p))
    for s in frame.successors.get(task_id, ()):
        if s not in free:
            high = min(high, slots[s][0])
    return low, high


def _interval(
    m: cp_model.CpModel, t: ModelTask, task_id: int, room: tuple[int, int], now: tuple[int, int]
) -> tuple[Any, Any]:
    """A freed task's start and interval, ending by `high`: of a size that
    follows the equipment chosen under alternative routings (`_choose`)."""
    (low, high), (hinted_start, hinted_on) = room, now
    shortest = min([t.duration, *t.durations.values()])
    start = m.new_int_var(low, high - shortest, f"s{task_id}")
    if not t.durations:
        return start, m.new_fixed_size_interval_var(start, t.duration, f"i{task_id}")
    size = m.new_int_var(shortest, max(t.durations.values()), f"d{task_id}")
    end = m.new_int_var(low + shortest, high, f"f{task_id}")
    # With the start's, a whole hint.
    m.add_hint(size, t.duration_on(hinted_on))
    m.add_hint(end, hinted_start + t.duration_on(hinted_on))
    return start, m.new_interval_var(start, size, end, f"i{task_id}")


def _choose(
    m: cp_model.CpModel,
    interval: Any,
    candidates: tuple[int, ...],
    key: tuple[str, int],
    by_resource: dict[tuple[str, int], list[Any]],
    durations: Mapping[int, int] | None = None,
    *,
    varying: bool = False,
) -> dict[int, Any]:
    """One candidate of a kind; with `durations` (equipment under alternative
    routings) the interval takes the chosen one's; `varying`: the interval's
    size is such a choice (made by the other kind)."""
    kind, task_id = key
    if len(candidates) == 1:
        by_resource.setdefault((kind, candidates[0]), []).append(interval)
        return {}
    literals: dict[int, Any] = {}
    start, size = interval.start_expr(), interval.size_expr()
    for rid in candidates:
        name = f"{kind}{task_id}_{rid}"
        literal = m.new_bool_var(name)
        if durations is not None:
            # Its own duration on this equipment: a fixed size, which the task's follows.
            m.add(size == durations[rid]).only_enforce_if(literal)
            optional = m.new_optional_fixed_size_interval_var(start, durations[rid], literal, name)
        elif varying:
            optional = m.new_optional_interval_var(start, size, interval.end_expr(), literal, name)
        else:
            optional = m.new_optional_fixed_size_interval_var(start, size, literal, name)
        by_resource.setdefault((kind, rid), []).append(optional)
        literals[rid] = literal
    m.add_exactly_one(literals.values())
    return literals


def _fix_the_rest(
    frame: Frame,
    slots: Slots,
    free: set[int],
    by_resource: dict[tuple[str, int], list[Any]],
    m: cp_model.CpModel,
) -> None:
    """Each resource a freed task may use: its blocks and the slots of the
    tasks that stay, as fixed intervals, within the span the freed tasks can reach."""
    model = frame.model
    ceiling = _ceiling(frame, slots, free)
    reach: dict[tuple[str, int], tuple[int, int]] = {}
    for task_id in free:
        t = model.tasks[task_id]
        low, high = _room(frame, slots, free, task_id, ceiling)
        for key in [*(("o", o) for o in t.operators), *(("e", e) for e in t.equipment)]:
            was = reach.get(key, (low, high))
            reach[key] = (min(was[0], low), max(was[1], high))
    staying: dict[tuple[str, int], list[tuple[int, int]]] = {key: [] for key in reach}
    for task_id, (s, o, e) in slots.items():
        if task_id in free:
            continue
        span = (s, s + model.tasks[task_id].duration_on(e))
        for key in (("o", o), ("e", e)):
            if key in staying:
                staying[key].append(span)
    for key, (low, high) in reach.items():
        blocks = model.operator_blocks if key[0] == "o" else model.equipment_blocks
        spans = _merge(
            (max(s, low), min(e, high))
            for s, e in [*blocks.get(key[1], ()), *staying[key]]
            if e > low and s < high
        )
        fixed = [m.new_fixed_size_interval_var(s, e - s, f"b{key[0]}{key[1]}") for s, e in spans]
        intervals = by_resource.get(key, [])
        if len(intervals) + len(fixed) > 1 and intervals:
            m.add_no_overlap(intervals + fixed)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _lateness(
    frame: Frame,
    slots: Slots,
    free: set[int],
    chosen: Mapping[int, _Free],
    m: Any,
    ceiling: int,
) -> Any:
    """Σ weight * lateness over the due jobs of the freed tasks."""
    model = frame.model
    jobs: dict[int, list[int]] = {}
    for task_id in chosen:
        job_id = model.tasks[task_id].task.job_id
        if job_id in model.dues:
            jobs.setdefault(job_id, []).append(task_id)
    terms = []
    promised_terms = []
    # How far the other jobs' lateness can move here: one unit of a promised
    # job's lateness outweighs it all (lexicographic, as the search's score).
    spread = 1
    for job_id, task_ids in jobs.items():
        weight, due, kept = model.dues[job_id]
        fixed = max(
            [kept, *(end_of(model, slots, t) for t in frame.job_tasks[job_id]
                     if t not in free and t in slots)]
        )  # fmt: skip
        now = max(0, max([fixed, *(end_of(model, slots, t) for t in task_ids)]) - due)
        # No freed task ends past the ceiling, and lateness is minimised.
        most = now if job_id in frame.promised_jobs else max(0, max(fixed, ceiling) - due)
        late = m.new_int_var(max(0, fixed - due), most, f"late{job_id}")
        for t in task_ids:
            m.add(late >= chosen[t].end - due)
        # A whole hint: an incomplete one sends the solver repairing it.
        m.add_hint(late, now)
        if job_id in frame.promised_jobs:
            promised_terms.append(weight * late)
        else:
            terms.append(weight * late)
            spread += weight * (most - max(0, fixed - due))
    return sum(terms) + spread * sum(promised_terms)


def _churn(model: ScheduleModel, slots: Slots, chosen: Mapping[int, _Free], m: Any) -> Any:
    """The freed tasks that leave their live slot (each counts one)."""
    moved = []
    for task_id, f in chosen.items():
        t = model.tasks[task_id]
        if t.current is None:
            continue
        s, o, e = model.grid.ceil(t.current.start), t.current.operator_id, t.current.equipment_id
        if o not in t.operators or e not in t.equipment:
            continue
        stays = m.new_bool_var(f"stays{task_id}")
        m.add_hint(stays, int(slots[task_id] == (s, o, e)))
        m.add(f.start == s).only_enforce_if(stays)
        for literals, rid in ((f.operators, o), (f.equipment, e)):
            if literals:
                m.add_implication(stays, literals[rid])
        moved.append(1 - stays)
    return sum(moved)


def _picked(literals: Mapping[int, Any], solver: cp_model.CpSolver, only: int) -> int:
    if not literals:
        return only
    return next(rid for rid, literal in literals.items() if solver.boolean_value(literal))
