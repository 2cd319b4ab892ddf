"""Hypothesis strategies for small, messy plants.

Times fall on a 30-minute grid around the spring DST change in Europe
(2025-03-30), so shift expansion across DST gets exercised too. Predecessors
point to lower ids only, so the generated graphs are acyclic.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import strategies as st

from app.domain.plan import (
    Alternative,
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

EPOCH = datetime(2025, 3, 28, tzinfo=UTC)
SKILLS = ("welding", "cutting")
CAPABILITIES = ("cnc", "press")
ZONES = ("UTC", "Europe/Berlin", "America/New_York")
SLOTS = 4 * 48  # four days of half hours


def moment(slot: int) -> datetime:
    return EPOCH + timedelta(minutes=30 * slot)


slots = st.integers(min_value=0, max_value=SLOTS)


@st.composite
def intervals(draw: st.DrawFn, *, max_length: int = 16) -> Interval:
    start = draw(slots)
    length = draw(st.integers(min_value=1, max_value=max_length))
    return Interval(moment(start), moment(start + length))


@st.composite
def weekly_shifts(draw: st.DrawFn) -> WeeklyShift:
    start = draw(st.integers(min_value=0, max_value=47))
    end = draw(st.integers(min_value=0, max_value=47))
    return WeeklyShift(
        weekday=draw(st.integers(min_value=0, max_value=6)),
        start=time(start // 2, 30 * (start % 2)),
        end=time(end // 2, 30 * (end % 2)),
    )


def operators(operator_id: int, *, permissive: bool) -> st.SearchStrategy[Operator]:
    if permissive:
        always = tuple(WeeklyShift(day, time(0), time(0)) for day in range(7))
        return st.just(
            Operator(operator_id, f"Operator {operator_id}", {s: 5 for s in SKILLS}, always)
        )
    return st.builds(
        Operator,
        id=st.just(operator_id),
        name=st.just(f"Operator {operator_id}"),
        skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5)),
        weekly_shifts=st.lists(weekly_shifts(), max_size=6).map(tuple),
        time_off=st.lists(intervals(), max_size=2).map(tuple),
        extra_shifts=st.lists(intervals(max_length=48), max_size=2).map(tuple),
    )


def equipment(equipment_id: int, *, permissive: bool) -> st.SearchStrategy[Equipment]:
    name = f"Machine {equipment_id}"
    if permissive:
        return st.just(Equipment(equipment_id, name, "mill", frozenset(CAPABILITIES)))
    return st.builds(
        Equipment,
        id=st.just(equipment_id),
        name=st.just(name),
        type=st.just("mill"),
        capabilities=st.frozensets(st.sampled_from(CAPABILITIES)),
        status=st.sampled_from(EquipmentStatus),
        expected_back=st.none() | slots.map(moment),
        downtime=st.lists(intervals(), max_size=2).map(tuple),
    )


@st.composite
def plans(draw: st.DrawFn, *, permissive: bool = False) -> Plan:
    """A plant of a few resources, jobs and tasks; `permissive` plants have
    all-round operators on duty around the clock and healthy machines, so
    only overlaps, dependencies and release times can break them."""
    operator_ids = range(1, draw(st.integers(1, 3)) + 1)
    equipment_ids = range(1, draw(st.integers(1, 3)) + 1)
    job_ids = range(1, draw(st.integers(1, 3)) + 1)
    jobs = {
        job_id: Job(
            job_id,
            f"Job {job_id}",
            release=draw(st.none() | slots.map(moment)),
            due=draw(st.none() | slots.map(moment)),
        )
        for job_id in job_ids
    }
    tasks: dict[int, Task] = {}
    assignments: dict[int, Assignment] = {}
    for task_id in range(1, draw(st.integers(1, 8)) + 1):
        tasks[task_id] = draw(tasks_for(task_id, list(job_ids), permissive=permissive))
        if draw(st.booleans()):
            assignments[task_id] = draw(
                assignments_for(tasks[task_id], list(operator_ids), list(equipment_ids))
            )
    return Plan(
        equipment={i: draw(equipment(i, permissive=permissive)) for i in equipment_ids},
        operators={i: draw(operators(i, permissive=permissive)) for i in operator_ids},
        jobs=jobs,
        tasks=tasks,
        assignments=assignments,
        timezone=draw(st.sampled_from(ZONES)),
    )


@st.composite
def tasks_for(
    draw: st.DrawFn, task_id: int, job_ids: list[int], *, permissive: bool = False
) -> Task:
    earlier = list(range(1, task_id))
    return Task(
        id=task_id,
        job_id=draw(st.sampled_from(job_ids)),
        name=f"Task {task_id}",
        duration_minutes=30 * draw(st.integers(0, 8)),
        required_skill=draw(st.none() | st.sampled_from(SKILLS)),
        min_level=draw(st.integers(1, 5)),
        required_capability=draw(st.none() | st.sampled_from(CAPABILITIES)),
        predecessors=tuple(draw(st.sets(st.sampled_from(earlier), max_size=3))) if earlier else (),
        status=TaskStatus.SCHEDULED if permissive else draw(st.sampled_from(TaskStatus)),
        alternatives=tuple(
            Alternative(equipment_id, 30 * halves)
            for equipment_id, halves in draw(
                st.lists(
                    st.tuples(st.integers(1, 3), st.integers(1, 8)),
                    max_size=2,
                    unique_by=lambda routing: routing[0],
                )
            )
        ),
    )


@st.composite
def assignments_for(
    draw: st.DrawFn, task: Task, operator_ids: list[int], equipment_ids: list[int]
) -> Assignment:
    start = draw(slots)
    equipment_id = draw(st.sampled_from(equipment_ids))
    # Mostly as long as the task takes on that equipment, sometimes its own duration.
    minutes = task.duration_on(equipment_id) if draw(st.booleans()) else task.duration_minutes
    length = max(minutes // 30, 1)
    return Assignment(
        task_id=task.id,
        operator_id=draw(st.sampled_from(operator_ids)),
        equipment_id=equipment_id,
        start=moment(start),
        end=moment(start + length),
    )
