"""The optimizer's CP-SAT model of a plan, over an `optimizer_scope.Scope`.

Every open task gets a start variable and one fixed-size interval. Operators
and equipment are two independent choices, each modelled the cheapest way
that is still exact:

- one candidate: the task's own interval goes into that resource's NoOverlap;
- several: one optional interval per candidate and exactly one of them
  present (operators x equipment never as a cross product);
- a *pool*: every task may use every resource of the kind, none is ever
  blocked and there are at least as many of them as of the other kind. At
  most one task per resource of the other kind runs at a time, so the pool can
  never run short; its resources are handed out after the solve
  (`placements._hand_out`). This keeps an imported job shop, whose operators
  are round-the-clock and interchangeable, the classic disjunctive model.

Beyond a pool, a task chooses from at most `SHORTLIST` candidates of a
kind (its live one among them), the least loaded so far: a hundred
operators per task make a model too large to solve and a few lose little.

A resource's blocks (shift gaps, downtime, kept slots) are fixed intervals
in its NoOverlap. Finish-to-start links between open tasks are constraints;
links to kept tasks are already in the task's bounds.

With `optional=True` every task also gets a presence literal (a task without
its predecessors is left out too) and `placed` counts the present ones: the
fallback when not all tasks fit together, e.g. two that must both end before
a kept successor starts. It is looser, so it is the first try only for a
large model with a partly valid live plan (`optimizer`); its hint is then
a whole plan (`optimizer_start`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ortools.sat.python import cp_model

from app.domain.conflicts import Severity
from app.domain.optimizer.routings import routed_duration, routed_interval
from app.domain.optimizer.scope import Scope, Span, TimeGrid, scope_of
from app.domain.optimizer.start import greedy_slots
from app.domain.plan import Assignment, Plan, Task
from app.domain.validation import validate_plan

__all__ = ["ModelTask", "ScheduleModel", "build_model", "lateness_weight"]


@dataclass(slots=True)
class ModelTask:
    task: Task
    duration: int
    start: Any
    operators: tuple[int, ...]
    # One presence literal per candidate; empty when there is one candidate
    # or the kind is a pool.
    operator_literals: tuple[Any, ...] = ()
    equipment: tuple[int, ...] = ()
    equipment_literals: tuple[Any, ...] = ()
    # The live plan's slot when it is valid: the first hint.
    current: Assignment | None = None
    # Whether the task is placed; None when it must be.
    present: Any = None
    # Earliest start and latest end, in grid units.
    earliest: int = 0
    latest: int = 0
    # Alternative routings: grid units per candidate equipment, and the variable
    # duration they decide (`routed_interval`); empty/None: always `duration`.
    durations: dict[int, int] = field(default_factory=dict)
    size: Any = None

    @property
    def end(self) -> Any:
        return self.start + (self.duration if self.size is None else self.size)

    def duration_on(self, equipment_id: int) -> int:
        """Grid units on that equipment: its own under an alternative routing."""
        return self.durations.get(equipment_id, self.duration)

    def decisions(self) -> tuple[Any, ...]:
        present = () if self.present is None else (self.present,)
        return (self.start, *present, *self.operator_literals, *self.equipment_literals)


@dataclass(slots=True)
class ScheduleModel:
    model: cp_model.CpModel
    grid: TimeGrid
    horizon: int
    tasks: dict[int, ModelTask]
    # Tasks left out, with the reason (no qualified operator, ...).
    unplaceable: dict[int, str]
    makespan: Any = None
    # None when no job of a model task has a due time.
    weighted_lateness: Any = None
    # Tasks placed (an optional model's first objective); None when all must be.
    placed: Any = None
    operator_pool: tuple[int, ...] = ()
    equipment_pool: tuple[int, ...] = ()
    # Slots kept as they are that still occupy a resource after the origin.
    locked: dict[int, Assignment] = field(default_factory=dict)
    # What each resource cannot be used for (`optimizer_scope.Scope`).
    operator_blocks: Mapping[int, list[Span]] = field(default_factory=dict)
    equipment_blocks: Mapping[int, list[Span]] = field(default_factory=dict)
    # How many tasks the live plan's hint places (an optional model's hint is
    # a whole plan); None before the first hint or when all must be placed.
    hinted_placed: int | None = None
    # More than the weighted lateness one job can reach: what leaving a task
    # out costs when placement is folded into the lateness objective.
    unplaced_cost: int = 1
    # When the live plan's hint ends, in grid units (an optional model's).
    hinted_makespan: int = 0
    # That whole plan as values of the model's variables: an answer to offer
    # should the solver find none in time.
    start_values: dict[Any, int] = field(default_factory=dict)
    # Per job with a due time: its lateness weight, due time and the end of its
    # locked tasks (or the due time), in grid units.
    dues: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    # Each due job's lateness, in grid units.
    lateness_of: dict[int, Any] = field(default_factory=dict)

    @classmethod
    def of_scope(cls, scope: Scope) -> ScheduleModel:
        """A model of no tasks yet on the scope's grid: its unplaceable tasks, locked
        slots and blocked time (a whole CP-SAT model and the neighbourhoods alike)."""
        return cls(
            cp_model.CpModel(),
            scope.grid,
            scope.horizon,
            {},
            dict(scope.unplaceable),
            locked=dict(scope.locked),
            operator_blocks=scope.operator_blocks,
            equipment_blocks=scope.equipment_blocks,
        )

    def score(self, slots: Mapping[int, Assignment]) -> tuple[int, int, int]:
        """How good a whole plan of the model's tasks is, lower is better:
        (weighted lateness and `unplaced_cost` per task left out, makespan,
        tasks not in their live slot)."""
        late, makespan = self._measure(slots)
        lateness = sum(self.dues[job_id][0] * minutes for job_id, minutes in late.items())
        left_out = (len(self.tasks) - len(slots)) * self.unplaced_cost
        changes = sum(slot != self.tasks[t].current for t, slot in slots.items())
        return lateness + left_out, makespan, changes

    def measure(self, slots: Mapping[int, Assignment]) -> tuple[int, int]:
        """The weighted lateness and makespan of a plan of the model's tasks, in grid units."""
        late, makespan = self._measure(slots)
        return sum(self.dues[job_id][0] * units for job_id, units in late.items()), makespan

    def _measure(self, slots: Mapping[int, Assignment]) -> tuple[dict[int, int], int]:
        """Each due job's lateness and the makespan of a whole plan, in grid units."""
        ends: dict[int, int] = {}
        makespan = 0
        for task_id, slot in slots.items():
            t = self.tasks[task_id]
            end = self.grid.ceil(slot.start) + t.durations.get(slot.equipment_id, t.duration)
            ends[t.task.job_id] = max(end, ends.get(t.task.job_id, end))
            makespan = max(makespan, end)
        late = {
            job_id: max(0, ends.get(job_id, kept) - due, kept - due)
            for job_id, (_, due, kept) in self.dues.items()
        }
        return late, makespan

    def totals(self) -> list[Any]:
        """The objectives' variables beyond the tasks' own decisions."""
        found = [self.makespan, self.weighted_lateness, self.placed, *self.lateness_of.values()]
        return [variable for variable in found if variable is not None]

    def hint(self, value: Callable[[Any], int] | None = None) -> None:
        """Hint starts and choices from a previous solve, else from the live plan:
        its valid slots, or for an optional model a whole plan (`optimizer_start`),
        objectives included so the solver takes it as its first solution."""
        self.model.clear_hints()  # type: ignore[no-untyped-call]
        if value is not None:
            for model_task in self.tasks.values():
                _hint_solved(self.model, model_task, value)
            for variable in self.totals():
                self.model.add_hint(variable, value(variable))
            return
        if self.placed is None:
            for model_task in self.tasks.values():
                if model_task.current is not None:
                    for variable, number in _slot_values(model_task, model_task.current, self.grid):
                        self.model.add_hint(variable, number)
            return
        whole = greedy_slots(self)
        late, makespan = self._measure(whole)
        self.hinted_placed, self.hinted_makespan = len(whole), makespan
        start: dict[Any, int] = {}
        for task_id, model_task in self.tasks.items():
            if (slot := whole.get(task_id)) is not None:
                start.update(_slot_values(model_task, slot, self.grid))
            else:
                start[model_task.present] = 0
        start[self.placed] = len(whole)
        start[self.makespan] = makespan
        for job_id, variable in self.lateness_of.items():
            start[variable] = late[job_id]
        if self.weighted_lateness is not None:
            weighted = sum(self.dues[job_id][0] * minutes for job_id, minutes in late.items())
            start[self.weighted_lateness] = weighted
        for variable, number in start.items():
            self.model.add_hint(variable, number)
        self.start_values = start

    @property
    def partly_current(self) -> bool:
        """Whether some tasks have a valid live slot to start from, but not all."""
        current = sum(t.current is not None for t in self.tasks.values())
        return 0 < current < len(self.tasks)


