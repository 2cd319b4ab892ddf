"""The optimizer at plant scale: a first plan, then neighbourhoods (`optimizer.lns`).

Plant scale starts at `OptimizerSettings.at_scale_tasks` open tasks; these
tests lower it so small plants take the same path, where what is right can be seen.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta

from clocks import PlantTime

from app.domain.conflicts import ConflictType, Severity
from app.domain.optimizer import (
    OptimizationResult,
    OptimizerSettings,
    SolveStatus,
    optimize,
)
from app.domain.plan import (
    Alternative,
    Assignment,
    Equipment,
    Interval,
    Job,
    Operator,
    Plan,
    Task,
    TaskStatus,
    WeeklyShift,
)
from app.domain.plants.demo_plant import demo_plant
from app.domain.plants.plant_data import as_plan
from app.domain.validation import validate_plan

# Midnight today (UTC): with round-the-clock shifts any day will do.
MIDNIGHT = PlantTime.current().day()
ALWAYS = tuple(WeeklyShift(day, time(0), time(0)) for day in range(7))
ANNA = Operator(1, "Anna", {"welding": 2}, ALWAYS)
BEN = Operator(2, "Ben", {"welding": 2}, ALWAYS)
WELDER = Equipment(10, "Welder", "welder", frozenset({"welding"}))
WELDER_2 = Equipment(11, "Welder 2", "welder", frozenset({"welding"}))
ORDER = Job(100, "Order")


def at(hour: float) -> datetime:
    return MIDNIGHT + timedelta(hours=hour)


def weld(task_id: int, job_id: int, predecessors: tuple[int, ...] = ()) -> Task:
    return Task(
        task_id, job_id, f"Weld {task_id}", 60, "welding", 1, "welding", predecessors,
        TaskStatus.SCHEDULED,
    )  # fmt: skip


def run(plan: Plan, now: datetime, seconds: float = 5) -> OptimizationResult:
    settings = OptimizerSettings(
        at_scale_tasks=0, time_limit_s=seconds, workers=1, time_unit_minutes=5
    )
    result = optimize(plan, now=now, settings=settings)
    assert result.offered and result.search == "neighbourhoods", result
    proposal = dataclasses.replace(plan, assignments=dict(result.assignments))
    errors = [c for c in validate_plan(proposal, now=now) if c.severity is Severity.ERROR]
    assert errors == []
    return result


def late_rush_order() -> Plan:
    """Anna's welder: order 100 (no due time) from 1:00 to 5:00, then the rush
    order's weld, due at 3:00, from 5:00: three hours late."""
    rush = Job(200, "Rush order", priority=3, due=at(3))
    tasks = [weld(i, ORDER.id, (i - 1,) if i > 1 else ()) for i in range(1, 5)]
    live = [Assignment(i, ANNA.id, WELDER.id, at(i), at(i + 1)) for i in range(1, 5)]
    live.append(Assignment(20, ANNA.id, WELDER.id, at(5), at(6)))
    return Plan(
        equipment={WELDER.id: WELDER},
        operators={ANNA.id: ANNA},
        jobs={ORDER.id: ORDER, rush.id: rush},
        tasks={t.id: t for t in [*tasks, weld(20, rush.id)]},
        assignments={a.task_id: a for a in live},
    )


def test_a_late_job_gets_earlier_and_only_what_must_move_moves() -> None:
    plan = late_rush_order()

    result = run(plan, now=at(0))

    rush = result.assignments[20]
    assert rush.end <= at(3)  # on time: the free hour before order 100, or in between
    assert result.first_plan["weighted_lateness_minutes"] > 0
    assert result.weighted_lateness_minutes == 0
    # Order 100 keeps its slots but at most the one the rush weld takes.
    kept = sum(result.assignments[t] == plan.assignments[t] for t in range(1, 5))
    assert kept >= 3
    assert result.improvements >= 1


def test_nothing_moves_when_nothing_needs_to() -> None:
    """Every job on time in a valid live plan: the draft is the live plan."""
    tasks = [weld(i, ORDER.id) for i in range(1, 7)]
    live = {
        t.id: Assignment(t.id, ANNA.id if t.id % 2 else BEN.id,
                         WELDER.id if t.id % 2 else WELDER_2.id, at(t.id), at(t.id + 1))
        for t in tasks
    }  # fmt: skip
    due = Job(ORDER.id, "Order", priority=1, due=at(12))
    plan = Plan(
        equipment={WELDER.id: WELDER, WELDER_2.id: WELDER_2},
        operators={ANNA.id: ANNA, BEN.id: BEN},
        jobs={ORDER.id: due},
        tasks={t.id: t for t in tasks},
        assignments=live,
    )

    result = run(plan, now=at(0))

    assert dict(result.assignments) == live
    assert result.changes == 0 and result.ending == "nothing left to gain"


