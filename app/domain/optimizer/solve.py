"""The optimizer: a proposed plan from the live one, checked before it is offered.

`optimize` builds the CP-SAT model (`optimizer_model`), solves it and turns
the answer into assignments. The objective is lexicographic, in two solves:

1. minimise the weighted lateness, sum of (priority + 1) * grid units past
   each job's due time, with up to half the time limit;
2. minimise the makespan (the last open task's end) in the time left, hinted
   with solve 1's answer. When solve 1 proved its optimum it is pinned
   there; when it did not, it is capped at what solve 1 found and solve 2
   minimises `weighted_lateness * M + makespan` (M > any makespan), so it
   may still lower lateness and lateness still comes first.

Without any due time solve 1 is skipped and the makespan gets all the time
(an imported job shop). Two solves rather than one big-M sum: solve 1's
bound is a plain sum, not drowned by M, so it is proved sooner, and solve 2
usually optimises the makespan alone.

When the tasks cannot all be placed together (the solver proves it, usually
in presolve), the time left goes to the optional model (`optimizer_model`):
first place as many tasks as possible, then the same two solves; the ones
left out are `unplaceable`.

A large model (over `_LARGE` open tasks) presolves without probing, which
takes most of the time on thousands of optional intervals. When some of its
tasks have a valid live slot and some do not, it goes to the optional model
straight away, hinted with a whole plan (`optimizer_start`): the required
model rarely finds a first solution in time there, and a plan to offer
comes first. No placement solve then: its answer places tasks anywhere (only
their number counts) and the lateness solve would spend its time mending
that. The plan's count is a floor instead, and each task it leaves out
costs solve 1 more than the worst lateness of one job; should the model
prove the floor wrong, the placement solve runs after all, on a fresh
model. The makespan stays within the plan's, or solve 1 (which does not
look at it) lets it drift further than solve 2 can mend in the time left.
Should the solver find nothing in the time (a busy machine, a short limit),
that plan is the answer, validated like any other.

The answer becomes a proposal checked before it is offered
(`proposal.offer`: the live plan with the open tasks moved, validated).

`on_progress` is called from a solver thread on each better solution and
once at the end of each solve (with the final bound); `should_stop` is polled
every 0.1 s and ends the search with the best plan so far.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ortools.sat.python import cp_model

from app.domain.optimizer.model import ScheduleModel, build_model
from app.domain.optimizer.placements import placements
from app.domain.optimizer.proposal import offer
from app.domain.optimizer.scope import scope_of
from app.domain.optimizer.shop_search import (
    ShopTask,
    as_shop,
    search_shop,
    shop_values,
)
from app.domain.optimizer.start import greedy_slots
from app.domain.optimizer.terms import (
    OptimizationResult,
    OptimizerSettings,
    Progress,
    SolveStatus,
)
from app.domain.plan import Plan

# The terms' names are the package's to export (`app.domain.optimizer`), not this module's.
__all__ = ["optimize"]

# How often a running solve asks `should_stop`.
_POLL_SECONDS = 0.1
# Open tasks from which a model is large: no probing in presolve (slow on
# many optional intervals) and, with a partly valid live plan, the optional
# model from the start.
_LARGE = 500


def optimize(
    plan: Plan,
    *,
    now: datetime,
    settings: OptimizerSettings,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> OptimizationResult:
    started = time.monotonic()
    scope = scope_of(
        plan,
        now=now,
        time_unit_minutes=settings.time_unit_minutes,
        horizon_days=settings.horizon_days,
        pinned=settings.pinned,
    )
    if len(scope.candidates) > settings.at_scale_tasks:
        from app.domain.optimizer.scale import optimize_at_scale  # it builds on this module

        return optimize_at_scale(
            plan, scope, now=now, settings=settings, started=started,
            on_progress=on_progress, should_stop=should_stop,
        )  # fmt: skip
    model = _build(plan, now, settings, optional=False)
    if not model.tasks:
        return _result(plan, model, {}, SolveStatus.OPTIMAL, now, started, 0)
    run = _Run(settings, started, on_progress, should_stop)
    if (shop := as_shop(model)) is not None:
        # A flexible job shop, makespan only: its own search (`shop_search`).
        slots, solved = _solve_shop(run, model, shop)
        return _ended(run, _result(plan, model, slots, solved, now, started, run.solutions))
    if model.partly_current and len(model.tasks) > _LARGE:
        # Too large to complete the live plan's slots into a first solution in
        # time: the optional model starts from them (the rest left out) instead.
        model, values, status = _solve_optional(run, plan, now, settings)
        return _ended(run, _result(plan, model, values, status, now, started, run.solutions))
    run.report_start(model)
    values, status = run.solve(model)
    if status is SolveStatus.INFEASIBLE and run.time_left():
        # Not everything fits together: place as many tasks as possible instead.
        model, values, status = _solve_optional(run, plan, now, settings)
    elif values is None and status is SolveStatus.UNKNOWN:
        # No answer in the time (a busy machine, a short limit): the dispatching
        # rule's plan is one, and validation still decides whether it is offered.
        first = _build(plan, now, settings, optional=True)
        if first.start_values:
            model, values, status = first, first.start_values, SolveStatus.FEASIBLE
            result = _result(plan, model, values, status, now, started, run.solutions)
            run.report_first_plan(result)
            return _ended(run, result)
    return _ended(run, _result(plan, model, values, status, now, started, run.solutions))


def _ended(run: _Run, result: OptimizationResult) -> OptimizationResult:
    """Why the search ended, and the last solve's gap to its bound."""
    if result.status is SolveStatus.OPTIMAL:
        ending = "proved"
    else:
        ending = "stopped" if run.stopped else "time limit"
    gap = 0.0 if result.status is SolveStatus.OPTIMAL else run.last_gap
    return dataclasses.replace(result, ending=ending, gap=gap)