# Most candidates of a kind a task chooses from (when they are not a pool).
SHORTLIST = 8


def lateness_weight(priority: int) -> int:
    """Priority 0 still counts; each step of priority weighs one more."""
    return max(priority, 0) + 1


def build_model(
    plan: Plan,
    *,
    now: datetime,
    time_unit_minutes: int,
    horizon_days: float | None,
    pinned: frozenset[int],
    optional: bool = False,
) -> ScheduleModel:
    scope = scope_of(
        plan,
        now=now,
        time_unit_minutes=time_unit_minutes,
        horizon_days=horizon_days,
        pinned=pinned,
    )
    model = ScheduleModel.of_scope(scope)
    _add_tasks(model, plan, scope, optional)
    _keep_valid_slots(model, plan, now)
    _add_precedences(model)
    _add_objectives(model, plan)
    model.hint()
    return model


def _is_pool(
    choices: Iterable[tuple[int, ...]], blocks: Mapping[int, list[Span]], others: int
) -> tuple[int, ...]:
    """The kind's resources if they form a pool (see the module docstring), else ()."""
    sets = {frozenset(c) for c in choices}
    if len(sets) != 1:
        return ()
    (pool,) = sets
    if len(pool) < 2 or len(pool) < others or any(blocks[r] for r in pool):
        return ()
    return tuple(sorted(pool))