def test_a_plant_with_its_tray_is_all_placed_by_the_rules_and_never_worse_than_its_first_plan() -> (
    None
):
    """The small demo plant with every other slot taken away (to the tray):
    shifts in a real zone, time off, downtime, machines down."""
    start = PlantTime.current().day()
    plan = as_plan(demo_plant("small", start=start))
    plan = dataclasses.replace(plan, assignments=dict(list(plan.assignments.items())[::2]))

    result = run(plan, now=start, seconds=6)

    assert result.status is SolveStatus.FEASIBLE
    open_tasks = {
        t.id for t in plan.tasks.values() if t.status in (TaskStatus.PENDING, TaskStatus.SCHEDULED)
    }
    assert result.placed | result.unplaceable.keys() >= open_tasks
    assert len(result.placed) > 0.9 * len(open_tasks)
    first = result.first_plan
    # Never worse than the first plan: the jobs the live plan had complete
    # first, then all jobs.
    minutes = "weighted_lateness_minutes"
    best = (first[f"best_promised_{minutes}"], first[f"best_{minutes}"])
    assert best <= (first[f"promised_{minutes}"], first[minutes])
    assert result.gap is None or 0 <= result.gap <= 1


def test_progress_starts_with_the_first_plan_and_ticks_after_it() -> None:
    seen = []
    settings = OptimizerSettings(at_scale_tasks=1, time_limit_s=3, workers=1, time_unit_minutes=5)
    optimize(late_rush_order(), now=at(0), settings=settings, on_progress=seen.append)

    assert seen[0].phase == "first plan" and seen[0].solutions == 1
    assert seen[0].first_weighted_lateness_minutes == seen[0].weighted_lateness_minutes > 0
    assert all(p.phase == "improving" for p in seen[1:])
    assert seen[-1].weighted_lateness_minutes == 0 and seen[-1].improvements >= 1


def test_a_stop_request_ends_the_search_with_the_best_plan_so_far() -> None:
    settings = OptimizerSettings(at_scale_tasks=1, time_limit_s=60, workers=1, time_unit_minutes=5)
    start = PlantTime.current().day()
    plan = as_plan(demo_plant("small", start=start))
    plan = dataclasses.replace(plan, assignments={})

    result = optimize(plan, now=start, settings=settings, should_stop=lambda: True)

    assert result.offered and result.ending == "stopped"
    assert len(result.placed) > 0.9 * len(plan.tasks)


# -- alternative routings at plant scale --------------------------------------------

OLD_MILL = Equipment(20, "Old mill", "mill", frozenset({"milling"}))
FAST_MILL = Equipment(21, "5-axis mill", "mill", frozenset({"milling"}))
MILLERS = {o.id: dataclasses.replace(o, skills={"milling": 2}) for o in (ANNA, BEN)}


def mill(task_id: int, job_id: int, minutes: int, *routings: Alternative) -> Task:
    return Task(
        task_id, job_id, f"Mill {task_id}", minutes, "milling", 1, "milling",
        status=TaskStatus.SCHEDULED, alternatives=routings,
    )  # fmt: skip


def mills(*, fast_down: bool = False) -> dict[int, Equipment]:
    fast = FAST_MILL
    if fast_down:  # broken down for the next twelve hours
        fast = dataclasses.replace(fast, downtime=(Interval(at(0), at(12)),))
    return {OLD_MILL.id: OLD_MILL, fast.id: fast}


def routing_errors(plan: Plan, result: OptimizationResult, now: datetime) -> list[str]:
    proposal = dataclasses.replace(plan, assignments=dict(result.assignments))
    return [
        c.message
        for c in validate_plan(proposal, now=now)
        if c.type is ConflictType.DURATION_MISMATCH
    ]


def test_a_task_moved_to_a_slower_machine_takes_that_machines_time() -> None:
    """30 minutes on the 5-axis mill, 2 hours on the old one; the 5-axis mill
    breaks down under its live slot: the task moves to the old mill, for 2 hours."""
    rush = Job(200, "Rush order", priority=3, due=at(1))
    task = mill(1, rush.id, 30, Alternative(OLD_MILL.id, 120))
    plan = Plan(
        equipment=mills(fast_down=True),
        operators=MILLERS,
        jobs={rush.id: rush},
        tasks={task.id: task},
        assignments={1: Assignment(1, ANNA.id, FAST_MILL.id, at(1), at(1.5))},
    )

    result = run(plan, now=at(0), seconds=3)

    moved = result.assignments[1]
    assert moved.equipment_id == OLD_MILL.id
    assert moved.end - moved.start == timedelta(hours=2)
    assert routing_errors(plan, result, at(0)) == []
    assert result.weighted_lateness_minutes == 4 * 60  # 0:00-2:00, due 1:00, weight 4


def test_at_plant_scale_the_faster_machine_when_it_finishes_sooner() -> None:
    """The old mill is free at once (2 hours), the 5-axis mill after half an
    hour (30 minutes): the task finishes soonest on the 5-axis mill, on time."""
    other = Job(300, "Other order")
    rush = Job(200, "Rush order", priority=3, due=at(1.5))
    busy = mill(2, other.id, 30)
    task = mill(1, rush.id, 120, Alternative(FAST_MILL.id, 30))
    plan = Plan(
        equipment=mills(),
        operators=MILLERS,
        jobs={rush.id: rush, other.id: other},
        tasks={task.id: task, busy.id: busy},
        assignments={2: Assignment(2, BEN.id, FAST_MILL.id, at(0), at(0.5))},
    )

    result = run(plan, now=at(0), seconds=3)

    placed = result.assignments[1]
    assert (placed.equipment_id, placed.end - placed.start) == (FAST_MILL.id, timedelta(minutes=30))
    assert placed.end <= at(1.5) and result.weighted_lateness_minutes == 0
    assert result.assignments[2] == plan.assignments[2]
    assert routing_errors(plan, result, at(0)) == []
