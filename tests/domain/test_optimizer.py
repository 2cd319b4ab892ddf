from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from ortools.sat.python import cp_model
from strategies import plans

from app.domain.conflicts import Severity
from app.domain.optimizer import (
    OptimizationResult,
    OptimizerSettings,
    Progress,
    SolveStatus,
    model as optimizer_model,
    optimize,
    solve as optimizer,
    start as optimizer_start,
)
from app.domain.optimizer.model import ScheduleModel, build_model
from app.domain.optimizer.start import greedy_slots
from app.domain.plan import (
    Assignment,
    Equipment,
    EquipmentStatus,
    Interval,
    Job,
    Operator,
    Plan,
    Task,
    TaskStatus,
    WeeklyShift,
)
from app.domain.plants.demo_plant import demo_plant
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.domain.plants.plant_data import as_plan
from app.domain.validation import validate_plan

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)
ALWAYS = tuple(WeeklyShift(day, time(0), time(0)) for day in range(7))
WEEKDAYS_6_TO_14 = tuple(WeeklyShift(day, time(6), time(14)) for day in range(5))
QUICK = OptimizerSettings(time_limit_s=5, workers=1)

ANNA = Operator(1, "Anna", {"welding": 4, "painting": 2}, ALWAYS)
BEN = Operator(2, "Ben", {"welding": 1, "painting": 2}, ALWAYS)
WELDER = Equipment(10, "Welder", "welder", frozenset({"welding"}))
BOOTH = Equipment(11, "Paint booth", "booth", frozenset({"painting"}))
WELDER_2 = Equipment(12, "Welder 2", "welder", frozenset({"welding"}))
ORDER = Job(100, "Order")


def at(hour: float) -> datetime:
    return MONDAY + timedelta(hours=hour)


def weld(
    task_id: int,
    minutes: int = 60,
    level: int = 1,
    *,
    job_id: int = ORDER.id,
    predecessors: tuple[int, ...] = (),
    status: TaskStatus = TaskStatus.PENDING,
) -> Task:
    name = f"Weld {task_id}"
    return Task(task_id, job_id, name, minutes, "welding", level, "welding", predecessors, status)


def paint(task_id: int, minutes: int = 30, *, job_id: int = ORDER.id, **fields: object) -> Task:
    task = Task(task_id, job_id, f"Paint {task_id}", minutes, "painting", 1, "painting")
    return dataclasses.replace(task, **fields)


def plant(
    *tasks: Task,
    operators: tuple[Operator, ...] = (ANNA, BEN),
    equipment: tuple[Equipment, ...] = (WELDER, WELDER_2, BOOTH),
    jobs: tuple[Job, ...] = (ORDER,),
    assignments: tuple[Assignment, ...] = (),
) -> Plan:
    return Plan(
        equipment={e.id: e for e in equipment},
        operators={o.id: o for o in operators},
        jobs={j.id: j for j in jobs},
        tasks={t.id: t for t in tasks},
        assignments={a.task_id: a for a in assignments},
    )


def solve(plan: Plan, now: datetime = MONDAY, **overrides: object) -> OptimizationResult:
    result = optimize(plan, now=now, settings=dataclasses.replace(QUICK, **overrides))
    assert result.offered, result
    conflicts = validate_plan(plan_with(plan, result), now=now)
    assert [c for c in conflicts if c.severity is Severity.ERROR] == []
    assert list(result.conflicts) == conflicts
    return result


def plan_with(plan: Plan, result: OptimizationResult) -> Plan:
    return dataclasses.replace(plan, assignments=dict(result.assignments))


def starts(result: OptimizationResult) -> dict[int, datetime]:
    return {task_id: a.start for task_id, a in result.assignments.items()}


# -- resources -------------------------------------------------------------------


def test_only_the_skilled_operator_does_the_hard_welds() -> None:
    result = solve(plant(weld(1, level=3), weld(2, level=3)))

    assert {a.operator_id for a in result.assignments.values()} == {ANNA.id}
    assert sorted(starts(result).values()) == [at(0), at(1)]
    assert result.makespan_minutes == 120