# -- the CP-SAT model ------------------------------------------------------------


def _add_tasks(model: ScheduleModel, plan: Plan, scope: Scope, optional: bool) -> None:
    m, candidates = model.model, scope.candidates
    used_operators = {o for operators, _ in candidates.values() for o in operators}
    used_equipment = {e for _, equipment in candidates.values() for e in equipment}
    model.operator_pool = _is_pool(
        (c[0] for c in candidates.values()), scope.operator_blocks, len(used_equipment)
    )
    routed = any(plan.tasks[task_id].alternatives for task_id in candidates)
    if not model.operator_pool and not routed:
        model.equipment_pool = _is_pool(
            (c[1] for c in candidates.values()), scope.equipment_blocks, len(used_operators)
        )
    by_operator: dict[int, list[Any]] = {o: [] for o in used_operators}
    by_equipment: dict[int, list[Any]] = {e: [] for e in used_equipment}
    operator_load = dict.fromkeys(used_operators, 0.0)
    equipment_load = dict.fromkeys(used_equipment, 0.0)
    for task_id, (operators, equipment) in candidates.items():
        task = plan.tasks[task_id]
        duration = model.grid.units(task.duration_minutes)
        slot = plan.assignments.get(task_id)
        if not model.operator_pool:
            wanted = None if slot is None else slot.operator_id
            operators = _shortlist(operators, wanted, operator_load, duration)
        if not model.equipment_pool:
            wanted = None if slot is None else slot.equipment_id
            equipment = _shortlist(equipment, wanted, equipment_load, duration)
        earliest, latest = scope.bounds[task_id]
        duration, durations = routed_duration(task, equipment, model.grid)
        start = m.new_int_var(earliest, latest - duration, f"start_{task_id}")
        name = f"task_{task_id}"
        present = m.new_bool_var(f"present_{task_id}") if optional else None
        model_task = ModelTask(task, duration, start, operators, equipment=equipment)
        model_task.earliest, model_task.latest = earliest, latest
        model_task.present = present
        if durations:
            interval = routed_interval(m, model_task, durations, name)
        elif present is None:
            interval = m.new_fixed_size_interval_var(start, duration, name)
        else:
            interval = m.new_optional_fixed_size_interval_var(start, duration, present, name)
        if not model.operator_pool:
            model_task.operator_literals = _choose(m, model_task, interval, by_operator, "op")
        if not model.equipment_pool:
            model_task.equipment_literals = _choose(m, model_task, interval, by_equipment, "eq")
        model.tasks[task_id] = model_task
    if optional:
        presents = [t.present for t in model.tasks.values()]
        model.placed = m.new_int_var(0, len(presents), "placed")
        m.add(model.placed == sum(presents))
    for resources, blocks in (
        (by_operator, scope.operator_blocks),
        (by_equipment, scope.equipment_blocks),
    ):
        for rid, intervals in resources.items():
            fixed = [
                m.new_fixed_size_interval_var(s, e - s, f"blocked_{rid}") for s, e in blocks[rid]
            ]
            if len(intervals) + len(fixed) > 1 and intervals:
                m.add_no_overlap(intervals + fixed)