def _solve_optional(
    run: _Run, plan: Plan, now: datetime, settings: OptimizerSettings
) -> tuple[ScheduleModel, dict[Any, int] | None, SolveStatus]:
    model = _build(plan, now, settings, optional=True)
    run.report_start(model)
    values, status = run.solve(model)
    if status is SolveStatus.INFEASIBLE and run.trusted_hint and run.time_left():
        # The model disagrees with the hint's count: the placement solve
        # after all, on a fresh model.
        model = _build(plan, now, settings, optional=True)
        values, status = run.solve(model, trust_hint=False)
    if values is None and status is SolveStatus.UNKNOWN and model.start_values:
        # No answer in the time (a busy machine, a short limit): the starting
        # plan is one, and validation still decides whether it is offered.
        values, status = model.start_values, SolveStatus.FEASIBLE
    return model, values, status


def _build(
    plan: Plan, now: datetime, settings: OptimizerSettings, *, optional: bool
) -> ScheduleModel:
    return build_model(
        plan,
        now=now,
        time_unit_minutes=settings.time_unit_minutes,
        horizon_days=settings.horizon_days,
        pinned=settings.pinned,
        optional=optional,
    )


# -- solving ---------------------------------------------------------------------


def _solve_shop(
    run: _Run, model: ScheduleModel, shop: list[ShopTask]
) -> tuple[dict[Any, int], SolveStatus]:
    run.model = model

    def improved(makespan: int, bound: int) -> None:
        run.solutions += 1
        run.report("makespan", makespan, bound, {model.makespan: makespan}.__getitem__)

    best = search_shop(
        shop,
        horizon=model.horizon,
        time_limit_s=max(0.1, run.deadline - time.monotonic()),
        workers=run.settings.workers,
        seed=run.settings.seed,
        should_stop=run.stop_requested,
        on_improve=improved,
    )
    optimal = best.makespan <= best.bound
    return shop_values(model, best), SolveStatus.OPTIMAL if optimal else SolveStatus.FEASIBLE


