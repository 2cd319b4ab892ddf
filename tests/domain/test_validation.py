from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from itertools import combinations

import pytest
from hypothesis import given, strategies as st
from strategies import assignments_for, plans

from app.domain.conflicts import Conflict, ConflictType, Severity
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
from app.domain.validation import involves, validate_assignment, validate_plan

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)
NOW = MONDAY
WEEKDAYS_6_TO_14 = tuple(WeeklyShift(day, time(6), time(14)) for day in range(5))

ANNA = Operator(1, "Anna Weber", {"welding": 2, "cutting": 3}, WEEKDAYS_6_TO_14)
BEN = Operator(2, "Ben Ito", {"welding": 4}, WEEKDAYS_6_TO_14)
WELDER = Equipment(10, "Welder 1", "welder", frozenset({"welding"}))
SAW = Equipment(11, "Saw 2", "saw", frozenset({"cutting"}))
ORDER = Job(100, "Order 17", release=MONDAY + timedelta(hours=6), due=MONDAY + timedelta(hours=18))
CUT = Task(1, 100, "Cut frame", 60, "cutting", 1, "cutting")
WELD = Task(2, 100, "Weld frame", 60, "welding", 2, "welding", predecessors=(1,))
POLISH = Task(3, 100, "Polish frame", 60)
SWEEP = Task(4, 100, "Sweep floor", 60)


