"""A makespan-only search for (flexible) job shops: a greedy start, CP-SAT, then LNS.

An imported job shop, or any plant run where no job has a due time, every
operator is interchangeable and round the clock (a pool) and no machine is
ever blocked, is the classic flexible job shop: each task picks one of its
machines, with that machine's duration, and machines run one task at a time.
Plain CP-SAT on the whole model finds poor first plans on the larger
instances (Brandimarte mk10, mk13, mk15 stay 17-29 % above the best known
after 10 s on two workers). This search does what the literature does:

1. a greedy plan (`shop_start`: most work left first, each task on the
   machine where it ends soonest, a few randomised tries) in a fraction of a
   second;
2. the whole model, hinted with it, for most of the time (`WHOLE_SHARE`):
   CP-SAT's own neighbourhoods improve it, and on the small instances it
   proves the optimum outright;
3. large-neighbourhood search for the rest of the time: free a few jobs, the
   tasks in a time window or the tasks of a few machines (their machine and
   place in the sequence), keep every other task on its machine and in its
   order, re-solve for a fraction of a second with the best plan as hint,
   keep the answer when it is no worse.

Everything here is in grid units and pure: `ShopTask`s in, slots out.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ortools.sat.python import cp_model

from app.domain.optimizer.model import ScheduleModel
from app.domain.optimizer.shop_start import (
    ShopPlan,
    ShopTask,
    greedy,
    topological,
    trivial_bound,
)

__all__ = ["ShopPlan", "ShopTask", "as_shop", "search_shop", "shop_values"]


# Told each better makespan found, with the best bound proved so far.
Improved = Callable[[int, int], None]

# How often a running solve asks whether to stop.
_POLL_SECONDS = 0.1
# The share of the time the whole model gets before the search turns to neighbourhoods.
WHOLE_SHARE = 0.7


def search_shop(
    tasks: Sequence[ShopTask],
    *,
    horizon: int,
    time_limit_s: float,
    workers: int,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    on_improve: Improved | None = None,
) -> ShopPlan:
    """The best plan found in the time; `bound` says how far it may be from the optimum."""
    deadline = time.monotonic() + time_limit_s
    stop = should_stop or (lambda: False)
    rng = random.Random(seed)
    by_id = {t.id: t for t in tasks}
    order = topological(tasks)
    best = greedy(by_id, order, rng, tries=max(1, min(30, 20000 // max(1, len(tasks)))))
    best.bound = trivial_bound(tasks)
    _tell(on_improve, best)
    whole_share = WHOLE_SHARE * time_limit_s
    found = _solve(by_id, horizon, best, None, whole_share, workers, seed, stop, on_improve)
    if found is not None:
        best = _better(best, found, on_improve)
        best.bound = max(best.bound, found.bound)
    step = 0
    while best.makespan > best.bound and not stop():
        left = deadline - time.monotonic()
        if left < 0.05:
            break
        free = _neighbourhood(by_id, best, rng, step)
        step += 1
        found = _solve(by_id, horizon, best, free, min(left, 0.3), workers, seed + step, stop)
        if found is not None:
            best = _better(best, found, on_improve)
    return best


def _neighbourhood(
    by_id: Mapping[int, ShopTask], best: ShopPlan, rng: random.Random, step: int
) -> set[int]:
    """Which tasks may change machine and place: some jobs, a time window or some machines."""
    size = max(4, min(len(by_id) // 3, 25 + rng.randrange(25)))
    kind = step % 3
    if kind == 0:
        jobs = sorted({t.job for t in by_id.values()})
        rng.shuffle(jobs)
        chosen: set[int] = set()
        for job in jobs:
            chosen.update(t.id for t in by_id.values() if t.job == job)
            if len(chosen) >= size:
                break
        return chosen
    ranked = sorted(by_id, key=lambda t: best.slots[t][1])
    if kind == 1:
        first = rng.randrange(max(1, len(ranked) - size + 1))
        return set(ranked[first : first + size])
    machines = sorted({m for m, _ in best.slots.values()})
    rng.shuffle(machines)
    chosen = set()
    for machine in machines:
        chosen.update(t for t in ranked if best.slots[t][0] == machine)
        if len(chosen) >= size:
            break
    return chosen


def _solve(
    by_id: Mapping[int, ShopTask],
    horizon: int,
    best: ShopPlan,
    free: set[int] | None,
    seconds: float,
    workers: int,
    seed: int,
    stop: Callable[[], bool],
    on_improve: Improved | None = None,
) -> ShopPlan | None:
    """The model with every task free (`free` None) or only those; the others keep
    their machine and their order on it. None when nothing was found in time."""
    m = cp_model.CpModel()
    starts: dict[int, Any] = {}
    ends: dict[int, Any] = {}
    sizes: dict[int, Any] = {}
    chosen: dict[int, list[tuple[int, Any]]] = {}
    per_machine: dict[int, list[Any]] = {}
    for t, task in by_id.items():
        choices = task.choices
        if free is not None and t not in free:
            kept = best.slots[t][0]
            choices = tuple(c for c in choices if c[0] == kept)
        low = min(d for _, d in choices)
        high = max(d for _, d in choices)
        start = m.new_int_var(task.earliest, horizon - low, f"s{t}")
        end = m.new_int_var(task.earliest + low, horizon, f"e{t}")
        size = m.new_int_var(low, high, f"d{t}")
        m.new_interval_var(start, size, end, f"i{t}")
        starts[t], ends[t], sizes[t] = start, end, size
        if len(choices) == 1:
            machine, duration = choices[0]
            per_machine.setdefault(machine, []).append(
                m.new_fixed_size_interval_var(start, duration, f"i{t}m{machine}")
            )
            chosen[t] = []
            continue
        literals = []
        for machine, duration in choices:
            literal = m.new_bool_var(f"x{t}m{machine}")
            per_machine.setdefault(machine, []).append(
                m.new_optional_fixed_size_interval_var(start, duration, literal, f"i{t}m{machine}")
            )
            m.add(size == duration).only_enforce_if(literal)
            literals.append((machine, literal))
        m.add_exactly_one(lit for _, lit in literals)
        chosen[t] = literals
    for intervals in per_machine.values():
        m.add_no_overlap(intervals)
    for t, task in by_id.items():
        for p in task.predecessors:
            if p in starts:
                m.add(starts[t] >= ends[p])
    if free is not None:
        _keep_order(m, best, free, starts, ends)
    makespan = m.new_int_var(0, horizon, "makespan")
    m.add_max_equality(makespan, list(ends.values()))
    m.add(makespan <= best.makespan)
    # Redundant, for the bound: all the work fits on the machines by the end.
    m.add(sum(sizes.values()) <= len(per_machine) * makespan)
    m.minimize(makespan)
    m.add_hint(makespan, best.makespan)
    for t, (machine, begin) in best.slots.items():
        duration = dict(by_id[t].choices)[machine]
        m.add_hint(starts[t], begin)
        m.add_hint(sizes[t], duration)
        m.add_hint(ends[t], begin + duration)
        for candidate, literal in chosen[t]:
            m.add_hint(literal, int(candidate == machine))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, seconds)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    # Probing takes most of a short solve's time, and a second of a long one.
    solver.parameters.cp_model_probing_level = 0
    if free is not None:
        solver.parameters.symmetry_level = 0
    if stop():
        return None
    status = _run(solver, m, makespan, stop, on_improve if free is None else None)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    slots = {
        t: (_machine(solver, chosen[t], by_id[t], best, free), solver.value(starts[t]))
        for t in by_id
    }
    bound = int(solver.best_objective_bound) if free is None else 0
    return ShopPlan(slots, solver.value(makespan), bound)


def _machine(
    solver: cp_model.CpSolver,
    literals: list[tuple[int, Any]],
    task: ShopTask,
    best: ShopPlan,
    free: set[int] | None,
) -> int:
    for machine, literal in literals:
        if solver.value(literal):
            return machine
    if free is not None and task.id not in free:
        return best.slots[task.id][0]
    return task.choices[0][0]


def _keep_order(
    m: cp_model.CpModel,
    best: ShopPlan,
    free: set[int],
    starts: Mapping[int, Any],
    ends: Mapping[int, Any],
) -> None:
    """Tasks kept on a machine stay in the order they had there."""
    kept: dict[int, list[tuple[int, int]]] = {}
    for t, (machine, start) in best.slots.items():
        if t not in free:
            kept.setdefault(machine, []).append((start, t))
    for sequence in kept.values():
        sequence.sort()
        for (_, first), (_, second) in itertools.pairwise(sequence):
            m.add(starts[second] >= ends[first])


def _better(best: ShopPlan, found: ShopPlan, on_improve: Improved | None) -> ShopPlan:
    if found.makespan >= best.makespan:
        if found.makespan == best.makespan:
            found.bound = best.bound
            return found  # as good: move on from it, the search stays mobile
        return best
    found.bound = max(best.bound, found.bound)
    _tell(on_improve, found)
    return found


def _tell(on_improve: Improved | None, plan: ShopPlan) -> None:
    if on_improve is not None:
        on_improve(plan.makespan, plan.bound)


def _run(
    solver: cp_model.CpSolver,
    m: cp_model.CpModel,
    makespan: Any,
    stop: Callable[[], bool],
    on_improve: Improved | None,
) -> Any:
    """Solve, stopping within `_POLL_SECONDS` of `stop()` turning true."""
    done = threading.Event()

    def watch() -> None:
        # Slept, not a timed wait: libfaketime (CI's faked instants) never ends those.
        while not done.is_set():
            time.sleep(_POLL_SECONDS)
            if not done.is_set() and stop():
                solver.stop_search()
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        return solver.solve(m, _Reporter(makespan, on_improve) if on_improve else None)
    finally:
        done.set()


class _Reporter(cp_model.CpSolverSolutionCallback):
    def __init__(self, makespan: Any, on_improve: Improved) -> None:
        super().__init__()
        self.makespan, self.on_improve = makespan, on_improve

    def on_solution_callback(self) -> None:
        self.on_improve(int(self.value(self.makespan)), int(self.best_objective_bound))


# -- a plant's model as a shop ----------------------------------------------------


def as_shop(model: ScheduleModel) -> list[ShopTask] | None:
    """The model's tasks as a flexible job shop, when that is all the run asks:
    no due time, a pool of operators, no machine ever blocked, and some task with
    a choice of machines (a classic job shop keeps the whole model's search)."""
    tasks = model.tasks.values()
    if model.placed is not None or model.weighted_lateness is not None:
        return None
    if not model.operator_pool or model.equipment_pool:
        return None
    if any(model.equipment_blocks.get(e) for t in tasks for e in t.equipment):
        return None
    if all(len(t.equipment) == 1 for t in tasks):
        return None
    return [
        ShopTask(
            id=task_id,
            job=t.task.job_id,
            choices=tuple((e, t.durations.get(e, t.duration)) for e in t.equipment),
            predecessors=tuple(p for p in t.task.predecessors if p in model.tasks),
            earliest=t.earliest,
        )
        for task_id, t in model.tasks.items()
    ]


def shop_values(model: ScheduleModel, plan: ShopPlan) -> dict[Any, int]:
    """The plan as values of the model's decisions (what `placements` reads)."""
    values: dict[Any, int] = {}
    for task_id, (machine, start) in plan.slots.items():
        t = model.tasks[task_id]
        values[t.start] = start
        for rid, literal in zip(t.equipment, t.equipment_literals, strict=False):
            values[literal] = int(rid == machine)
    return values
