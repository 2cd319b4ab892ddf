"""Optimizer runs: start one, watch it, cancel it, and the run itself on a worker.

    run_id = await start_optimization(services=s, actor=a, time_limit_s=30, job_ids=None)
    await run_status(services=s, actor=a, run_id=run_id)   # queued/running, progress, draft_id
    await cancel_run(services=s, actor=a, run_id=run_id)

A run is queued (`run_optimization`). It reads the live plan
at revision R with every task's version (versions first: a write landing
between the two reads makes the draft look stale, never fresh), solves in a
thread with progress reported as the objective and bound improve, and
stores a draft schedule (kind=draft, base_revision=R): the whole proposed
plan's slots, plus, for each task whose slot it changes, the version and
slot the run saw (`draft_store`). What becomes of the draft: `drafts`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app import clock
from app.background.heap import steady_heap
from app.background.queue import ActiveRun
from app.background.records import RunRecord
from app.db import tables as t
from app.domain.conflicts import Severity
from app.domain.optimizer import (
    OptimizationResult,
    OptimizerSettings,
    Progress,
    SolveStatus,
    optimize,
)
from app.domain.plan import Plan
from app.domain.plan_comparison import changed_slots, compare_kpis
from app.services.access import require
from app.services.background import queue_of, run_actor, run_of_kind
from app.services.context import Actor, Services
from app.services.draft_store import Proposal, read_live_plan, store_draft
from app.services.errors import (
    InvalidInput,
)

KIND = "plan.optimize"
TIME_LIMIT_S = (0.5, 600.0)
# Loading the plan and storing the draft take time beyond the solve.
TIMEOUT_MARGIN_S = 120.0
# How long the search waits for its first plan to be stored, at most.
FIRST_REPORT_WAIT_S = 0.5
# The words the optimizer panel uses for a run's queue status.
RUN_STATES = {"waiting": "queued", "active": "running"}


@dataclass(frozen=True, slots=True)
class OptimizationRun:
    run_id: str
    # queued | running | done | failed | cancelled
    status: str
    progress: dict[str, Any]
    draft_id: int | None
    message: str | None
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    # While it waits or runs: what the user should know about its worker, if anything.
    notice: str | None = None
    # Once done: what the solver reached (`_reached`), with its time and plans found.
    solver: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


# --- starting and watching a run -----------------------------------------------------------


async def start_optimization(
    *,
    services: Services,
    actor: Actor,
    time_limit_s: float = 30.0,
    job_ids: list[int] | None = None,
    workers: int = 2,
    time_unit_minutes: int = 5,
) -> str:
    """Queue an optimizer run over all open jobs (or `job_ids`' tasks only); its run id."""
    require(actor, "plan.optimize")
    low, high = TIME_LIMIT_S
    if not low <= time_limit_s <= high:
        raise InvalidInput(
            f"time_limit_s must be {low} to {high:.0f} seconds", {"time_limit_s": time_limit_s}
        )
    if job_ids is not None:
        await _check_jobs_exist(services, job_ids)
    payload = {
        "time_limit_s": time_limit_s,
        "job_ids": None if job_ids is None else sorted(set(job_ids)),
        "workers": workers,
        "time_unit_minutes": time_unit_minutes,
        "actor": run_actor(actor),
    }
    return await queue_of(services).enqueue(
        KIND,
        payload,
        priority=5,
        timeout_s=time_limit_s + TIMEOUT_MARGIN_S,
        max_retries=1,
        created_by=actor.user_id,
    )


async def run_status(*, services: Services, actor: Actor, run_id: str) -> OptimizationRun:
    require(actor, "plan.optimize")
    found = await run_of_kind(services, run_id, KIND, entity="optimizer runs")
    result = found.result or {}
    message = result.get("message")
    if found.status == "failed":
        message = f"The optimizer run failed: {found.error}"
    elif found.status == "cancelled":
        message = "The run was cancelled before it found a plan."
    return OptimizationRun(
        notice=await worker_notice(services, found),
        run_id=found.id,
        status=RUN_STATES.get(found.status, found.status),
        progress=found.progress or {},
        draft_id=result.get("draft_id"),
        message=message,
        attempts=found.attempts,
        created_at=found.created_at,
        finished_at=found.finished_at,
        solver={key: result[key] for key in _SOLVER_KEYS if key in result} or None,
    )


# What a finished run's status repeats of its result (`run_optimization`).
_SOLVER_KEYS = (
    "solver_status", "reached", "search", "gap", "ending", "first_plan", "improvements",
    "changes_to_live_plan", "weighted_lateness_minutes", "solve_seconds", "solutions",
    "error_conflicts", "promised_weighted_lateness_minutes",
)  # fmt: skip


async def worker_notice(services: Services, found: RunRecord) -> str | None:
    """Say so when a run's worker went quiet, died, or there is none (the sweep acts later)."""
    queue = queue_of(services)
    if found.status == "active":
        beat = found.heartbeat_at or found.started_at
        silent_s = (clock.now() - beat).total_seconds() if beat is not None else 0.0
        if silent_s > 2 * queue.sweep_policy.heartbeat_s:
            return (
                f"The worker running this has not answered for {silent_s:.0f} s. "
                "If it stopped, the run is tried again shortly."
            )
        return None
    if found.status != "waiting":
        return None
    notices = []
    last = found.attempt_log[-1] if found.attempt_log else {}
    if "stopped answering" in str(last.get("error") or ""):
        notices.append(
            f"The worker stopped during the run; retrying (try {found.attempts + 1} "
            f"of {found.max_retries + 1})."
        )
    if (await queue.liveness()).workers == []:
        notices.append("No worker is running: the run starts as soon as one does.")
    return " ".join(notices) or None


async def cancel_run(*, services: Services, actor: Actor, run_id: str) -> OptimizationRun:
    """Stop a run: a queued one never starts, a running one keeps its best plan so far."""
    await run_status(services=services, actor=actor, run_id=run_id)
    await queue_of(services).cancel(run_id)
    return await run_status(services=services, actor=actor, run_id=run_id)


async def _check_jobs_exist(services: Services, job_ids: list[int]) -> None:
    async with services.db.read() as session:
        found = set((await session.scalars(select(t.Job.id).where(t.Job.id.in_(job_ids)))).all())
    if unknown := sorted(set(job_ids) - found):
        raise InvalidInput("some jobs do not exist", {"unknown_job_ids": unknown})


# --- the run itself (on a worker) ------------------------------------------------------------


async def run_optimization(services: Services, run: ActiveRun) -> dict[str, Any]:
    with steady_heap():  # the first plan's burst of objects: the collector leaves the rest be
        return await _optimize(services, run)


async def _optimize(services: Services, run: ActiveRun) -> dict[str, Any]:
    settings = run.payload
    seen = await read_live_plan(services)
    revision, versions, plan = seen.revision, seen.versions, seen.plan
    now = clock.now()
    job_ids = settings.get("job_ids")
    pinned = frozenset(
        task.id
        for task in plan.tasks.values()
        if job_ids is not None and task.job_id not in job_ids
    )
    options = OptimizerSettings(
        time_limit_s=float(settings["time_limit_s"]),
        # More solver threads than cores only starves the app beside the solver.
        workers=min(int(settings.get("workers", 2)), os.cpu_count() or 1),
        time_unit_minutes=int(settings.get("time_unit_minutes", 5)),
        pinned=pinned,
        at_scale_tasks=services.settings.optimizer_at_scale_tasks,
    )

    def report(progress: Progress) -> None:
        first = run.progress is None
        run.report({**_progress(progress), "limit_s": options.time_limit_s})
        if first:
            # The panel waits for the first plan: stored before the search goes on.
            run.wait_saved(FIRST_REPORT_WAIT_S)

    result = await asyncio.to_thread(
        optimize, plan, now=now, settings=options, on_progress=report, should_stop=run.should_stop
    )
    outcome = {
        "solver_status": str(result.status),
        "weighted_lateness_minutes": result.weighted_lateness_minutes,
        "makespan_minutes": result.makespan_minutes,
        "solve_seconds": round(result.solve_seconds, 2),
        "solutions": result.solutions,
        "unplaceable": {str(k): v for k, v in result.unplaceable.items()},
        "stopped_early": run.cancelled,
        "error_conflicts": sum(c.severity is Severity.ERROR for c in result.conflicts),
        **_reached(result),
    }
    if not result.offered:
        message = f"The optimizer found no plan to offer ({result.status})."
        return {**outcome, "draft_id": None, "message": message}
    draft_id, changes = await _store_draft(services, run, plan, result, revision, versions, now)
    return {**outcome, "draft_id": draft_id, "changes": changes}


def _progress(progress: Progress) -> dict[str, Any]:
    found = {
        "phase": progress.phase,
        "objective": progress.objective,
        "best_bound": progress.best_bound if progress.bound_known else None,
        "gap": round(progress.gap, 4) if progress.bound_known else None,
        "weighted_lateness_minutes": progress.weighted_lateness_minutes,
        "makespan_minutes": progress.makespan_minutes,
        "elapsed_s": round(progress.elapsed_s, 2),
        "solutions": progress.solutions,
    }
    if progress.first_weighted_lateness_minutes is not None:
        found["first_weighted_lateness_minutes"] = progress.first_weighted_lateness_minutes
        found["improvements"] = progress.improvements
        found["changes"] = progress.changes
    return found


def _reached(result: OptimizationResult) -> dict[str, Any]:
    """What the solver reached, in the API's words: `reached` is "optimal",
    "feasible" (with `gap`, the lateness's distance to its lower bound, when
    known) or "best found" (the time ran out, or the search was stopped,
    before anything could be proved); and for a search by neighbourhoods the
    first plan and what improved since."""
    if result.status is SolveStatus.OPTIMAL:
        reached = "optimal"
    elif result.search == "neighbourhoods" and result.ending != "nothing left to gain":
        reached = "best found"
    elif result.status is SolveStatus.FEASIBLE:
        reached = "feasible"
    else:
        reached = str(result.status)
    found: dict[str, Any] = {
        "reached": reached,
        "search": result.search,
        "gap": None if result.gap is None else round(result.gap, 4),
        "ending": result.ending,
    }
    if result.first_plan:
        first = dict(result.first_plan)
        found["weighted_lateness_minutes"] = first.pop("best_weighted_lateness_minutes", None)
        found["promised_weighted_lateness_minutes"] = first.pop(
            "best_promised_weighted_lateness_minutes", None
        )
        found["first_plan"] = first
        found["improvements"] = result.improvements
        found["changes_to_live_plan"] = result.changes
    return found


async def _store_draft(
    services: Services,
    run: ActiveRun,
    plan: Plan,
    result: OptimizationResult,
    revision: int,
    versions: dict[int, int],
    now: datetime,
) -> tuple[int, int]:
    proposal = Plan(
        plan.equipment, plan.operators, plan.jobs, plan.tasks, result.assignments, plan.timezone
    )
    changed = changed_slots(plan, result.assignments)
    draft_id = await store_draft(
        services,
        Proposal(
            name=f"Optimizer draft {run.id[:8]}",
            run_id=run.id,
            solver_status=str(result.status),
            # What the solver reached rides along with the figures (no new column).
            kpis={**compare_kpis(plan, proposal, now=now), "solver": _reached(result)},
            created_by=run.created_by,
            timezone=plan.timezone,
            base_revision=revision,
            slots=result.assignments.values(),
            before={task_id: before for task_id, (before, _) in changed.items()},
            versions=versions,
            now=now,
        ),
    )
    return draft_id, len(changed)


__all__ = [
    "KIND",
    "OptimizationRun",
    "cancel_run",
    "run_optimization",
    "run_status",
    "start_optimization",
]
