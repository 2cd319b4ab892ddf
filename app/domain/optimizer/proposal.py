"""The proposal: the live plan with the optimizer's slots in place, checked before it is offered.

The open tasks the search placed take their new slots (locked slots kept,
tasks that cannot be placed unscheduled) and the whole plan goes through
`validate_plan`. Any `error` conflict on a task the optimizer placed makes
it `rejected`, never offered; errors among kept slots alone are the live
plan's own and are reported, not blamed on the proposal.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from app.domain.conflicts import Severity
from app.domain.optimizer.model import lateness_weight
from app.domain.optimizer.terms import OptimizationResult, SolveStatus
from app.domain.plan import Assignment, Plan
from app.domain.validation import validate_plan

__all__ = ["offer"]


def offer(
    plan: Plan,
    unplaceable: Mapping[int, str],
    moved: Mapping[int, Assignment],
    status: SolveStatus,
    *,
    now: datetime,
    started: float,
    solutions: int,
    **reached: Any,
) -> OptimizationResult:
    """The proposal: the live plan with `moved` in place of the open tasks'
    slots (those left out unscheduled), validated; `reached` as it is."""

    def finished(**kwargs: Any) -> OptimizationResult:
        return OptimizationResult(
            unplaceable=dict(unplaceable),
            solve_seconds=time.monotonic() - started,
            solutions=solutions,
            **reached,
            **kwargs,
        )

    dropped = set(moved) | set(unplaceable)
    assignments = {t: a for t, a in plan.assignments.items() if t not in dropped}
    assignments.update(moved)
    proposal = Plan(
        equipment=plan.equipment,
        operators=plan.operators,
        jobs=plan.jobs,
        tasks=plan.tasks,
        assignments=assignments,
        timezone=plan.timezone,
    )
    conflicts = tuple(validate_plan(proposal, now=now))
    if any(c.severity is Severity.ERROR and set(c.task_ids) & moved.keys() for c in conflicts):
        return finished(status=SolveStatus.REJECTED, assignments={}, conflicts=conflicts)
    finish = max((a.end for a in moved.values()), default=now)
    return finished(
        status=status,
        assignments=assignments,
        placed=frozenset(moved),
        weighted_lateness_minutes=_weighted_lateness(proposal, set(moved)),
        makespan_minutes=max(0, _minutes(finish - now)),
        conflicts=conflicts,
    )


def _weighted_lateness(plan: Plan, moved: set[int]) -> int:
    """Σ weight * minutes late over the jobs the proposal moved tasks of."""
    jobs = {plan.tasks[t].job_id for t in moved}
    last: dict[int, datetime] = {}
    for slot in plan.assignments.values():
        task = plan.tasks.get(slot.task_id)
        if task is not None and task.job_id in jobs:
            last[task.job_id] = max(slot.end, last.get(task.job_id, slot.end))
    total = 0
    for job_id, end in last.items():
        job = plan.jobs.get(job_id)
        if job is not None and job.due is not None:
            total += lateness_weight(job.priority) * max(0, _minutes(end - job.due))
    return total


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