def test_a_task_goes_to_equipment_with_the_capability() -> None:
    result = solve(plant(paint(1), paint(2)))

    assert {a.equipment_id for a in result.assignments.values()} == {BOOTH.id}
    assert result.makespan_minutes == 60


def test_welds_without_constraints_run_side_by_side() -> None:
    result = solve(plant(weld(1), weld(2)))

    assert starts(result) == {1: at(0), 2: at(0)}
    assert result.makespan_minutes == 60


def test_a_task_nobody_can_do_is_left_out_and_the_rest_is_planned() -> None:
    result = solve(plant(weld(1, level=5), weld(2), weld(3, predecessors=(1,))))

    assert set(result.unplaceable) == {1, 3}
    assert "welding (level 5)" in result.unplaceable[1]
    assert set(result.assignments) == {2}


def test_interchangeable_operators_are_handed_out_keeping_the_live_ones() -> None:
    crew = tuple(Operator(i, f"Crew {i}", {"welding": 1}, ALWAYS) for i in (1, 2, 3))
    live = Assignment(1, 3, WELDER.id, at(0), at(1))
    tasks = (weld(1, status=TaskStatus.SCHEDULED), weld(2), weld(3))
    result = solve(plant(*tasks, operators=crew, equipment=(WELDER, WELDER_2), assignments=(live,)))

    assert result.assignments[1].operator_id == 3
    assert result.makespan_minutes == 120


# -- calendars -------------------------------------------------------------------


def test_a_task_waits_for_the_shift() -> None:
    day_shift = dataclasses.replace(ANNA, weekly_shifts=WEEKDAYS_6_TO_14)
    result = solve(plant(weld(1), operators=(day_shift,)))

    assert starts(result) == {1: at(6)}
    assert result.makespan_minutes == 7 * 60


def test_a_task_fits_inside_one_shift() -> None:
    day_shift = dataclasses.replace(ANNA, weekly_shifts=WEEKDAYS_6_TO_14)
    result = solve(plant(weld(1, 5 * 60), weld(2, 5 * 60), operators=(day_shift,)))

    # 11:00-16:00 would run past the shift: the second weld waits for Tuesday.
    assert sorted(starts(result).values()) == [at(6), at(24 + 6)]


def test_a_task_longer_than_any_shift_cannot_be_placed() -> None:
    day_shift = dataclasses.replace(ANNA, weekly_shifts=WEEKDAYS_6_TO_14)
    result = optimize(plant(weld(1, 9 * 60), operators=(day_shift,)), now=MONDAY, settings=QUICK)

    assert result.assignments == {} and set(result.unplaceable) == {1}


def test_time_off_sends_the_work_to_the_other_operator_or_later() -> None:
    away = dataclasses.replace(ANNA, time_off=(Interval(at(0), at(10)),))
    # Only Anna welds at level 3: the weld waits until she is back.
    assert starts(solve(plant(weld(1, level=3), operators=(away, BEN)))) == {1: at(10)}
    # Ben can do an easy weld right away.
    result = solve(plant(weld(1), operators=(away, BEN)))
    assert result.assignments[1].operator_id == BEN.id
    assert starts(result) == {1: at(0)}


def test_downtime_pushes_the_task_past_it() -> None:
    serviced = dataclasses.replace(WELDER, downtime=(Interval(at(0), at(2)),))
    result = solve(plant(weld(1, 90), equipment=(serviced,)))

    assert starts(result) == {1: at(2)}


def test_a_task_fits_between_downtimes() -> None:
    serviced = dataclasses.replace(
        WELDER, downtime=(Interval(at(1), at(2)), Interval(at(3), at(5)))
    )
    result = solve(plant(weld(1, 90), weld(2, 60), equipment=(serviced,)))

    # 0-1 and 2-3 fit the hour-long weld, the 90-minute one waits until 5:00.
    assert result.assignments[1].start == at(5)
    assert result.assignments[2].start in (at(0), at(2))