class _Run:
    """The solves of an `optimize` call, sharing time and progress."""

    model: ScheduleModel

    def __init__(
        self,
        settings: OptimizerSettings,
        started: float,
        on_progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.settings = settings
        self.deadline = started + settings.time_limit_s
        self.started = started
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.solutions = 0
        self.stopped = False
        self.last_gap: float | None = None

    trusted_hint = False

    def stop_requested(self) -> bool:
        self.stopped = self.stopped or (self.should_stop is not None and self.should_stop())
        return self.stopped

    def time_left(self) -> bool:
        return not self.stopped and self.deadline > time.monotonic()

    def solve(
        self, model: ScheduleModel, *, trust_hint: bool = True
    ) -> tuple[dict[Any, int] | None, SolveStatus]:
        self.model = model
        values: dict[Any, int] | None = None
        # Whether every task that can be placed is (only an optional model asks).
        all_placed = True
        lateness = model.weighted_lateness
        # Solve 1's objective: the lateness, and in a folded placement the tasks left out.
        first = lateness
        folded = False
        self.trusted_hint = trust_hint and _hint_settles_placement(model)
        if model.placed is not None and self.trusted_hint:
            # No placement solve (see the module docstring): the hint's count
            # is a floor, and tasks it leaves out weigh in solve 1.
            total, hinted = len(model.tasks), model.hinted_placed or 0
            model.model.add(model.placed >= hinted)
            if lateness is not None and hinted != total:
                first = lateness + model.unplaced_cost * (total - model.placed)
                folded = True
        elif model.placed is not None:
            model.model.maximize(model.placed)
            status, values = self._solve("placement", self._half_of_the_time_left())
            if values is None:
                return None, _found(values)
            all_placed = status == cp_model.OPTIMAL
            model.model.add(model.placed >= values[model.placed])
            model.hint(values.__getitem__)
        objective = model.makespan
        if self.trusted_hint and lateness is not None and len(model.tasks) > _LARGE:
            # Not past the starting plan's (see the module docstring).
            model.model.add(model.makespan <= model.hinted_makespan)
        if lateness is not None and first is not None and not self.stopped:
            model.model.minimize(first)
            status, found = self._solve("lateness", self._half_of_the_time_left())
            if status == cp_model.INFEASIBLE:
                return None, SolveStatus.INFEASIBLE
            values = found or values
            if folded and values is not None:
                model.model.add(model.placed >= values[model.placed])
                all_placed = values[model.placed] == len(model.tasks)
            if status == cp_model.OPTIMAL and values is not None:
                model.model.add(lateness == values[lateness])
            else:
                # Not proved: solve 2 may still lower it, and M keeps it first.
                if values is not None:
                    model.model.add(lateness <= values[lateness])
                objective = lateness * (model.horizon + 1) + model.makespan
            if values is not None:
                model.hint(values.__getitem__)
        if self.stopped:
            return values, _found(values)
        model.model.minimize(objective)
        status, second = self._solve("makespan", self.deadline - time.monotonic())
        if second is None:
            # Nothing new in solve 2's time: solve 1's answer, if any, stands.
            if values is None and status == cp_model.INFEASIBLE:
                return None, SolveStatus.INFEASIBLE
            return values, _found(values)
        # Optimal here is the lexicographic optimum: the lateness was either
        # pinned at its proved optimum or weighs more than any makespan.
        optimal = status == cp_model.OPTIMAL and all_placed
        return second, SolveStatus.OPTIMAL if optimal else SolveStatus.FEASIBLE

    def _half_of_the_time_left(self) -> float:
        return (self.deadline - time.monotonic()) / 2

    def _solve(
        self, phase: str, seconds: float
    ) -> tuple[cp_model.CpSolverStatus, dict[Any, int] | None]:
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.05, seconds)
        solver.parameters.num_workers = self.settings.workers
        solver.parameters.random_seed = self.settings.seed
        if len(self.model.tasks) > _LARGE:
            solver.parameters.cp_model_probing_level = 0
        callback = _Callback(self, phase)
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(solver, done), daemon=True)
        watcher.start()
        try:
            status = solver.solve(self.model.model, callback)
        finally:
            done.set()  # the watcher ends within a poll; no join, so no solve waits for it
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return status, None
        # Once more with the final bound: it may have moved since the last solution.
        self.report(phase, solver.objective_value, solver.best_objective_bound, solver.value)
        return status, _values(self.model, solver.value)

    def report(
        self, phase: str, objective: float, bound: float, value: Callable[[Any], int]
    ) -> None:
        self.last_gap = abs(objective - bound) / max(1.0, abs(objective))
        if self.on_progress is None:
            return
        lateness = self.model.weighted_lateness
        unit = self.model.grid.unit_minutes
        self.on_progress(
            Progress(
                phase=phase,
                objective=objective,
                best_bound=bound,
                weighted_lateness_minutes=(0 if lateness is None else value(lateness)) * unit,
                makespan_minutes=value(self.model.makespan) * unit,
                elapsed_s=time.monotonic() - self.started,
                solutions=self.solutions,
            )
        )

    def report_start(self, model: ScheduleModel) -> None:
        """The dispatching rule's plan (`optimizer.start`) before the solver's
        first: the panel has a first plan at once, however long CP-SAT takes
        to find one. An optional model's hint is that plan; a required
        model's is the live plan, so the rule makes one for the report."""
        if self.on_progress is None or self.solutions:
            return
        unit = model.grid.unit_minutes
        if model.start_values:
            lateness = model.start_values.get(model.weighted_lateness, 0)
            makespan = model.hinted_makespan
        else:
            lateness, makespan = model.measure(greedy_slots(model))
        self.on_progress(
            Progress(
                phase="first plan",
                objective=lateness * unit,
                best_bound=0,
                weighted_lateness_minutes=lateness * unit,
                makespan_minutes=makespan * unit,
                elapsed_s=time.monotonic() - self.started,
                solutions=1,
                bound_known=False,
            )
        )

    def report_first_plan(self, result: OptimizationResult) -> None:
        """The dispatching rule's plan, offered when the solver found none in
        the time: reported as the "first plan", with no bound to speak of."""
        if self.on_progress is None:
            return
        lateness = result.weighted_lateness_minutes
        self.on_progress(
            Progress(
                phase="first plan",
                objective=lateness,
                best_bound=0,
                weighted_lateness_minutes=lateness,
                makespan_minutes=result.makespan_minutes,
                elapsed_s=time.monotonic() - self.started,
                solutions=max(1, self.solutions),
                bound_known=False,
            )
        )

    def _watch(self, solver: cp_model.CpSolver, done: threading.Event) -> None:
        if self.should_stop is None:
            return
        # Slept, not `done.wait(timeout)`: a timed wait reads CLOCK_MONOTONIC through
        # sem_clockwait, which libfaketime (CI's faked instants) never lets time out.
        while not done.is_set():
            time.sleep(_POLL_SECONDS)
            if not done.is_set() and self.should_stop():
                self.stopped = True
                solver.stop_search()
                return


