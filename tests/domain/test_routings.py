"""Alternative routings: a task's duration per equipment in validation and the optimizer."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta

import pytest

from app.domain.conflicts import ConflictType, Severity
from app.domain.optimizer import OptimizerSettings, optimize
from app.domain.plan import (
    Alternative,
    Assignment,
    Equipment,
    Job,
    Operator,
    Plan,
    Task,
    TaskStatus,
    WeeklyShift,
)
from app.domain.validation import validate_assignment, validate_plan

NOW = datetime(2025, 3, 3, 6, tzinfo=UTC)
ALWAYS = tuple(WeeklyShift(day, time(0), time(0)) for day in range(7))
ANNA = Operator(1, "Anna", {"milling": 3}, ALWAYS)
BEN = Operator(2, "Ben", {"milling": 3}, ALWAYS)
OLD_MILL = Equipment(10, "Old mill", "mill", frozenset({"milling"}))
FAST_MILL = Equipment(11, "5-axis mill", "mill", frozenset({"milling"}))
ORDER = Job(100, "Order", due=NOW + timedelta(hours=8))
QUICK = OptimizerSettings(time_limit_s=5, workers=1)


def mill_task(task_id: int, *, fast: int | None = 45, **fields: object) -> Task:
    """120 minutes on any mill, `fast` on the 5-axis one (None: no routing)."""
    task = Task(task_id, ORDER.id, f"Mill {task_id}", 120, "milling", 1, "milling")
    routings = () if fast is None else (Alternative(FAST_MILL.id, fast),)
    return dataclasses.replace(task, alternatives=routings, **fields)


def plan_of(*tasks: Task, assignments: tuple[Assignment, ...] = (), job: Job = ORDER) -> Plan:
    return Plan(
        equipment={e.id: e for e in (OLD_MILL, FAST_MILL)},
        operators={o.id: o for o in (ANNA, BEN)},
        jobs={job.id: job},
        tasks={t.id: t for t in tasks},
        assignments={a.task_id: a for a in assignments},
    )


def slot(task_id: int, equipment: Equipment, minutes: int, *, hour: float = 1) -> Assignment:
    start = NOW + timedelta(hours=hour)
    return Assignment(task_id, ANNA.id, equipment.id, start, start + timedelta(minutes=minutes))


# -- validation -------------------------------------------------------------------


def test_the_duration_on_each_equipment() -> None:
    task = mill_task(1)
    assert task.duration_on(FAST_MILL.id) == 45
    assert task.duration_on(OLD_MILL.id) == 120  # no row: the task's own duration


@pytest.mark.parametrize(
    ("equipment", "minutes", "wrong"),
    [
        (FAST_MILL, 45, False),
        (FAST_MILL, 120, True),
        (OLD_MILL, 120, False),
        (OLD_MILL, 45, True),
    ],
)
def test_a_slot_must_last_the_duration_on_its_equipment(
    equipment: Equipment, minutes: int, wrong: bool
) -> None:
    placed = slot(1, equipment, minutes)
    plan = plan_of(mill_task(1), assignments=(placed,))

    conflicts = validate_plan(plan, now=NOW)

    mismatches = [c for c in conflicts if c.type is ConflictType.DURATION_MISMATCH]
    assert bool(mismatches) is wrong
    if wrong:
        (conflict,) = mismatches
        assert conflict.severity is Severity.ERROR
        assert conflict.task_ids == (1,) and conflict.equipment_id == equipment.id
        assert equipment.name in conflict.message
    assert validate_assignment(plan, placed, now=NOW) == conflicts


def test_a_task_without_routings_keeps_the_length_it_was_given() -> None:
    plan = plan_of(mill_task(1, fast=None), assignments=(slot(1, OLD_MILL, 150),))
    assert validate_plan(plan, now=NOW) == []


def test_work_on_the_floor_takes_what_it_takes() -> None:
    running = mill_task(1, status=TaskStatus.IN_PROGRESS, actual_start=NOW)
    plan = plan_of(running, assignments=(slot(1, FAST_MILL, 90, hour=0),))
    assert [c.type for c in validate_plan(plan, now=NOW)] == []


# -- the optimizer ----------------------------------------------------------------


def test_the_optimizer_uses_the_faster_mill_when_it_pays() -> None:
    plan = plan_of(mill_task(1))

    result = optimize(plan, now=NOW, settings=QUICK)

    assert result.offered and result.conflicts == ()
    placed = result.assignments[1]
    assert placed.equipment_id == FAST_MILL.id
    assert placed.end - placed.start == timedelta(minutes=45)


def test_the_slower_mill_when_the_faster_one_is_busy_for_too_long() -> None:
    # The 5-axis mill runs a 4-hour job already on the floor: waiting for it
    # (done at 10:00, then 45 min) ends later than 120 minutes on the old mill.
    busy = Task(2, ORDER.id, "Long run", 240, "milling", 1, "milling")
    busy = dataclasses.replace(busy, status=TaskStatus.IN_PROGRESS, actual_start=NOW)
    running = Assignment(2, BEN.id, FAST_MILL.id, NOW, NOW + timedelta(hours=4))
    plan = plan_of(mill_task(1), busy, assignments=(running,))

    result = optimize(plan, now=NOW, settings=QUICK)

    assert result.offered
    placed = result.assignments[1]
    assert placed.equipment_id == OLD_MILL.id
    assert placed.end - placed.start == timedelta(minutes=120)
    assert [c for c in result.conflicts if c.severity is Severity.ERROR] == []


def test_two_tasks_share_the_mills_by_their_speeds_without_a_due_time() -> None:
    # No due time, interchangeable round-the-clock operators: the flexible
    # job-shop search. Both on the fast mill end at 90 min; one each, at 120.
    plan = plan_of(mill_task(1), mill_task(2), job=dataclasses.replace(ORDER, due=None))

    result = optimize(plan, now=NOW, settings=QUICK)

    assert result.offered and result.conflicts == ()
    assert {a.equipment_id for a in result.assignments.values()} == {FAST_MILL.id}
    assert result.makespan_minutes == 90
    for placed in result.assignments.values():
        assert placed.end - placed.start == timedelta(minutes=45)


def test_a_task_too_long_for_the_shifts_runs_where_it_is_quicker() -> None:
    # Both millers work one hour a day: 120 minutes on the old mill never fit
    # in a shift, 45 on the 5-axis mill do.
    hour = tuple(WeeklyShift(day, time(7), time(8)) for day in range(7))
    plan = plan_of(mill_task(1))
    plan = dataclasses.replace(
        plan, operators={o.id: dataclasses.replace(o, weekly_shifts=hour) for o in (ANNA, BEN)}
    )

    result = optimize(plan, now=NOW, settings=QUICK)

    assert result.unplaceable == {}
    placed = result.assignments[1]
    assert placed.equipment_id == FAST_MILL.id
    assert placed.end - placed.start == timedelta(minutes=45)
    assert placed.start.time() >= time(7) and placed.end.time() <= time(8)
    assert [c for c in result.conflicts if c.severity is Severity.ERROR] == []


def test_a_task_squeezed_before_a_kept_successor_runs_where_it_is_quicker() -> None:
    # Its successor is kept an hour from now: no room for 120 minutes, room for 45.
    after = dataclasses.replace(mill_task(2), predecessors=(1,))
    kept = slot(2, OLD_MILL, 120, hour=1)
    plan = plan_of(mill_task(1), after, assignments=(kept,))
    settings = dataclasses.replace(QUICK, pinned=frozenset({2}))

    result = optimize(plan, now=NOW, settings=settings)

    assert result.unplaceable == {}
    placed = result.assignments[1]
    assert placed.equipment_id == FAST_MILL.id
    assert placed.end <= kept.start
    assert [c for c in result.conflicts if c.severity is Severity.ERROR] == []