def test_equipment_down_until_expected_back() -> None:
    broken = dataclasses.replace(WELDER, status=EquipmentStatus.DOWN, expected_back=at(3))
    assert starts(solve(plant(weld(1), equipment=(broken,)))) == {1: at(3)}

    gone = dataclasses.replace(broken, expected_back=None)
    result = solve(plant(weld(1), equipment=(gone, WELDER_2)))
    assert result.assignments[1].equipment_id == WELDER_2.id
    result = optimize(plant(weld(1), equipment=(gone,)), now=MONDAY, settings=QUICK)
    assert set(result.unplaceable) == {1}


# -- time and order --------------------------------------------------------------


def test_predecessors_across_jobs() -> None:
    other = Job(200, "Other")
    first = weld(1)
    result = solve(plant(first, paint(2, job_id=other.id, predecessors=(1,)), jobs=(ORDER, other)))

    assert starts(result) == {1: at(0), 2: at(1)}
    assert result.makespan_minutes == 90


def test_nothing_starts_before_release_or_now() -> None:
    released = dataclasses.replace(ORDER, release=at(4))
    assert starts(solve(plant(weld(1), jobs=(released,)))) == {1: at(4)}
    # With 5-minute units, 01:02 rounds up to 01:05.
    result = solve(plant(weld(1, 7)), now=at(1 + 2 / 60), time_unit_minutes=5)
    assert result.assignments[1].start == at(1 + 5 / 60)
    assert result.assignments[1].end == at(1 + 12 / 60)


def test_a_pinned_task_stays_and_the_others_route_around_it() -> None:
    pinned = Assignment(1, ANNA.id, WELDER.id, at(1), at(2))
    tasks = (weld(1, status=TaskStatus.SCHEDULED), weld(2, 90))
    result = solve(plant(*tasks, equipment=(WELDER,), assignments=(pinned,)), pinned=frozenset({1}))

    assert result.assignments[1] == pinned
    assert result.assignments[2].start == at(2)
    assert result.placed == {2}


def test_unpinned_scheduled_tasks_move() -> None:
    late = Assignment(1, ANNA.id, WELDER.id, at(5), at(6))
    result = solve(plant(weld(1, status=TaskStatus.SCHEDULED), assignments=(late,)))

    assert result.assignments[1].start == at(0)


def test_in_progress_and_done_tasks_stay() -> None:
    running = Assignment(1, ANNA.id, WELDER.id, at(0), at(2))
    done = Assignment(2, BEN.id, WELDER_2.id, at(0), at(1.5))
    tasks = (
        weld(1, 120, status=TaskStatus.IN_PROGRESS),
        weld(2, 90, status=TaskStatus.DONE),
        weld(3, 60, level=3),
        weld(4, 120, predecessors=(2,)),
    )
    result = solve(plant(*tasks, assignments=(running, done)), now=at(1))

    assert (result.assignments[1], result.assignments[2]) == (running, done)
    # Only Anna welds at level 3 and she is busy until 2:00; the successor of
    # the done weld waits for its end, on the free welder.
    assert starts(result)[3] == at(2)
    assert starts(result)[4] == at(1.5)


def test_the_high_priority_job_is_on_time_when_not_both_can_be() -> None:
    urgent = Job(1, "Urgent", priority=5, due=at(1))
    routine = Job(2, "Routine", priority=0, due=at(1))
    tasks = (weld(1, job_id=urgent.id), weld(2, job_id=routine.id))
    result = solve(plant(*tasks, equipment=(WELDER,), jobs=(urgent, routine)))

    assert starts(result) == {1: at(0), 2: at(1)}
    assert result.weighted_lateness_minutes == 60

    flipped = (dataclasses.replace(urgent, priority=0), dataclasses.replace(routine, priority=5))
    result = solve(plant(*tasks, equipment=(WELDER,), jobs=flipped))
    assert starts(result) == {1: at(1), 2: at(0)}


