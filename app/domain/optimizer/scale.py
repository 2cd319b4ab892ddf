"""`optimize` at plant scale: the neighbourhood search (`optimizer.lns`) as an
`OptimizationResult`, with progress from the first plan on.

Progress is reported once the first plan stands and after every
neighbourhood (so the elapsed time ticks even while nothing improves). Its
objective is the weighted lateness in minutes and its bound the lateness
lower bound, so the gap says how far the lateness could still fall at most.

The best plan is validated like any proposal; should it fail (it should
not: the neighbourhoods respect every rule the model does), the first plan
is offered instead, validated in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from app.domain.optimizer.lns import Search, as_assignments, search
from app.domain.optimizer.model import ScheduleModel
from app.domain.optimizer.proposal import offer
from app.domain.optimizer.scope import Scope
from app.domain.optimizer.terms import (
    OptimizationResult,
    OptimizerSettings,
    Progress,
    SolveStatus,
)
from app.domain.plan import Plan

__all__ = ["optimize_at_scale"]

# Progress after the first plan at most this often (each report is a write).
_REPORT_EVERY_S = 0.5


def optimize_at_scale(
    plan: Plan,
    scope: Scope,
    *,
    now: datetime,
    settings: OptimizerSettings,
    started: float,
    on_progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> OptimizationResult:
    unit = scope.grid.unit_minutes
    first_slots: dict[int, tuple[int, int, int]] = {}

    last_report = [0.0]

    def report(found: Search, model: ScheduleModel) -> None:
        if not first_slots:
            first_slots.update(found.slots)
        elif time.monotonic() - last_report[0] < _REPORT_EVERY_S:
            return  # small neighbourhoods solve in milliseconds: no flood of progress writes
        last_report[0] = time.monotonic()
        if on_progress is None:
            return
        on_progress(
            Progress(
                phase="first plan" if found.steps == 0 else "improving",
                objective=found.score.weighted_lateness * unit,
                best_bound=found.lateness_bound * unit,
                bound_known=_gap(found.score.weighted_lateness, found.lateness_bound) is not None,
                weighted_lateness_minutes=found.score.weighted_lateness * unit,
                makespan_minutes=found.score.makespan * unit,
                elapsed_s=time.monotonic() - started,
                solutions=found.improvements + 1,
                improvements=found.improvements,
                first_weighted_lateness_minutes=found.first.weighted_lateness * unit,
                changes=found.score.changes,
            )
        )

    model, found = search(
        plan,
        scope,
        now=now,
        time_limit_s=settings.time_limit_s,
        workers=settings.workers,
        seed=settings.seed,
        started=started,
        on_step=report,
        should_stop=should_stop,
    )
    unplaceable = dict(model.unplaceable)
    for task_id in model.tasks.keys() - found.slots.keys():
        unplaceable[task_id] = "does not fit with the rest of the plan"
    lateness = found.score.weighted_lateness
    reached = {
        "search": "neighbourhoods",
        "gap": _gap(lateness, found.lateness_bound),
        "ending": found.ending,
        "first_plan": {
            "weighted_lateness_minutes": found.first.weighted_lateness * unit,
            "changes": found.first.changes,
            "makespan_minutes": found.first.makespan * unit,
            "seconds": round(found.first_seconds, 2),
            # Of the jobs the live plan had complete (the score's first term).
            "promised_weighted_lateness_minutes": found.first.promised_lateness * unit,
            # The best plan's, on the same footing (the search's grid and jobs).
            "best_weighted_lateness_minutes": lateness * unit,
            "best_promised_weighted_lateness_minutes": found.score.promised_lateness * unit,
        },
        "improvements": found.improvements,
        "changes": found.score.changes,
    }
    result = offer(
        plan,
        unplaceable,
        as_assignments(model, found.slots),
        SolveStatus.FEASIBLE,
        now=now,
        started=started,
        solutions=found.improvements + 1,
        **reached,
    )
    if result.status is SolveStatus.REJECTED and found.improvements:
        # Not expected: the first plan instead, checked in turn.
        reached.update(improvements=0, changes=found.first.changes, gap=None)
        return offer(
            plan,
            unplaceable,
            as_assignments(model, first_slots),
            SolveStatus.FEASIBLE,
            now=now,
            started=started,
            solutions=1,
            **reached,
        )
    return result


def _gap(lateness: int, bound: int) -> float | None:
    """How far the lateness could still fall at most, relative; None when the
    bound says nothing (0 while the plan is late: lateness may be unavoidable)."""
    if lateness <= bound:
        return 0.0
    if bound <= 0:
        return None
    return (lateness - bound) / lateness