def _shortlist(
    candidates: tuple[int, ...], wanted: int | None, load: dict[int, float], duration: int
) -> tuple[int, ...]:
    """At most `SHORTLIST` candidates (and the live one): the least loaded so far.

    A hundred interchangeable operators per task make a model too large to
    solve; a few per task, spread so each resource is offered about as much
    work as the others, lose little.
    """
    if len(candidates) > SHORTLIST:
        # Candidates come sorted by id, so ties go to the lower id.
        ranked = sorted(candidates, key=load.__getitem__)[:SHORTLIST]
        if wanted in candidates and wanted not in ranked:
            ranked[-1] = wanted
        candidates = tuple(sorted(ranked))
    for rid in candidates:
        load[rid] += duration / len(candidates)
    return candidates


def _keep_valid_slots(model: ScheduleModel, plan: Plan, now: datetime) -> None:
    """Remember the live slots worth starting from: no error conflict, on candidates.

    A hint that breaks a rule would only send the solver repairing it.
    """
    broken = {
        task_id
        for conflict in validate_plan(plan, now=now)
        if conflict.severity is Severity.ERROR
        for task_id in conflict.task_ids
    }
    for task_id, t in model.tasks.items():
        slot = plan.assignments.get(task_id)
        if slot is None or task_id in broken or model.grid.ceil(slot.start) < 0:
            continue
        if slot.operator_id in t.operators and slot.equipment_id in t.equipment:
            t.current = slot


def _choose(
    m: cp_model.CpModel,
    task: ModelTask,
    interval: Any,
    by_resource: dict[int, list[Any]],
    kind: str,
) -> tuple[Any, ...]:
    candidates = task.operators if kind == "op" else task.equipment
    if len(candidates) == 1:
        by_resource[candidates[0]].append(interval)
        return ()
    literals = []
    name = interval.name
    for rid in candidates:
        chosen = m.new_bool_var(f"{name}_{kind}{rid}")
        by_resource[rid].append(_candidate_interval(m, task, interval, rid, chosen, kind))
        literals.append(chosen)
    if task.present is None:
        m.add_exactly_one(literals)
    else:
        m.add(sum(literals) == task.present)
    return tuple(literals)


def _candidate_interval(
    m: cp_model.CpModel, task: ModelTask, interval: Any, rid: int, chosen: Any, kind: str
) -> Any:
    name = f"{interval.name}_{kind}{rid}"
    if task.size is None:
        return m.new_optional_fixed_size_interval_var(
            interval.start_expr(), interval.size_expr(), chosen, name
        )
    if kind == "eq":
        # An alternative routing: its own duration on this equipment.
        m.add(task.size == task.durations[rid]).only_enforce_if(chosen)
        return m.new_optional_fixed_size_interval_var(
            interval.start_expr(), task.durations[rid], chosen, name
        )
    return m.new_optional_interval_var(
        interval.start_expr(), interval.size_expr(), interval.end_expr(), chosen, name
    )