def test_lateness_comes_before_makespan() -> None:
    # Welding X first and painting it while Y welds would end everything at
    # 3:00, with Y an hour late; Y first is on time and ends at 4:00.
    x, y = Job(1, "X"), Job(2, "Y", due=at(1))
    tasks = (
        weld(1, job_id=x.id),
        paint(2, 120, job_id=x.id, predecessors=(1,)),
        weld(3, job_id=y.id),
    )
    result = solve(plant(*tasks, equipment=(WELDER, BOOTH), jobs=(x, y)))

    assert starts(result) == {3: at(0), 1: at(1), 2: at(2)}
    assert (result.weighted_lateness_minutes, result.makespan_minutes) == (0, 240)


def test_tasks_in_a_dependency_cycle_are_left_out() -> None:
    result = solve(plant(weld(1, predecessors=(2,)), weld(2, predecessors=(1,)), weld(3)))

    assert result.unplaceable == {
        1: "in a dependency cycle: 2 → 1 → 2",
        2: "in a dependency cycle: 2 → 1 → 2",
    }
    assert set(result.assignments) == {3}


def not_all_fit() -> Plan:
    """Both welds must end before the kept one at 1:00 starts, on one welder."""
    kept = Assignment(3, ANNA.id, WELDER.id, at(1), at(2))
    tasks = (
        weld(1, 40),
        weld(2, 40),
        weld(3, status=TaskStatus.IN_PROGRESS, predecessors=(1, 2)),
        weld(4, 30, predecessors=(2,)),
    )
    return plant(*tasks, equipment=(WELDER,), assignments=(kept,))


def test_when_not_all_fit_as_many_as_possible_are_placed() -> None:
    result = solve(not_all_fit(), now=at(0))

    # Leaving out weld 2 would cost its successor too.
    assert result.placed == {2, 4}
    assert result.unplaceable == {1: "does not fit with the rest of the plan"}
    assert result.status is SolveStatus.OPTIMAL


