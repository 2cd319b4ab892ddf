from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from hypothesis import given, strategies as st
from strategies import plans

from app.domain.critical_path import (
    CriticalPath,
    DependencyCycle,
    TaskTiming,
    critical_path,
    find_cycle,
)
from app.domain.plan import Assignment, Job, Plan, Task

RELEASE = datetime(2025, 3, 3, 6, tzinfo=UTC)


def job_of(*tasks: Task, release: datetime | None = RELEASE) -> Plan:
    return Plan(jobs={1: Job(1, "Order 17", release=release)}, tasks={t.id: t for t in tasks})


def task(task_id: int, minutes: int, *predecessors: int, job_id: int = 1) -> Task:
    return Task(task_id, job_id, f"Task {task_id}", minutes, predecessors=predecessors)


@pytest.fixture
def job_with_a_side_branch() -> Plan:
    # 1 (30) ─┬─> 2 (60) ─┬─> 4 (30)
    #         └─> 3 (20) ─┘
    return job_of(task(1, 30), task(2, 60, 1), task(3, 20, 1), task(4, 30, 2, 3))


def test_cpm_of_a_job_with_a_side_branch(job_with_a_side_branch: Plan) -> None:
    path = critical_path(job_with_a_side_branch, 1)

    assert path.makespan == 120
    assert path.critical == (1, 2, 4)
    assert path.timings[3] == TaskTiming(
        task_id=3,
        duration=20,
        earliest_start=30,
        earliest_finish=50,
        latest_start=70,
        latest_finish=90,
    )
    assert path.timings[3].slack == 40
    assert [path.timings[t].slack for t in (1, 2, 4)] == [0, 0, 0]


def test_as_dict_lists_tasks_in_earliest_start_order(job_with_a_side_branch: Plan) -> None:
    shape = critical_path(job_with_a_side_branch, 1).as_dict()

    assert shape["makespan_minutes"] == 120
    assert shape["critical_task_ids"] == [1, 2, 4]
    assert shape["tasks"] == [
        {
            "task_id": 1,
            "earliest_start": 0,
            "earliest_finish": 30,
            "latest_start": 0,
            "latest_finish": 30,
            "slack": 0,
        },
        {
            "task_id": 2,
            "earliest_start": 30,
            "earliest_finish": 90,
            "latest_start": 30,
            "latest_finish": 90,
            "slack": 0,
        },
        {
            "task_id": 3,
            "earliest_start": 30,
            "earliest_finish": 50,
            "latest_start": 70,
            "latest_finish": 90,
            "slack": 40,
        },
        {
            "task_id": 4,
            "earliest_start": 90,
            "earliest_finish": 120,
            "latest_start": 90,
            "latest_finish": 120,
            "slack": 0,
        },
    ]


def test_minutes_count_from_the_release(job_with_a_side_branch: Plan) -> None:
    path = critical_path(job_with_a_side_branch, 1)

    assert path.origin == RELEASE
    assert path.at(path.makespan) == RELEASE + timedelta(hours=2)


def test_without_a_release_minutes_count_from_the_first_assigned_start() -> None:
    start = RELEASE + timedelta(hours=3)
    plan = job_of(task(1, 30), task(2, 30, 1), release=None)
    plan = plan.with_assignment(Assignment(2, 1, 1, start, start + timedelta(minutes=30)))

    assert critical_path(plan, 1).origin == start


def test_an_unplanned_job_without_a_release_counts_from_zero() -> None:
    path = critical_path(job_of(task(1, 30), release=None), 1)

    assert path.origin is None
    assert path.at(30) is None


def test_links_to_other_jobs_are_ignored() -> None:
    plan = job_of(task(1, 30, 9), task(9, 500, job_id=2))

    path = critical_path(plan, 1)

    assert path.makespan == 30
    assert path.critical == (1,)


def test_an_empty_job_has_an_empty_path() -> None:
    assert critical_path(job_of(), 1) == CriticalPath(1, RELEASE, 0, {}, ())


