"""How a proposed plan differs from the live one: which slots change, and the KPIs.

Pure: two `Plan`s (or a plan and the proposal's slots) and `now` in, plain
values out. The optimizer's draft preview and its stale check build on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from app.domain.kpis import utilization_by_equipment
from app.domain.optimizer.model import lateness_weight
from app.domain.plan import Assignment, Interval, Plan, TaskStatus

__all__ = ["changed_slots", "compare_kpis", "plan_kpis"]

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


def plan_kpis(plan: Plan, *, now: datetime, window: Interval) -> dict[str, float]:
    """Weighted lateness and makespan in minutes; machine utilization in `window`, 0..1;
    overdue starts: tasks booked to start before `now` that have not started."""
    last_end: dict[int, datetime] = {}
    makespan_end = now
    overdue = 0
    for slot in plan.assignments.values():
        task = plan.tasks.get(slot.task_id)
        if task is None:
            continue
        last_end[task.job_id] = max(slot.end, last_end.get(task.job_id, slot.end))
        if task.status is not TaskStatus.DONE:
            makespan_end = max(makespan_end, slot.end)
        if slot.start < now and task.status in _NOT_STARTED:
            overdue += 1
    lateness = 0
    for job_id, end in last_end.items():
        job = plan.jobs.get(job_id)
        if job is not None and job.due is not None and end > job.due:
            lateness += lateness_weight(job.priority) * _minutes(end - job.due)
    machines = utilization_by_equipment(plan, window=window)
    available = sum(max(0.0, m.available_minutes) for m in machines)
    booked = sum(m.booked_minutes for m in machines)
    return {
        "weighted_lateness": float(lateness),
        "makespan": float(_minutes(makespan_end - now)),
        "utilization": booked / available if available > 0 else 0.0,
        "overdue_starts": float(overdue),
    }


def compare_kpis(before: Plan, after: Plan, *, now: datetime) -> dict[str, dict[str, float]]:
    """Each KPI before and after, utilization over the same window (now to the later end)."""
    ends = [slot.end for plan in (before, after) for slot in plan.assignments.values()]
    window = Interval(now, max([*ends, now + timedelta(hours=1)]))
    old = plan_kpis(before, now=now, window=window)
    new = plan_kpis(after, now=now, window=window)
    return {name: {"before": old[name], "after": new[name]} for name in old}


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))