def at(hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(hours=hour, minutes=minute)


def slot(task: Task, operator: Operator, equipment: Equipment, start: datetime) -> Assignment:
    end = start + timedelta(minutes=task.duration_minutes)
    return Assignment(task.id, operator.id, equipment.id, start, end)


def plant(
    *assignments: Assignment,
    tasks: tuple[Task, ...] = (CUT, WELD, POLISH),
    equipment: tuple[Equipment, ...] = (WELDER, SAW),
    job: Job = ORDER,
    timezone: str = "UTC",
) -> Plan:
    return Plan(
        equipment={e.id: e for e in equipment},
        operators={o.id: o for o in (ANNA, BEN)},
        jobs={job.id: job},
        tasks={t.id: t for t in tasks},
        assignments={a.task_id: a for a in assignments},
        timezone=timezone,
    )


@pytest.fixture
def clean_plant() -> Plan:
    return plant(slot(CUT, ANNA, SAW, at(8)), slot(WELD, ANNA, WELDER, at(9)))


@pytest.fixture
def plant_with_overlap() -> Plan:
    return plant(slot(CUT, ANNA, SAW, at(8)), slot(POLISH, ANNA, WELDER, at(8, 30)))


def test_a_clean_plant_has_no_conflicts(clean_plant: Plan) -> None:
    assert validate_plan(clean_plant, now=NOW) == []


def test_skill_mismatch_names_the_level_needed_and_held() -> None:
    hard_weld = dataclasses.replace(WELD, min_level=3, predecessors=())
    plan = plant(slot(hard_weld, ANNA, WELDER, at(9)), tasks=(hard_weld,))

    assert validate_plan(plan, now=NOW) == [
        Conflict(
            ConflictType.SKILL_MISMATCH,
            (2,),
            "Operator Anna Weber lacks skill welding level 3 (has 2)",
            operator_id=1,
            job_id=100,
        )
    ]


def test_skill_mismatch_when_the_skill_is_missing_altogether() -> None:
    plan = plant(slot(CUT, BEN, SAW, at(8)))

    assert [c.message for c in validate_plan(plan, now=NOW)] == [
        "Operator Ben Ito lacks skill cutting level 1 (has none)"
    ]


def test_capability_mismatch() -> None:
    plan = plant(slot(CUT, ANNA, WELDER, at(8)))

    assert validate_plan(plan, now=NOW) == [
        Conflict(
            ConflictType.CAPABILITY_MISMATCH,
            (1,),
            "Equipment Welder 1 lacks capability cutting needed by Cut frame",
            equipment_id=10,
            job_id=100,
        )
    ]


def test_operator_double_booked(plant_with_overlap: Plan) -> None:
    assert validate_plan(plant_with_overlap, now=NOW) == [
        Conflict(
            ConflictType.OPERATOR_DOUBLE_BOOKED,
            (1, 3),
            "Operator Anna Weber is booked on Cut frame and Polish frame at once "
            "(2025-03-03 08:30 to 09:00)",
            operator_id=1,
        )
    ]


def test_equipment_double_booked() -> None:
    plan = plant(slot(CUT, ANNA, SAW, at(8)), slot(POLISH, BEN, SAW, at(8, 30)))

    assert validate_plan(plan, now=NOW) == [
        Conflict(
            ConflictType.EQUIPMENT_DOUBLE_BOOKED,
            (1, 3),
            "Equipment Saw 2 is booked for Cut frame and Polish frame at once "
            "(2025-03-03 08:30 to 09:00)",
            equipment_id=11,
        )
    ]


def test_touching_slots_do_not_overlap(clean_plant: Plan) -> None:
    back_to_back = clean_plant.with_assignment(slot(POLISH, BEN, SAW, at(9)))

    assert validate_plan(back_to_back, now=NOW) == []


def test_every_overlapping_pair_is_one_conflict() -> None:
    three_at_once = plant(
        slot(CUT, ANNA, SAW, at(8)),
        slot(POLISH, BEN, SAW, at(8)),
        slot(SWEEP, BEN, SAW, at(8)),
        tasks=(CUT, POLISH, SWEEP),
    )

    booked = [(c.type, c.task_ids) for c in validate_plan(three_at_once, now=NOW)]

    assert booked == [
        (ConflictType.EQUIPMENT_DOUBLE_BOOKED, (1, 3)),
        (ConflictType.EQUIPMENT_DOUBLE_BOOKED, (1, 4)),
        (ConflictType.EQUIPMENT_DOUBLE_BOOKED, (3, 4)),
        (ConflictType.OPERATOR_DOUBLE_BOOKED, (3, 4)),
    ]


def test_equipment_unavailable_during_a_downtime_window() -> None:
    saw_serviced = dataclasses.replace(SAW, downtime=(Interval(at(8, 30), at(12)),))
    plan = plant(slot(CUT, ANNA, saw_serviced, at(8)), equipment=(WELDER, saw_serviced))

    assert validate_plan(plan, now=NOW) == [
        Conflict(
            ConflictType.EQUIPMENT_UNAVAILABLE,
            (1,),
            "Equipment Saw 2 has downtime 2025-03-03 08:30 to 12:00, "
            "during Cut frame (2025-03-03 08:00 to 09:00)",
            equipment_id=11,
            job_id=100,
        )
    ]


@pytest.mark.parametrize(
    ("status", "expected_back", "now", "reason"),
    [
        (EquipmentStatus.DOWN, at(8, 30), NOW, "is down until 2025-03-03 08:30"),
        (EquipmentStatus.MAINTENANCE, None, NOW, "is in maintenance with no expected return"),
        (EquipmentStatus.DOWN, None, at(8, 45), "is down with no expected return"),
        (EquipmentStatus.DOWN, at(8), NOW, None),  # back before the slot
        (EquipmentStatus.DOWN, None, at(9), None),  # broke after the slot
    ],
)
def test_equipment_unavailable_while_down_until_expected_back(
    status: EquipmentStatus, expected_back: datetime | None, now: datetime, reason: str | None
) -> None:
    broken_saw = dataclasses.replace(SAW, status=status, expected_back=expected_back)
    plan = plant(slot(CUT, ANNA, broken_saw, at(8)), equipment=(WELDER, broken_saw))

    messages = [c.message for c in validate_plan(plan, now=now)]

    expected = f"Equipment Saw 2 {reason}, during Cut frame (2025-03-03 08:00 to 09:00)"
    assert messages == ([] if reason is None else [expected])


def test_outside_shift() -> None:
    plan = plant(slot(CUT, ANNA, SAW, at(13, 30)))

    assert validate_plan(plan, now=NOW) == [
        Conflict(
            ConflictType.OUTSIDE_SHIFT,
            (1,),
            "Cut frame (2025-03-03 13:30 to 14:30) falls outside Anna Weber's shifts "
            "or in their time off",
            operator_id=1,
            job_id=100,
        )
    ]


def test_outside_shift_during_time_off() -> None:
    anna_at_the_dentist = dataclasses.replace(ANNA, time_off=(Interval(at(8, 30), at(9, 30)),))
    plan = dataclasses.replace(
        plant(slot(CUT, ANNA, SAW, at(8))), operators={1: anna_at_the_dentist, 2: BEN}
    )

    assert [c.type for c in validate_plan(plan, now=NOW)] == [ConflictType.OUTSIDE_SHIFT]


def test_dependency_violation() -> None:
    plan = plant(slot(CUT, ANNA, SAW, at(8)), slot(WELD, BEN, WELDER, at(8, 30)))

    assert validate_plan(plan, now=NOW) == [
        Conflict(
            ConflictType.DEPENDENCY_VIOLATION,
            (1, 2),
            "Weld frame starts at 2025-03-03 08:30, before its predecessor Cut frame "
            "ends at 2025-03-03 09:00",
            job_id=100,
        )
    ]


def test_an_unassigned_predecessor_is_no_dependency_violation() -> None:
    assert validate_plan(plant(slot(WELD, BEN, WELDER, at(8))), now=NOW) == []


def test_before_release() -> None:
    released_late = dataclasses.replace(ORDER, release=at(8, 30))
    plan = plant(slot(CUT, ANNA, SAW, at(8)), job=released_late)

    assert validate_plan(plan, now=NOW) == [
        Conflict(
            ConflictType.BEFORE_RELEASE,
            (1,),
            "Cut frame starts at 2025-03-03 08:00, before job Order 17 is released at "
            "2025-03-03 08:30",
            job_id=100,
        )
    ]


def test_late_is_a_warning_on_the_task_that_ends_last() -> None:
    due_early = dataclasses.replace(ORDER, due=at(9, 30))
    plan = plant(slot(CUT, ANNA, SAW, at(8)), slot(WELD, ANNA, WELDER, at(9)), job=due_early)

    conflicts = validate_plan(plan, now=NOW)

    assert conflicts == [
        Conflict(
            ConflictType.LATE,
            (2,),
            "Job Order 17 ends at 2025-03-03 10:00, 30 min after its due time 2025-03-03 09:30",
            job_id=100,
        )
    ]
    assert conflicts[0].severity is Severity.WARNING


def test_messages_speak_the_plants_local_time() -> None:
    released_late = dataclasses.replace(ORDER, release=at(8, 30))
    plan = plant(slot(CUT, ANNA, SAW, at(8)), job=released_late, timezone="Europe/Berlin")

    assert "starts at 2025-03-03 09:00, before job Order 17 is released at 2025-03-03 09:30" in (
        validate_plan(plan, now=NOW)[0].message
    )


def test_done_tasks_are_history_but_still_block_live_ones() -> None:
    done_cut = dataclasses.replace(CUT, status=TaskStatus.DONE)
    done_polish = dataclasses.replace(POLISH, status=TaskStatus.DONE)
    history = plant(
        slot(done_cut, BEN, WELDER, at(20)),  # wrong skill, machine and shift
        slot(done_polish, BEN, WELDER, at(20, 30)),  # overlaps the done cut
        tasks=(done_cut, WELD, done_polish),
    )
    assert validate_plan(history, now=NOW) == []

    live_weld = history.with_assignment(slot(WELD, ANNA, WELDER, at(20, 45)))
    assert [(c.type, c.task_ids) for c in validate_plan(live_weld, now=NOW)] == [
        (ConflictType.DEPENDENCY_VIOLATION, (1, 2)),
        (ConflictType.EQUIPMENT_DOUBLE_BOOKED, (1, 2)),
        (ConflictType.EQUIPMENT_DOUBLE_BOOKED, (2, 3)),
        (ConflictType.LATE, (2,)),
        (ConflictType.OUTSIDE_SHIFT, (2,)),
    ]


def test_conflicts_come_sorted_by_type_then_tasks() -> None:
    messy = plant(
        slot(POLISH, BEN, SAW, at(8)),
        slot(CUT, ANNA, SAW, at(8)),
        slot(WELD, ANNA, SAW, at(8)),
    )

    keys = [(c.type.value, c.task_ids) for c in validate_plan(messy, now=NOW)]

    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


def test_a_proposal_replaces_the_tasks_current_assignment(plant_with_overlap: Plan) -> None:
    moved_away = slot(POLISH, ANNA, WELDER, at(10))

    assert validate_assignment(plant_with_overlap, moved_away, now=NOW) == []


def test_a_proposal_sees_its_successors_and_its_jobs_lateness(clean_plant: Plan) -> None:
    due_early = dataclasses.replace(clean_plant, jobs={100: dataclasses.replace(ORDER, due=at(10))})
    cut_late = slot(CUT, ANNA, SAW, at(9, 30))

    found = validate_assignment(due_early, cut_late, now=NOW)

    assert [(c.type, c.task_ids) for c in found] == [
        (ConflictType.DEPENDENCY_VIOLATION, (1, 2)),
        (ConflictType.LATE, (1,)),
        (ConflictType.OPERATOR_DOUBLE_BOOKED, (1, 2)),
    ]


def test_a_proposal_on_a_partial_plan_skips_what_it_cannot_resolve() -> None:
    only_the_task = Plan(tasks={CUT.id: CUT})
    stranger = Assignment(CUT.id, 99, 98, at(3), at(4))

    assert validate_assignment(only_the_task, stranger, now=NOW) == []


# -- properties -----------------------------------------------------------------


def overlaps_and_broken_links(plan: Plan) -> set[tuple[ConflictType, tuple[int, ...]]]:
    """Brute force: what the sweep and dependency rule must find (live tasks only)."""

    def live(*task_ids: int) -> bool:
        return any(plan.tasks[t].status is not TaskStatus.DONE for t in task_ids)

    found: set[tuple[ConflictType, tuple[int, ...]]] = set()
    for a, b in combinations(plan.assignments.values(), 2):
        pair = tuple(sorted((a.task_id, b.task_id)))
        if a.interval.overlaps(b.interval) and live(a.task_id, b.task_id):
            if a.operator_id == b.operator_id:
                found.add((ConflictType.OPERATOR_DOUBLE_BOOKED, pair))
            if a.equipment_id == b.equipment_id:
                found.add((ConflictType.EQUIPMENT_DOUBLE_BOOKED, pair))
    for successor in plan.assignments.values():
        for predecessor_id in plan.tasks[successor.task_id].predecessors:
            predecessor = plan.assignments.get(predecessor_id)
            if (
                predecessor
                and successor.start < predecessor.end
                and live(*_pair(successor, predecessor))
            ):
                found.add((ConflictType.DEPENDENCY_VIOLATION, _pair(successor, predecessor)))
    return found


def _pair(a: Assignment, b: Assignment) -> tuple[int, ...]:
    return tuple(sorted((a.task_id, b.task_id)))


@given(plan=plans())
def test_every_overlap_and_broken_link_is_reported(plan: Plan) -> None:
    reported = {(c.type, c.task_ids) for c in validate_plan(plan, now=NOW)}

    assert overlaps_and_broken_links(plan) <= reported


@given(plan=plans(permissive=True))
def test_a_schedule_called_clean_has_no_overlap_and_no_broken_link(plan: Plan) -> None:
    errors = [c for c in validate_plan(plan, now=NOW) if c.severity is Severity.ERROR]
    if not errors:
        assert overlaps_and_broken_links(plan) == set()


@st.composite
def plans_with_proposal(draw: st.DrawFn) -> tuple[Plan, Assignment]:
    plan = draw(plans())
    task = draw(st.sampled_from(sorted(plan.tasks.values(), key=lambda t: t.id)))
    proposal = draw(assignments_for(task, list(plan.operators), list(plan.equipment)))
    return plan, proposal


@given(case=plans_with_proposal())
def test_a_proposal_shows_exactly_its_share_of_the_full_validation(
    case: tuple[Plan, Assignment],
) -> None:
    plan, proposal = case
    task = plan.tasks[proposal.task_id]

    full = validate_plan(plan.with_assignment(proposal), now=NOW)

    assert validate_assignment(plan, proposal, now=NOW) == [c for c in full if involves(c, task)]


@given(case=plans_with_proposal())
def test_adding_an_assignment_never_removes_conflicts_among_the_others(
    case: tuple[Plan, Assignment],
) -> None:
    plan, proposal = case
    others = dataclasses.replace(
        plan, assignments={t: a for t, a in plan.assignments.items() if t != proposal.task_id}
    )

    before = validate_plan(others, now=NOW)
    after = validate_plan(others.with_assignment(proposal), now=NOW)

    # `late` sits on the job's last task, which the new one may become.
    assert {c for c in before if c.type is not ConflictType.LATE} <= set(after)
    assert {c.job_id for c in before if c.type is ConflictType.LATE} <= {
        c.job_id for c in after if c.type is ConflictType.LATE
    }
