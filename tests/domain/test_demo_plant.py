from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.domain.calendar import availability, covers
from app.domain.conflicts import ConflictType
from app.domain.critical_path import find_cycle
from app.domain.plan import Interval
from app.domain.plants.demo_plant import DEMO_PASSWORD, demo_plant
from app.domain.plants.plant_data import PlantData, as_operator, as_plan, check_references
from app.domain.validation import validate_plan

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 3, 2, tzinfo=BERLIN)
SUNDAY = datetime(2026, 3, 8, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def small_plant() -> PlantData:
    return demo_plant("small", start=MONDAY)


@pytest.fixture(scope="module")
def large_plant() -> PlantData:
    return demo_plant("large", start=MONDAY)


def test_small_plant_has_the_size_of_a_workshop(small_plant: PlantData) -> None:
    counts = small_plant.counts()
    assert counts["equipment"] == 12
    assert counts["operators"] == 20
    assert 25 <= counts["jobs"] <= 45
    assert 150 <= counts["tasks"] <= 170
    assert 0.3 * counts["tasks"] <= counts["assignments"] <= 0.8 * counts["tasks"]


def test_large_plant_is_big_enough_for_load_tests(large_plant: PlantData) -> None:
    counts = large_plant.counts()
    assert counts["tasks"] >= 10_000
    assert counts["operators"] >= 300
    assert counts["equipment"] >= 100
    assert counts["assignments"] >= 0.2 * counts["tasks"]


@pytest.mark.parametrize("size", ["small", "large"])
def test_references_resolve_and_dependencies_have_no_cycle(
    size: str, small_plant: PlantData, large_plant: PlantData
) -> None:
    plant = small_plant if size == "small" else large_plant
    check_references(plant)
    assert find_cycle(as_plan(plant).tasks.values()) is None


def test_routings_have_three_to_eight_steps_chained(small_plant: PlantData) -> None:
    for job in small_plant.jobs:
        assert 3 <= len(job.tasks) <= 8
        for before, after in zip(job.tasks, job.tasks[1:], strict=False):
            assert before.key in after.predecessors


def test_sub_assemblies_feed_assembly_jobs(small_plant: PlantData) -> None:
    job_of = {task.key: job.key for job, task in small_plant.tasks()}
    cross = [
        (task, predecessor)
        for job, task in small_plant.tasks()
        for predecessor in task.predecessors
        if job_of[predecessor] != job.key
    ]
    assert cross
    assert all(task.name.startswith("Op 10") for task, _ in cross)


def test_every_assignment_has_the_skill_and_capability(large_plant: PlantData) -> None:
    operators = {operator.key: operator for operator in large_plant.operators}
    equipment = {unit.key: unit for unit in large_plant.equipment}
    tasks = {task.key: task for _, task in large_plant.tasks()}
    for assignment in large_plant.assignments:
        task = tasks[assignment.task_key]
        assert task.required_skill in operators[assignment.operator_key].skills
        assert task.required_capability in equipment[assignment.equipment_key].capabilities


@pytest.mark.parametrize("size", ["small", "large"])
def test_the_plan_is_believable_with_a_few_conflicts_of_several_kinds(
    size: str, small_plant: PlantData, large_plant: PlantData
) -> None:
    plant = small_plant if size == "small" else large_plant
    conflicts = validate_plan(as_plan(plant), now=MONDAY)
    kinds = Counter(conflict.type for conflict in conflicts)
    assert len(kinds) >= 6
    assert ConflictType.CAPABILITY_MISMATCH not in kinds
    assert len(conflicts) <= max(12, 0.02 * len(plant.assignments))


def test_assignments_lie_inside_shifts_apart_from_the_planted_conflicts(
    small_plant: PlantData,
) -> None:
    horizon = Interval(MONDAY - timedelta(days=1), MONDAY + timedelta(days=14))
    shifts = {
        operator.key: availability(as_operator(operator), "Europe/Berlin", horizon)
        for operator in small_plant.operators
    }
    outside = [
        a
        for a in small_plant.assignments
        if not covers(shifts[a.operator_key], Interval(a.start, a.end))
    ]
    assert len(outside) <= 2


def test_demo_logins_cover_every_role(small_plant: PlantData) -> None:
    users = {user.username: user for user in small_plant.users}
    assert set(users) == {"anna", "ben", "olga", "omar", "maria", "admin"}
    assert users["anna"].display_name == "Anna Weber"
    assert {user.role for user in users.values()} == {"scheduler", "operator", "manager", "admin"}
    assert all(user.password == DEMO_PASSWORD for user in users.values())
    names = {operator.key: operator.name for operator in small_plant.operators}
    assert names[users["olga"].operator_key or ""] == "Olga Nowak"
    assert names[users["omar"].operator_key or ""] == "Omar Haddad"


@pytest.mark.parametrize("start", [MONDAY, SUNDAY], ids=["monday", "sunday"])
def test_olga_has_work_today(start: datetime) -> None:
    plant = demo_plant("small", start=start)
    olga = next(user for user in plant.users if user.username == "olga")
    today = [
        a
        for a in plant.assignments
        if a.operator_key == olga.operator_key and a.start.astimezone(BERLIN).date() == start.date()
    ]
    assert today


def test_same_seed_same_plant_and_another_seed_another(small_plant: PlantData) -> None:
    assert demo_plant("small", start=MONDAY, seed=7) == small_plant
    assert demo_plant("small", start=MONDAY, seed=8) != small_plant


def test_times_are_utc_and_the_zone_comes_from_start(small_plant: PlantData) -> None:
    assert small_plant.timezone == "Europe/Berlin"
    first = min(small_plant.assignments, key=lambda a: a.start)
    assert first.start.utcoffset() == timedelta(0)
    assert first.start >= MONDAY


def test_contact_data_is_there_for_every_operator(small_plant: PlantData) -> None:
    assert all("@" in operator.contact["email"] for operator in small_plant.operators)


def test_start_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        demo_plant("small", start=datetime(2026, 3, 2))


def test_what_the_plan_puts_before_now_has_happened() -> None:
    """Loaded mid-shift, the morning's work is done and what runs now is in progress."""
    now = MONDAY + timedelta(hours=11, minutes=20)
    plant = demo_plant("small", start=MONDAY, now=now)
    check_references(plant)
    by_status = {
        status: [a for a in plant.assignments if a.status == status]
        for status in ("done", "in_progress", "scheduled")
    }
    assert by_status["done"] and by_status["in_progress"] and by_status["scheduled"]
    for a in by_status["done"]:
        assert (a.actual_start, a.actual_end) == (a.start, a.end)
        assert a.end <= now
    for a in by_status["in_progress"]:
        assert a.actual_start == a.start < now < a.end
        assert a.actual_end is None
    assert all(a.start >= now and a.actual_start is None for a in by_status["scheduled"])
    # Nobody runs two tasks at once, and nothing done waits for work not done.
    running = Counter(a.operator_key for a in by_status["in_progress"])
    assert max(running.values()) == 1
    plan = as_plan(plant)
    done = {task.id for task in plan.tasks.values() if task.status == "done"}
    assert done
    assert all(set(plan.tasks[t].predecessors) <= done for t in done)


def test_disturbances_lie_after_now_so_the_board_opens_with_conflicts_to_resolve() -> None:
    now = MONDAY + timedelta(hours=15)
    plant = demo_plant("small", start=MONDAY, now=now)
    plan = as_plan(plant)
    conflicts = validate_plan(plan, now=now)
    assert conflicts
    started = {task.id for task in plan.tasks.values() if task.actual_start is not None}
    assert started
    assert not [c for c in conflicts if set(c.task_ids) & started]