def test_a_cycle_in_the_job_is_refused_with_its_tasks() -> None:
    looping = job_of(task(1, 10, 3), task(2, 10, 1), task(3, 10, 2), task(4, 10, 3))

    with pytest.raises(DependencyCycle) as refused:
        critical_path(looping, 1)

    assert sorted(refused.value.task_ids) == [1, 2, 3]
    assert "dependency cycle" in str(refused.value)


def test_find_cycle_returns_the_loop_in_link_order() -> None:
    across_jobs = [task(1, 10, 3), task(2, 10, 1, job_id=2), task(3, 10, 2), task(4, 10, 1)]

    cycle = find_cycle(across_jobs)

    assert cycle is not None
    assert sorted(cycle) == [1, 2, 3]
    assert_is_a_loop(cycle, {t.id: t for t in across_jobs})


def test_find_cycle_sees_a_task_that_waits_for_itself() -> None:
    assert find_cycle([task(1, 10, 1)]) == [1]


def test_find_cycle_ignores_tasks_it_was_not_given() -> None:
    assert find_cycle([task(1, 10, 2), task(3, 10, 1)]) is None


def test_find_cycle_walks_long_chains_without_recursion() -> None:
    chain = [task(i, 1, i - 1) if i > 1 else task(1, 1, 5000) for i in range(1, 5001)]

    cycle = find_cycle(chain)

    assert cycle is not None
    assert len(cycle) == 5000


def assert_is_a_loop(cycle: list[int], tasks: dict[int, Task]) -> None:
    for predecessor, successor in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        assert predecessor in tasks[successor].predecessors


# -- properties -----------------------------------------------------------------


def minimum_makespan(tasks: dict[int, Task]) -> int:
    """Longest path by memoised recursion: an independent CPM forward pass."""

    @cache
    def finish(task_id: int) -> int:
        preds = [p for p in tasks[task_id].predecessors if p in tasks]
        return max((finish(p) for p in preds), default=0) + tasks[task_id].duration_minutes

    return max((finish(t) for t in tasks), default=0)


@given(plan=plans(), job_id=st.integers(1, 3))
def test_slack_is_never_negative_and_the_critical_tasks_chain_through_the_job(
    plan: Plan, job_id: int
) -> None:
    tasks = {t.id: t for t in plan.tasks_of_job(job_id)}
    path = critical_path(plan, job_id)

    assert all(timing.slack >= 0 for timing in path.timings.values())
    assert path.makespan == minimum_makespan(tasks)
    if not tasks:
        return
    # Walk back from a critical task that ends the job to one that starts it.
    current = next(t for t in path.critical if path.timings[t].earliest_finish == path.makespan)
    length = path.timings[current].duration
    while path.timings[current].earliest_start > 0:
        current = next(
            p
            for p in tasks[current].predecessors
            if p in path.critical
            and path.timings[p].earliest_finish == path.timings[current].earliest_start
        )
        length += path.timings[current].duration
    assert length == path.makespan


@given(plan=plans())
def test_acyclic_links_have_no_cycle(plan: Plan) -> None:
    assert find_cycle(plan.tasks.values()) is None


@given(plan=plans(), links=st.lists(st.tuples(st.integers(1, 8), st.integers(1, 8))))
def test_any_cycle_found_is_a_real_loop(plan: Plan, links: list[tuple[int, int]]) -> None:
    tasks = dict(plan.tasks)
    for predecessor, successor in links:
        if successor in tasks:
            old = tasks[successor]
            tasks[successor] = task(successor, 10, *old.predecessors, predecessor)

    cycle = find_cycle(tasks.values())

    if cycle is None:
        for job_id in {t.job_id for t in tasks.values()}:
            critical_path(Plan(tasks=tasks), job_id)  # a job's CPM never sees a loop either
    else:
        assert_is_a_loop(cycle, tasks)
