"""How a proposed plan differs from the live one: which slots change, and the KPIs.

Pure: two `Plan`s (or a plan and the proposal's slots) and `now` in, plain
values out. The optimizer's draft preview and its stale check build on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from app.domain.kpis import utilization_by_equipment
from app.domain.optimizer.model import lateness_weight
from app.domain.plan import Assignment, Interval, Plan, TaskStatus

__all__ = ["changed_slots", "compare_kpis", "complete_jobs", "plan_kpis"]

SlotChange = tuple[Assignment | None, Assignment | None]
_NOT_STARTED = frozenset({TaskStatus.PENDING, TaskStatus.SCHEDULED})


def changed_slots(before: Plan, after: Mapping[int, Assignment]) -> dict[int, SlotChange]:
    """Every task whose slot differs: (before, after), None for "in the tray"."""
    changed: dict[int, SlotChange] = {}
    for task_id in before.assignments.keys() | after.keys():
        old, new = before.assignments.get(task_id), after.get(task_id)
        if old != new:
            changed[task_id] = (old, new)
    return changed


def plan_kpis(
    plan: Plan, *, now: datetime, window: Interval, jobs: Collection[int] | None = None
) -> dict[str, float]:
    """Weighted lateness and makespan in minutes (of `jobs` only, when given);
    machine utilization in `window`, 0..1; overdue starts: tasks booked to
    start before `now` that have not started."""
    last_end: dict[int, datetime] = {}
    makespan_end = now
    overdue = 0
    for slot in plan.assignments.values():
        task = plan.tasks.get(slot.task_id)
        if task is None:
            continue
        if slot.start < now and task.status in _NOT_STARTED:
            overdue += 1
        if jobs is not None and task.job_id not in jobs:
            continue
        last_end[task.job_id] = max(slot.end, last_end.get(task.job_id, slot.end))
        if task.status is not TaskStatus.DONE:
            makespan_end = max(makespan_end, slot.end)
    machines = utilization_by_equipment(plan, window=window)
    available = sum(max(0.0, m.available_minutes) for m in machines)
    booked = sum(m.booked_minutes for m in machines)
    return {
        "weighted_lateness": float(_lateness(plan, last_end)),
        "makespan": float(_minutes(makespan_end - now)),
        "utilization": booked / available if available > 0 else 0.0,
        "overdue_starts": float(overdue),
    }


def complete_jobs(plan: Plan) -> set[int]:
    """The jobs every task of which has a slot in `plan`."""
    jobs = {task.job_id for task in plan.tasks.values()}
    jobs -= {t.job_id for t in plan.tasks.values() if t.id not in plan.assignments}
    return jobs


def compare_kpis(before: Plan, after: Plan, *, now: datetime) -> dict[str, Any]:
    """Each KPI before and after, like with like: weighted lateness and makespan
    over the jobs `before` had complete (every task with a slot), utilization
    over the same window (now to the later end). The other jobs - work the
    draft schedules anew, in part or whole - on their own line (`new_work`):
    their tasks newly placed, and their weighted lateness and makespan in the
    draft, with nothing before to compare with."""
    ends = [slot.end for plan in (before, after) for slot in plan.assignments.values()]
    window = Interval(now, max([*ends, now + timedelta(hours=1)]))
    complete = complete_jobs(before)
    old = plan_kpis(before, now=now, window=window, jobs=complete)
    new = plan_kpis(after, now=now, window=window, jobs=complete)
    found: dict[str, Any] = {name: {"before": old[name], "after": new[name]} for name in old}
    others = {task.job_id for task in after.tasks.values()} - complete
    placed = [t for t in after.assignments if t not in before.assignments and t in after.tasks]
    fresh = plan_kpis(after, now=now, window=window, jobs=others)
    found["new_work"] = {
        "jobs": float(len({after.tasks[t].job_id for t in placed})),
        "tasks": float(len(placed)),
        "weighted_lateness": fresh["weighted_lateness"],
        "makespan": fresh["makespan"],
    }
    return found


def _lateness(plan: Plan, last_end: Mapping[int, datetime]) -> int:
    lateness = 0
    for job_id, end in last_end.items():
        job = plan.jobs.get(job_id)
        if job is not None and job.due is not None and end > job.due:
            lateness += lateness_weight(job.priority) * _minutes(end - job.due)
    return lateness


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))
