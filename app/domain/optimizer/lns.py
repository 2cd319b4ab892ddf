"""The optimizer at plant scale: a first plan at once, then large-neighbourhood search.

A whole-plant CP-SAT model of thousands of tasks finds one poor solution in
a minute. Instead:

1. **First plan**: the dispatching greedy (`optimizer.start`) over the
   whole scope: every task in order of when it wants to start, its live slot
   kept when still free, else the earliest-finishing candidate pair, a task
   that would miss its job's due time allowed to push live slots on. It
   respects every rule the model does (shifts, downtime, kept slots,
   predecessors, releases) and is the best plan from the first second on.
2. **Improvement**: repeatedly free a neighbourhood - a late job and the
   tasks around it on the resources it could use, the tasks that left their
   live slot and their neighbours, or a random stretch of a few machines -
   and re-solve it with CP-SAT, the rest fixed (`optimizer.neighbourhood`,
   small models, a few seconds each). A neighbourhood's answer is kept when
   the whole plan's score (weighted lateness of the jobs the live plan had
   complete, of all jobs, tasks moved off their live slot, makespan;
   lexicographic) is no worse, counted as an improvement when better.
   Anytime: `on_step` sees the best plan after each step.

The search ends when the time is up, on `should_stop`, or when nothing is
left to gain: the lateness at its lower bound (every job as early as its
release and predecessors allow, resources aside) and no task off its live
slot. The lateness bound is what the reported gap measures against.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ortools.sat.python import cp_model

from app.domain.optimizer.model import (
    ModelTask,
    ScheduleModel,
    _keep_valid_slots,
    _shortlist,
    lateness_weight,
)
from app.domain.optimizer.neighbourhood import Frame, Slots, end_of, resolve
from app.domain.optimizer.routings import routed_duration
from app.domain.optimizer.scope import Scope
from app.domain.optimizer.start import greedy_first_plan
from app.domain.plan import Assignment, Plan

__all__ = ["Score", "Search", "plain_model", "search"]

# Tasks freed per neighbourhood: the start, and the bounds it adapts within.
_SIZE, _SMALLEST, _LARGEST = 120, 30, 400
# Seconds a neighbourhood's solve may take.
_STEP_SECONDS = 3.0
_POLL_SECONDS = 0.1


@dataclass(frozen=True, slots=True, order=True)
class Score:
    """Lower is better, compared in this order; lateness in weighted grid units.
    The lateness of the jobs the live plan had complete comes first: what was
    promised is not traded for new work."""

    promised_lateness: int
    weighted_lateness: int
    changes: int
    makespan: int


@dataclass(slots=True)
class Search:
    """Where the search stands: the best plan so far and how it got there."""

    slots: Slots
    score: Score
    first: Score
    first_seconds: float
    lateness_bound: int
    improvements: int = 0
    steps: int = 0
    # "time limit", "stopped" or "nothing left to gain"
    ending: str = "time limit"


def plain_model(plan: Plan, scope: Scope, now: datetime) -> ScheduleModel:
    """The scope's tasks as the greedy and the neighbourhoods see them, without
    a CP-SAT model of the whole: candidates (shortlisted), bounds, live slots, due times."""
    model = ScheduleModel.of_scope(scope)
    operator_load: dict[int, float] = {o: 0.0 for o in plan.operators}
    equipment_load: dict[int, float] = {e: 0.0 for e in plan.equipment}
    for task_id, (operators, equipment) in scope.candidates.items():
        task = plan.tasks[task_id]
        duration = scope.grid.units(task.duration_minutes)
        slot = plan.assignments.get(task_id)
        operators = _shortlist(
            operators, None if slot is None else slot.operator_id, operator_load, duration
        )
        equipment = _shortlist(
            equipment, None if slot is None else slot.equipment_id, equipment_load, duration
        )
        shortest, durations = routed_duration(task, equipment, scope.grid)
        t = ModelTask(task, shortest, None, operators, equipment=equipment, durations=durations)
        t.earliest, t.latest = scope.bounds[task_id]
        model.tasks[task_id] = t
    _keep_valid_slots(model, plan, now)
    kept_ends: dict[int, int] = {}
    for task_id, slot in scope.locked.items():
        if (kept := plan.tasks.get(task_id)) is not None:
            end = scope.grid.ceil(slot.end)
            kept_ends[kept.job_id] = max(end, kept_ends.get(kept.job_id, end))
    for job_id in {t.task.job_id for t in model.tasks.values()}:
        job = plan.jobs.get(job_id)
        if job is not None and job.due is not None:
            due = scope.grid.floor(job.due)
            model.dues[job_id] = (lateness_weight(job.priority), due, kept_ends.get(job_id, due))
    most = max((w * max(0, scope.horizon - d) for w, d, _ in model.dues.values()), default=0)
    model.unplaced_cost = most + 1
    return model


def frame_of(model: ScheduleModel, plan: Plan) -> Frame:
    successors: dict[int, list[int]] = {t: [] for t in model.tasks}
    job_tasks: dict[int, list[int]] = {}
    for task_id, t in model.tasks.items():
        job_tasks.setdefault(t.task.job_id, []).append(task_id)
        for p in t.task.predecessors:
            if p in model.tasks:
                successors[p].append(task_id)
    return Frame(model, successors, job_tasks, promised_jobs(plan))


def promised_jobs(plan: Plan) -> frozenset[int]:
    """The jobs the live plan has complete: every task with a slot."""
    jobs = {task.job_id for task in plan.tasks.values()}
    jobs -= {t.job_id for t in plan.tasks.values() if t.id not in plan.assignments}
    return frozenset(jobs)


def on_grid(model: ScheduleModel, placed: dict[int, Assignment]) -> Slots:
    return {
        task_id: (model.grid.ceil(a.start), a.operator_id, a.equipment_id)
        for task_id, a in placed.items()
    }


def as_assignments(model: ScheduleModel, slots: Slots) -> dict[int, Assignment]:
    """The slots to the minute: a task on its live slot's grid place keeps its live slot."""
    found: dict[int, Assignment] = {}
    for task_id, (s, o, e) in slots.items():
        t = model.tasks[task_id]
        live = t.current
        if live is not None and (model.grid.ceil(live.start), live.operator_id,
                                 live.equipment_id) == (s, o, e):  # fmt: skip
            found[task_id] = live
            continue
        begins = model.grid.at(s)
        found[task_id] = Assignment(
            task_id, o, e, begins, begins + timedelta(minutes=t.task.duration_on(e))
        )
    return found


