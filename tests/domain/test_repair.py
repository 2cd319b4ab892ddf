"""Repair: only what a disruption hits moves (and what must follow it), breaking no rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

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
)
from app.domain.repair import MachineDown, OperatorAbsent, TaskLate, repair
from app.domain.validation import validate_plan

# Pure functions with an explicit now: fixed dates are fine here.
DAY = datetime(2030, 3, 4, tzinfo=UTC)
NOW = DAY + timedelta(hours=8)
WORKING = (Interval(DAY, DAY + timedelta(days=30)),)


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def slot(task: int, operator: int, machine: int, start: float, end: float) -> Assignment:
    return Assignment(task, operator, machine, at(start), at(end))


def plant(
    slots: list[Assignment],
    *,
    machines: dict[int, str] | None = None,
    tasks: dict[int, Task] | None = None,
    operators: dict[int, dict[str, int]] | None = None,
) -> Plan:
    """Mills 1 and 2 and lathe 3 (unless `machines`), operators 1 and 2 milling, 3 turning."""
    machines = machines or {1: "milling", 2: "milling", 3: "turning"}
    operators = operators or {1: {"milling": 3}, 2: {"milling": 2}, 3: {"turning": 3}}
    tasks = tasks or {}
    for placed in slots:
        if placed.task_id not in tasks:
            capability = machines[placed.equipment_id]
            tasks[placed.task_id] = Task(
                placed.task_id,
                job_id=placed.task_id,
                name=f"T{placed.task_id}",
                duration_minutes=int((placed.end - placed.start).total_seconds() // 60),
                required_skill=capability,
                required_capability=capability,
                status=TaskStatus.SCHEDULED,
            )
    return Plan(
        equipment={i: Equipment(i, f"M{i}", "m", frozenset({c})) for i, c in machines.items()},
        operators={
            i: Operator(i, f"O{i}", skills, extra_shifts=WORKING) for i, skills in operators.items()
        },
        jobs={task.job_id: Job(task.job_id, f"J{task.job_id}") for task in tasks.values()},
        tasks=tasks,
        assignments={s.task_id: s for s in slots},
    )


def task(task_id: int, capability: str, hours: float, **fields: object) -> Task:
    return Task(
        task_id,
        job_id=fields.pop("job_id", task_id),  # type: ignore[arg-type]
        name=f"T{task_id}",
        duration_minutes=int(hours * 60),
        required_skill=capability,
        required_capability=capability,
        status=fields.pop("status", TaskStatus.SCHEDULED),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def errors_after(plan: Plan, slots: dict[int, Assignment | None], **equipment: Equipment) -> set:
    """Error conflicts of the repaired plan, with the disruption written into it."""
    merged = {**plan.assignments, **slots}
    repaired = replace(
        plan,
        equipment={**plan.equipment, **{int(k[1:]): v for k, v in equipment.items()}},
        assignments={k: v for k, v in merged.items() if v is not None},
    )
    return {
        (str(c.type), c.task_ids)
        for c in validate_plan(repaired, now=NOW)
        if str(c.severity) == "error"
    }


def test_a_breakdown_moves_the_hit_task_to_another_capable_machine_and_nothing_else() -> None:
    plan = plant(
        [
            slot(1, 1, 1, 10, 11),  # on mill 1 while it is down
            slot(2, 2, 2, 13, 14),  # mill 2, later
            slot(3, 1, 1, 15, 16),  # mill 1, after it is back
            slot(4, 3, 3, 10, 11),  # the lathe
        ]
    )
    repaired = repair(plan, MachineDown(1, until=at(12)), now=NOW)
    assert repaired.hit == (1,)
    # Same operator, same time, the other mill (not the lathe, which cannot mill).
    assert repaired.slots == {1: slot(1, 1, 2, 10, 11)}


def test_without_another_machine_the_task_waits_and_its_successors_follow() -> None:
    tasks = {
        1: task(1, "milling", 1, job_id=9),
        2: task(2, "turning", 1, job_id=9, predecessors=(1,)),
        3: task(3, "turning", 1),
    }
    plan = plant(
        [slot(1, 1, 1, 10, 11), slot(2, 3, 3, 11, 12), slot(3, 3, 3, 16, 17)],
        machines={1: "milling", 3: "turning"},
        tasks=tasks,
    )
    down = MachineDown(1, until=at(12))
    repaired = repair(plan, down, now=NOW)
    assert repaired.slots == {1: slot(1, 1, 1, 12, 13), 2: slot(2, 3, 3, 13, 14)}
    mill = replace(plan.equipment[1], status=EquipmentStatus.DOWN, expected_back=at(12))
    assert errors_after(plan, repaired.slots, m1=mill) == set()


def test_a_successor_that_still_fits_after_the_moved_task_stays() -> None:
    tasks = {1: task(1, "milling", 1, job_id=9), 2: task(2, "turning", 1, predecessors=(1,))}
    plan = plant(
        [slot(1, 1, 1, 10, 11), slot(2, 3, 3, 15, 16)],
        machines={1: "milling", 3: "turning"},
        tasks=tasks,
    )
    repaired = repair(plan, MachineDown(1, until=at(12)), now=NOW)
    assert repaired.slots == {1: slot(1, 1, 1, 12, 13)}


def test_the_task_goes_around_what_is_booked_and_the_operators_shift() -> None:
    plan = plant(
        [slot(1, 1, 1, 10, 11), slot(2, 1, 2, 10, 12)], machines={1: "milling", 2: "milling"}
    )
    plan = replace(
        plan,
        operators={
            1: Operator(1, "O1", {"milling": 3}, extra_shifts=(Interval(at(6), at(14)),)),
            2: Operator(2, "O2", {"milling": 3}, extra_shifts=(Interval(at(16), at(20)),)),
        },
    )
    # Mill 2 is busy until 12 (with operator 1), so 12-13 on mill 2 with operator 1;
    # operator 2 could take mill 2 only from 16.
    repaired = repair(plan, MachineDown(1, until=None), now=NOW)
    assert repaired.slots == {1: slot(1, 1, 2, 12, 13)}


def test_an_absent_operator_hands_over_to_a_qualified_colleague_at_the_same_time() -> None:
    plan = plant(
        [slot(1, 1, 1, 10, 11), slot(2, 1, 1, 14, 15)],
        operators={1: {"milling": 3}, 2: {"milling": 1}, 3: {"milling": 4}},
    )
    plan = replace(plan, tasks={**plan.tasks, 1: replace(plan.tasks[1], min_level=3)})
    repaired = repair(plan, OperatorAbsent(1, at(9), at(12)), now=NOW)
    # Operator 2's level 1 is too low; 3 has level 4. The 14:00 task is after the absence.
    assert repaired.slots == {1: slot(1, 3, 1, 10, 11)}


def test_a_late_task_pushes_what_it_runs_into_and_its_successors() -> None:
    tasks = {
        1: task(1, "milling", 2, job_id=9, status=TaskStatus.IN_PROGRESS),
        2: task(2, "milling", 1),
        3: task(3, "turning", 1, job_id=9, predecessors=(1,)),
    }
    plan = plant(
        [slot(1, 1, 1, 8, 10), slot(2, 2, 1, 10, 11), slot(3, 3, 3, 10, 11)],
        machines={1: "milling", 3: "turning"},
        tasks=tasks,
    )
    repaired = repair(plan, TaskLate(1, at(11)), now=NOW)
    assert repaired.slots == {
        1: slot(1, 1, 1, 8, 11),  # the late task itself, now ending at 11
        2: slot(2, 2, 1, 11, 12),  # it ran into the mill's next task
        3: slot(3, 3, 3, 11, 12),  # and its successor
    }
    assert errors_after(plan, repaired.slots) == set()


def test_started_work_is_left_and_an_unplaceable_task_goes_back_to_the_tray() -> None:
    tasks = {
        1: task(1, "milling", 1, status=TaskStatus.IN_PROGRESS),
        2: task(2, "milling", 1),
    }
    plan = plant([slot(1, 1, 1, 8, 9), slot(2, 1, 1, 10, 11)], machines={1: "milling"}, tasks=tasks)
    repaired = repair(plan, MachineDown(1), now=NOW)
    assert repaired.left == (1,)
    assert repaired.slots == {2: None}


def test_nothing_hit_nothing_moves_and_now_is_respected() -> None:
    plan = plant([slot(1, 1, 1, 5, 6), slot(2, 1, 1, 14, 15)])
    assert repair(plan, MachineDown(1, until=at(12)), now=NOW).slots == {}
    # Booked before now but not started: it is hit, and moves to now or later (on the grid).
    plan = plant([slot(1, 1, 1, 7, 9)], machines={1: "milling"})
    now = NOW + timedelta(minutes=2)
    repaired = repair(plan, MachineDown(1, until=at(10)), now=now)
    assert repaired.slots == {1: slot(1, 1, 1, 10, 12)}


def test_a_cycle_of_predecessors_ends_in_the_tray_instead_of_running_forever() -> None:
    tasks = {
        1: task(1, "milling", 1, predecessors=(2,)),
        2: task(2, "milling", 1, predecessors=(1,)),
    }
    plan = plant([slot(1, 1, 1, 10, 11), slot(2, 2, 2, 11, 12)], tasks=tasks)
    repaired = repair(plan, MachineDown(1, until=at(12)), now=NOW)
    assert None in repaired.slots.values()
