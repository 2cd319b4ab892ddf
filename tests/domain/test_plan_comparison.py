from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.plan import Assignment, Equipment, Job, Operator, Plan, Task, TaskStatus
from app.domain.plan_comparison import changed_slots, compare_kpis

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
MILL = Equipment(1, "Mill 1", "mill", frozenset())
OLGA = Operator(1, "Olga", {})


def slot(task_id: int, start: datetime, minutes: int = 60) -> Assignment:
    return Assignment(task_id, 1, 1, start, start + timedelta(minutes=minutes))


def plan(tasks: list[Task], slots: list[Assignment], due: datetime) -> Plan:
    return Plan(
        equipment={1: MILL},
        operators={1: OLGA},
        jobs={1: Job(1, "Order 1", priority=1, due=due)},
        tasks={task.id: task for task in tasks},
        assignments={s.task_id: s for s in slots},
    )


def test_a_plan_that_starts_overdue_tasks_now_is_compared_honestly() -> None:
    """Booked in the past and not started: the live figures look better than they are,
    and the overdue count says so."""
    tasks = [
        Task(1, 1, "Done", 60, status=TaskStatus.DONE, actual_start=NOW - timedelta(hours=3)),
        Task(2, 1, "Running", 60, status=TaskStatus.IN_PROGRESS),
        Task(3, 1, "Forgotten", 60, status=TaskStatus.SCHEDULED),
        Task(4, 1, "Never booked", 60),
    ]
    live = plan(
        tasks,
        [
            slot(1, NOW - timedelta(hours=3)),
            slot(2, NOW - timedelta(minutes=30)),
            slot(3, NOW - timedelta(hours=2)),
        ],
        due=NOW + timedelta(minutes=30),
    )
    draft_slots = {**live.assignments, 3: slot(3, NOW + timedelta(minutes=30))}
    draft_slots[4] = slot(4, NOW + timedelta(minutes=90))
    draft = plan(tasks, list(draft_slots.values()), due=live.jobs[1].due or NOW)

    kpis = compare_kpis(live, draft, now=NOW)

    assert kpis["overdue_starts"] == {"before": 1.0, "after": 0.0}
    # Task 4 was never booked: the job is new work, not compared with the live plan.
    # Due 10:30; the draft ends at 12:30: 120 minutes late, weight 2 (priority 1).
    assert kpis["weighted_lateness"] == {"before": 0.0, "after": 0.0}
    assert kpis["new_work"] == {"jobs": 1.0, "tasks": 1.0, "weighted_lateness": 240.0,
                                "makespan": 150.0}  # fmt: skip
    assert set(changed_slots(live, draft.assignments)) == {3, 4}


def test_jobs_complete_before_are_compared_and_new_work_stands_on_its_own() -> None:
    """Order 1 was fully booked and gets later; order 2 comes from the tray. The
    comparison is order 1 before and after; order 2's lateness is its own line."""
    tasks = [Task(1, 1, "Mill", 60, status=TaskStatus.SCHEDULED), Task(2, 2, "Turn", 60)]
    jobs = {
        1: Job(1, "Order 1", priority=0, due=NOW + timedelta(hours=2)),
        2: Job(2, "Order 2", priority=0, due=NOW),
    }
    live = Plan({1: MILL}, {1: OLGA}, jobs, {t.id: t for t in tasks}, {1: slot(1, NOW)})
    draft = Plan(
        {1: MILL},
        {1: OLGA},
        jobs,
        {t.id: t for t in tasks},
        {1: slot(1, NOW + timedelta(hours=2)), 2: slot(2, NOW)},
    )

    kpis = compare_kpis(live, draft, now=NOW)

    assert kpis["weighted_lateness"] == {"before": 0.0, "after": 60.0}
    assert kpis["makespan"] == {"before": 60.0, "after": 180.0}
    assert kpis["new_work"] == {"jobs": 1.0, "tasks": 1.0, "weighted_lateness": 60.0,
                                "makespan": 60.0}  # fmt: skip