def score_of(frame: Frame, slots: Slots) -> Score:
    model = frame.model
    ends: dict[int, int] = {}
    makespan = changes = 0
    for task_id, (s, o, e) in slots.items():
        t = model.tasks[task_id]
        end = s + t.duration_on(e)
        job_id = t.task.job_id
        ends[job_id] = max(end, ends.get(job_id, end))
        makespan = max(makespan, end)
        live = t.current
        if live is not None and (model.grid.ceil(live.start), live.operator_id,
                                 live.equipment_id) != (s, o, e):  # fmt: skip
            changes += 1
    late = {
        job_id: weight * max(0, ends.get(job_id, kept) - due, kept - due)
        for job_id, (weight, due, kept) in model.dues.items()
    }
    promised = sum(late[j] for j in frame.promised_jobs if j in late)
    return Score(promised, sum(late.values()), changes, makespan)


def lateness_bound(frame: Frame) -> int:
    """Σ weight * lateness were every task as early as its bounds and
    predecessors allow, resources aside: no plan does better."""
    model = frame.model
    finish: dict[int, int] = {}

    def earliest_end(task_id: int) -> int:
        stack = [task_id]
        while stack:
            current = stack[-1]
            t = model.tasks[current]
            waiting = [p for p in t.task.predecessors if p in model.tasks and p not in finish]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            ready = max([t.earliest, *(finish[p] for p in t.task.predecessors if p in finish)])
            finish[current] = ready + t.duration
        return finish[task_id]

    total = 0
    for job_id, (weight, due, kept) in model.dues.items():
        end = max([kept, *(earliest_end(t) for t in frame.job_tasks.get(job_id, ()))])
        total += weight * max(0, end - due)
    return total