def test_a_hint_that_wrongly_places_every_task_costs_time_not_the_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hint placing every task skips the placement solve; when the model
    proves not all fit after all, the placement solve runs anyway."""

    def everything_at_once(model: ScheduleModel) -> dict[int, Assignment]:
        return {
            task_id: Assignment(task_id, ANNA.id, WELDER.id, at(0), at(0.5))
            for task_id in model.tasks
        }

    monkeypatch.setattr(optimizer_model, "greedy_slots", everything_at_once)
    result = solve(not_all_fit(), now=at(0))

    assert result.placed == {2, 4}
    assert result.unplaceable == {1: "does not fit with the rest of the plan"}


# -- the solve -------------------------------------------------------------------


def test_progress_is_reported_on_each_better_solution(ft06_text: str) -> None:
    plan = as_plan(to_plant_data(parse_jssp(ft06_text, name="ft06"), start=MONDAY))
    seen: list[Progress] = []
    optimize(plan, now=MONDAY, settings=QUICK, on_progress=seen.append)

    assert seen[-1].makespan_minutes == 55 and seen[-1].gap == 0
    spans = [p.makespan_minutes for p in seen]
    assert spans == sorted(spans, reverse=True)


def test_a_stop_request_ends_the_solve_early() -> None:
    # A random 15 x 15 job shop: far from proved optimal after a few seconds.
    rng = random.Random(15)
    lines = ["15 15"]
    for _ in range(15):
        machines = rng.sample(range(15), 15)
        lines.append(" ".join(f"{m} {rng.randint(1, 99)}" for m in machines))
    shop = parse_jssp("\n".join(lines), name="random")
    plan = as_plan(to_plant_data(shop, start=MONDAY))
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 2

    result = optimize(
        plan,
        now=MONDAY,
        settings=dataclasses.replace(QUICK, time_limit_s=20),
        should_stop=should_stop,
    )
    assert result.solve_seconds < 5
    assert result.status in (SolveStatus.FEASIBLE, SolveStatus.UNKNOWN)


def test_ft06_reaches_its_optimum(ft06_text: str) -> None:
    plan = as_plan(to_plant_data(parse_jssp(ft06_text, name="ft06"), start=MONDAY))
    result = solve(plan)

    assert result.status is SolveStatus.OPTIMAL
    assert result.makespan_minutes == 55
    # Operators are a pool handed out after the solve: none is double-booked.
    assert len({a.operator_id for a in result.assignments.values()}) > 1


def test_the_small_demo_plant_gets_a_valid_proposal() -> None:
    # Shifts in a real zone, time off, downtime, machines down, 150 tasks: all at once.
    start = datetime(2026, 3, 2, tzinfo=UTC)
    plan = as_plan(demo_plant("small", start=start))
    result = solve(plan, now=start, time_limit_s=8, time_unit_minutes=5)

    assert len(result.placed) + len(result.unplaceable) == len(plan.tasks)
    assert len(result.placed) > 0.9 * len(plan.tasks)


def test_an_optional_models_hint_is_a_whole_plan() -> None:
    # The live slot of weld 1 is kept; weld 2 and its successor are placed greedily.
    live = Assignment(1, ANNA.id, WELDER.id, at(1), at(2))
    tasks = (weld(1, status=TaskStatus.SCHEDULED), weld(2), paint(3, predecessors=(2,)))
    plan = plant(*tasks, assignments=(live,))
    model = build_model(
        plan, now=at(0), time_unit_minutes=5, horizon_days=None, pinned=frozenset(),
        optional=True,
    )  # fmt: skip
    assert model.placed is not None
    model.model.maximize(model.placed)
    solver = cp_model.CpSolver()
    solver.parameters.fix_variables_to_their_hinted_value = True
    solver.parameters.num_workers = 1

    assert solver.solve(model.model) == cp_model.OPTIMAL
    assert solver.value(model.placed) == 3


def booked_solid(*, urgent_due: datetime | None) -> Plan:
    """Anna's one welder booked from 1:00 to 10:00 (job 100, no due time), and a
    tray weld of job 200 that could go first."""
    rush = Job(200, "Rush order", priority=3, due=urgent_due)
    live = [Assignment(i, ANNA.id, WELDER.id, at(i), at(i + 1)) for i in range(1, 10)]
    tasks = [weld(i, status=TaskStatus.SCHEDULED) for i in range(1, 10)]
    return plant(
        *tasks, weld(20, job_id=rush.id),
        operators=(ANNA,), equipment=(WELDER,), jobs=(ORDER, rush), assignments=tuple(live),
    )  # fmt: skip


def start_plan(plan: Plan, now: datetime) -> dict[int, Assignment]:
    model = build_model(
        plan, now=now, time_unit_minutes=5, horizon_days=None, pinned=frozenset(), optional=True
    )
    return greedy_slots(model)


def test_the_starting_plan_keeps_the_live_one_when_nothing_forces_a_change() -> None:
    plan = booked_solid(urgent_due=None)
    start = start_plan(plan, now=at(1))

    assert {t: start[t] for t in range(1, 10)} == plan.assignments
    assert start[20].start == at(10)


def test_the_starting_plan_lets_a_due_task_push_the_others_on() -> None:
    """Held live slots would put the rush weld behind all nine, 8 h late; the
    plan where it pushes the ones after the first on by an hour is the better
    start (the solver may still put it first)."""
    plan = booked_solid(urgent_due=at(2))
    start = start_plan(plan, now=at(1))

    assert start[20].start == at(2)
    assert start[1] == plan.assignments[1]
    assert [start[t].start for t in range(2, 10)] == [at(t + 1) for t in range(2, 10)]


def test_held_slots_give_way_to_a_task_that_would_miss_its_due_time() -> None:
    """The start plan that holds live slots: the rush weld (90 min, due 3:00)
    would wait until 10:00 around them, so it takes 0:00-1:30 and the one weld
    it pushes out goes around the others; the rest stay where they are."""
    plan = booked_solid(urgent_due=at(3))
    plan = dataclasses.replace(plan, tasks={**plan.tasks, 20: weld(20, 90, job_id=200)})
    model = build_model(
        plan, now=at(0), time_unit_minutes=5, horizon_days=2, pinned=frozenset(), optional=True
    )
    held = optimizer_start._passes(model, None, optimizer_start._deadlines(model))

    assert (held[20].start, held[20].end) == (at(0), at(1.5))
    assert held[1].start == at(10)
    assert all(held[t] == plan.assignments[t] for t in range(2, 10))


def test_with_no_time_to_search_a_large_plan_gets_its_starting_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The solver finding nothing in its time (a busy machine, a short limit),
    the run still offers the starting plan, checked like any answer."""
    monkeypatch.setattr(optimizer, "_LARGE", 10)
    monkeypatch.setattr(optimizer._Run, "_solve", lambda *_: (cp_model.UNKNOWN, None))
    start = datetime(2026, 3, 2, tzinfo=UTC)
    plan = as_plan(demo_plant("small", start=start))
    half = dict(list(plan.assignments.items())[::2])
    plan = dataclasses.replace(plan, assignments=half)

    result = optimize(
        plan, now=start, settings=OptimizerSettings(time_limit_s=5, time_unit_minutes=5)
    )

    assert result.status is SolveStatus.FEASIBLE and result.solutions == 0
    assert len(result.placed) > 0.9 * len(plan.tasks)
    errors = [c for c in result.conflicts if c.severity is Severity.ERROR]
    assert not [c for c in errors if set(c.task_ids) & result.placed]