def _add_precedences(model: ScheduleModel) -> None:
    m = model.model
    for model_task in model.tasks.values():
        for p in model_task.task.predecessors:
            if (predecessor := model.tasks.get(p)) is None:
                continue
            if model_task.present is None:
                m.add(model_task.start >= predecessor.end)
            else:
                m.add_implication(model_task.present, predecessor.present)
                m.add(model_task.start >= predecessor.end).only_enforce_if(model_task.present)


def _add_objectives(model: ScheduleModel, plan: Plan) -> None:
    m, horizon = model.model, model.horizon
    tasks_of_job: dict[int, list[ModelTask]] = {}
    has_successor = {p for t in model.tasks.values() for p in t.task.predecessors}
    # Only tasks nothing in the model waits for can end last (all of them
    # when predecessors loop, which the solver then proves infeasible).
    sinks = [t for t in model.tasks.values() if t.task.id not in has_successor]
    model.makespan = m.new_int_var(0, horizon, "makespan")
    if model.placed is None:
        m.add_max_equality(model.makespan, [t.end for t in sinks or model.tasks.values()])
    else:
        # Minimised, so a bound from the placed tasks is as good as the max.
        for t in model.tasks.values():
            m.add(model.makespan >= t.end).only_enforce_if(t.present)
    for model_task in model.tasks.values():
        tasks_of_job.setdefault(model_task.task.job_id, []).append(model_task)
    kept_ends: dict[int, int] = {}
    for task_id, slot in model.locked.items():
        if (task := plan.tasks.get(task_id)) is not None:
            end = model.grid.ceil(slot.end)
            kept_ends[task.job_id] = max(end, kept_ends.get(task.job_id, end))
    terms: list[tuple[int, Any, int]] = []
    for job_id, job_tasks in sorted(tasks_of_job.items()):
        job = plan.jobs.get(job_id)
        if job is None or job.due is None:
            continue
        due = model.grid.floor(job.due)
        # A due time already past makes lateness exceed the horizon.
        lateness = m.new_int_var(0, max(0, horizon - due), f"lateness_{job_id}")
        for t in job_tasks:
            late = m.add(lateness >= t.end - due)
            if t.present is not None:
                late.only_enforce_if(t.present)
        if job_id in kept_ends:
            m.add(lateness >= kept_ends[job_id] - due)
        terms.append((lateness_weight(job.priority), lateness, max(0, horizon - due)))
        model.dues[job_id] = (lateness_weight(job.priority), due, kept_ends.get(job_id, due))
        model.lateness_of[job_id] = lateness
    if terms:
        model.unplaced_cost = max(weight * most for weight, _, most in terms) + 1
        bound = sum(weight * most for weight, _, most in terms)
        model.weighted_lateness = m.new_int_var(0, bound, "weighted_lateness")
        m.add(model.weighted_lateness == sum(weight * lateness for weight, lateness, _ in terms))


def _hint_solved(m: cp_model.CpModel, t: ModelTask, value: Callable[[Any], int]) -> None:
    for variable in t.decisions():
        m.add_hint(variable, value(variable))


def _slot_values(t: ModelTask, slot: Assignment, grid: TimeGrid) -> list[tuple[Any, int]]:
    """The task's decisions that put it in `slot`."""
    found: list[tuple[Any, int]] = [(t.start, grid.ceil(slot.start))]
    if t.present is not None:
        found.append((t.present, 1))
    for rid, literal in zip(t.operators, t.operator_literals, strict=False):
        found.append((literal, int(rid == slot.operator_id)))
    for rid, literal in zip(t.equipment, t.equipment_literals, strict=False):
        found.append((literal, int(rid == slot.equipment_id)))
    return found
