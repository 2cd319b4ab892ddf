"""Fewest changes to the live plan: the plant-scale search's second objective.

Weighted lateness first, then the tasks moved off their live slot, then the
makespan: in the search's score (which plan is kept) and in each
neighbourhood's CP-SAT objective (lexicographic by weights, `optimizer.neighbourhood`).
A plan that moves a live task to end sooner overall loses to one that leaves it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from clocks import PlantTime

from app.domain.optimizer import OptimizerSettings, optimize
from app.domain.optimizer.lns import frame_of, on_grid, plain_model, score_of
from app.domain.optimizer.neighbourhood import Frame, resolve
from app.domain.optimizer.scope import scope_of
from app.domain.plan import (
    Assignment,
    Equipment,
    Job,
    Operator,
    Plan,
    Task,
    TaskStatus,
    WeeklyShift,
)

MIDNIGHT = PlantTime.current().day()
ALWAYS = tuple(WeeklyShift(day, time(0), time(0)) for day in range(7))
ANNA = Operator(1, "Anna", {"welding": 2}, ALWAYS)
WELDER = Equipment(10, "Welder", "welder", frozenset({"welding"}))
# No due time: no lateness to gain, whatever moves.
ORDER = Job(100, "Order")
LIVE, NEW = 1, 2


def at(hour: float) -> datetime:
    return MIDNIGHT + timedelta(hours=hour)


def live_weld_and_a_new_one() -> Plan:
    """A live weld from 2:00 to 3:00 on Anna's welder, and a new one from the tray;
    both welds of the same order, neither waits for the other."""
    tasks = [
        Task(i, ORDER.id, f"Weld {i}", 60, "welding", 1, "welding", (), TaskStatus.SCHEDULED)
        for i in (LIVE, NEW)
    ]
    return Plan(
        equipment={WELDER.id: WELDER},
        operators={ANNA.id: ANNA},
        jobs={ORDER.id: ORDER},
        tasks={t.id: t for t in tasks},
        assignments={LIVE: Assignment(LIVE, ANNA.id, WELDER.id, at(2), at(3))},
    )


def frame(plan: Plan, now: datetime) -> Frame:
    scope = scope_of(plan, now=now, time_unit_minutes=5, horizon_days=None, pinned=frozenset())
    model = plain_model(plan, scope, now)
    return frame_of(model, plan)


def test_of_two_plans_as_late_the_one_that_moves_fewer_live_tasks_wins() -> None:
    """Moving the live weld to 0:00 ends the work an hour sooner, but changes
    the live plan: the plan that leaves it is the better one."""
    plan = live_weld_and_a_new_one()
    f = frame(plan, at(0))
    unchanged = on_grid(
        f.model,
        {
            LIVE: plan.assignments[LIVE],
            NEW: Assignment(NEW, ANNA.id, WELDER.id, at(0), at(1)),
        },
    )
    moved = on_grid(
        f.model,
        {
            LIVE: Assignment(LIVE, ANNA.id, WELDER.id, at(0), at(1)),
            NEW: Assignment(NEW, ANNA.id, WELDER.id, at(1), at(2)),
        },
    )

    kept, shorter = score_of(f, unchanged), score_of(f, moved)

    assert kept.weighted_lateness == shorter.weighted_lateness == 0
    assert (kept.changes, shorter.changes) == (0, 1)
    assert shorter.makespan < kept.makespan
    assert kept < shorter


def test_a_neighbourhood_with_no_lateness_to_gain_leaves_live_slots_where_they_are() -> None:
    """Both welds freed, the new one after the live one (3:00-4:00): the solve
    brings the new weld forward into the free time before 2:00 and leaves the
    live weld alone, though moving it too would end sooner."""
    plan = live_weld_and_a_new_one()
    f = frame(plan, at(0))
    grid = f.model.grid
    slots = on_grid(
        f.model,
        {
            LIVE: plan.assignments[LIVE],
            NEW: Assignment(NEW, ANNA.id, WELDER.id, at(3), at(4)),
        },
    )

    step = resolve(f, slots, {LIVE, NEW}, seconds=5, workers=1, seed=1)

    assert step is not None
    assert step[LIVE] == slots[LIVE]
    assert grid.at(step[NEW][0]) + timedelta(hours=1) <= at(2)


def test_the_search_keeps_live_slots_it_need_not_move() -> None:
    plan = live_weld_and_a_new_one()
    settings = OptimizerSettings(at_scale_tasks=0, time_limit_s=3, workers=1, time_unit_minutes=5)

    result = optimize(plan, now=at(0), settings=settings)

    assert result.search == "neighbourhoods"
    assert result.assignments[LIVE] == plan.assignments[LIVE]
    assert result.assignments[NEW].end <= at(2)
    assert result.changes == 0