class _Callback(cp_model.CpSolverSolutionCallback):
    def __init__(self, run: _Run, phase: str) -> None:
        super().__init__()
        self.run = run
        self.phase = phase

    def on_solution_callback(self) -> None:
        self.run.solutions += 1
        self.run.report(self.phase, self.objective_value, self.best_objective_bound, self.value)


def _hint_settles_placement(model: ScheduleModel) -> bool:
    """Whether the optional model's hint is trusted for how many tasks to place:
    always when it places them all, and for a large model when it leaves a few
    out (then placing them is folded into solve 1's objective)."""
    if model.placed is None or model.hinted_placed is None:
        return False
    if model.hinted_placed == len(model.tasks):
        return True
    return len(model.tasks) > _LARGE and model.weighted_lateness is not None


def _found(values: object) -> SolveStatus:
    return SolveStatus.UNKNOWN if values is None else SolveStatus.FEASIBLE


def _values(model: ScheduleModel, value: Callable[[Any], int]) -> dict[Any, int]:
    """Every decision's value, so solve 1's answer outlives its solver."""
    found: dict[Any, int] = {}
    for t in model.tasks.values():
        for variable in t.decisions():
            found[variable] = value(variable)
    for total in model.totals():
        found[total] = value(total)
    return found


# -- the proposal ----------------------------------------------------------------


def _result(
    plan: Plan,
    model: ScheduleModel,
    values: Mapping[Any, int] | None,
    status: SolveStatus,
    now: datetime,
    started: float,
    solutions: int,
) -> OptimizationResult:
    if values is None:
        return OptimizationResult(
            status=status,
            assignments={},
            unplaceable=dict(model.unplaceable),
            solve_seconds=time.monotonic() - started,
            solutions=solutions,
        )
    moved = placements(model, values)
    return offer(plan, model.unplaceable, moved, status, now=now, started=started,
                 solutions=solutions)  # fmt: skip