def search(
    plan: Plan,
    scope: Scope,
    *,
    now: datetime,
    time_limit_s: float,
    workers: int,
    seed: int,
    started: float,
    on_step: Callable[[Search, ScheduleModel], None],
    should_stop: Callable[[], bool] | None,
) -> tuple[ScheduleModel, Search]:
    """The first plan, then neighbourhoods until the time is up (module docstring)."""
    model = plain_model(plan, scope, now)
    frame = frame_of(model, plan)
    promised = frozenset(
        task_id for task_id, t in model.tasks.items() if t.task.job_id in frame.promised_jobs
    )
    slots = on_grid(model, greedy_first_plan(model, promised))
    first = score_of(frame, slots)
    found = Search(slots, first, first, time.monotonic() - started, lateness_bound(frame))
    on_step(found, model)
    deadline = started + time_limit_s
    rng = random.Random(seed)
    size = _SIZE
    finished = threading.Event()
    solving: list[cp_model.CpSolver] = []
    if should_stop is not None:
        threading.Thread(target=_watch, args=(should_stop, finished, solving), daemon=True).start()
    while True:
        if should_stop is not None and should_stop():
            found.ending = "stopped"
            break
        if _nothing_left(found):
            found.ending = "nothing left to gain"
            break
        left = deadline - time.monotonic()
        if left < 0.2:
            break
        free = _neighbourhood(frame, found, rng, size)
        if not free:
            found.ending = "nothing left to gain"
            break
        step = resolve(
            frame,
            found.slots,
            free,
            seconds=min(_STEP_SECONDS, left),
            workers=workers,
            seed=seed + found.steps,
            stop=lambda solver: solving.__setitem__(slice(None), [solver]),
        )
        found.steps += 1
        if step is None:
            size = max(_SMALLEST, size * 3 // 4)
            on_step(found, model)
            continue
        trial = {**found.slots, **step}
        score = score_of(frame, trial)
        if score < found.score:
            found.slots, found.score = trial, score
            found.improvements += 1
            size = min(_LARGEST, size * 5 // 4)
        elif score == found.score:
            found.slots = trial  # sideways: the same score, another plan to start from
        on_step(found, model)
    finished.set()
    return model, found


def _nothing_left(found: Search) -> bool:
    return found.score.weighted_lateness <= found.lateness_bound and found.score.changes == 0


def _watch(
    should_stop: Callable[[], bool], finished: threading.Event, solving: list[cp_model.CpSolver]
) -> None:
    """One watcher for the whole search: stops the solve under way on
    `should_stop` (slept, not a timed wait: libfaketime never lets those time
    out). One per solve would pile up: small neighbourhoods solve in
    milliseconds."""
    while not finished.is_set():
        time.sleep(_POLL_SECONDS)
        if should_stop():
            if solving:
                solving[0].stop_search()
            return


# -- choosing a neighbourhood -----------------------------------------------------


def _neighbourhood(frame: Frame, found: Search, rng: random.Random, size: int) -> set[int]:
    """A late job and what blocks it, a moved task and its neighbours, or a
    random stretch of a few machines: `size` tasks at most."""
    model, slots = frame.model, found.slots
    late = _late_jobs(frame, slots)
    moved = [
        t for t, (s, o, e) in slots.items() if (c := model.tasks[t].current) is not None
        and (model.grid.ceil(c.start), c.operator_id, c.equipment_id) != (s, o, e)
    ]  # fmt: skip
    roll = rng.random()
    # Promised jobs made late (their live slots gone) first: what was promised
    # should not slip for the new work.
    slipped = [(j, w) for j, w in late if j in frame.promised_jobs]
    if slipped and roll < 0.4:
        late = slipped
    if late and roll < 0.6:
        weights = [w for _, w in late]
        (job_id,) = rng.choices([j for j, _ in late], weights=weights)
        seeds = list(frame.job_tasks[job_id])
    elif moved and roll < 0.85:
        seeds = [rng.choice(moved)]
    else:
        seeds = [rng.choice(list(slots))]
    return _around(frame, slots, seeds, size, rng)


def _late_jobs(frame: Frame, slots: Slots) -> list[tuple[int, int]]:
    model = frame.model
    found = []
    for job_id, (weight, due, kept) in model.dues.items():
        tasks = frame.job_tasks.get(job_id, ())
        end = max([kept, *(end_of(model, slots, t) for t in tasks if t in slots)])
        if end > due and any(t in slots for t in tasks):
            found.append((job_id, weight * (end - due)))
    return found


def _around(
    frame: Frame, slots: Slots, seeds: list[int], size: int, rng: random.Random
) -> set[int]:
    """The seeds, then the tasks on the resources they could use, nearest in
    time to the seeds first, until `size`."""
    model = frame.model
    free = {t for t in seeds if t in slots}
    low = min(max(0, model.tasks[t].earliest) for t in free) if free else 0
    high = max(end_of(model, slots, t) for t in free) if free else 0
    resources = {("o", o) for t in free for o in model.tasks[t].operators}
    resources |= {("e", e) for t in free for e in model.tasks[t].equipment}
    middle = (low + high) // 2
    nearby: list[tuple[int, float, int]] = []
    for task_id, (s, o, e) in slots.items():
        if task_id in free or not (("o", o) in resources or ("e", e) in resources):
            continue
        end = s + model.tasks[task_id].duration_on(e)
        if end < low - (high - low) or s > high + (high - low):
            continue
        nearby.append((abs(s - middle), rng.random(), task_id))
    nearby.sort()
    for _, _, task_id in nearby[: max(0, size - len(free))]:
        free.add(task_id)
    return free