def test_a_large_partly_valid_plan_starts_from_its_live_slots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a large plant does: the optional model, hinted with the live plan.
    monkeypatch.setattr(optimizer, "_LARGE", 10)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    plan = as_plan(demo_plant("small", start=start))
    first = solve(plan, now=start, time_limit_s=4, time_unit_minutes=5)
    # Half of the tasks keep a (valid) slot, the rest must be placed anew.
    half = dict(list(first.assignments.items())[::2])
    result = solve(dataclasses.replace(plan, assignments=half), now=start, time_limit_s=6,
                   time_unit_minutes=5)  # fmt: skip

    assert len(result.placed) + len(result.unplaceable) == len(plan.tasks)
    assert len(result.placed) > 0.9 * len(plan.tasks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_what_is_offered_passes_validation(plan: Plan) -> None:
    now = datetime(2025, 3, 29, tzinfo=UTC)
    result = optimize(plan, now=now, settings=OptimizerSettings(time_limit_s=2, workers=1))

    assert result.status is not SolveStatus.REJECTED, result.conflicts
    if result.offered:
        for conflict in validate_plan(plan_with(plan, result), now=now):
            if conflict.severity is Severity.ERROR:
                assert not set(conflict.task_ids) & result.placed, conflict
        assert all(result.assignments[t].start >= now for t in result.placed)


def test_no_answer_in_the_time_still_offers_the_first_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A machine too busy for the solver to find anything in its limit: the
    # dispatching rule's plan is offered, not an empty proposal.
    start = datetime(2026, 3, 2, tzinfo=UTC)
    plan = as_plan(demo_plant("small", start=start))
    seen: list[Progress] = []
    heard_before_solving: list[list[str]] = []

    def finds_nothing(*_: object, **__: object) -> tuple[None, SolveStatus]:
        heard_before_solving.append([p.phase for p in seen])
        return None, SolveStatus.UNKNOWN

    monkeypatch.setattr(optimizer._Run, "solve", finds_nothing)
    settings = dataclasses.replace(QUICK, time_limit_s=8, time_unit_minutes=5)
    result = optimize(plan, now=start, settings=settings, on_progress=seen.append)

    assert result.status is SolveStatus.FEASIBLE and result.solutions == 0
    # The panel hears of the first plan before the solver starts, and of the
    # plan offered, with its lateness, when the solver found none.
    assert heard_before_solving[0] == ["first plan"]
    assert {p.phase for p in seen} == {"first plan"}
    assert seen[-1].weighted_lateness_minutes == result.weighted_lateness_minutes
    assert len(result.placed) > 0.9 * len(plan.tasks)
    errors = [c for c in result.conflicts if c.severity is Severity.ERROR]
    assert not [c for c in errors if set(c.task_ids) & result.placed]
