"""What a run of the optimizer is asked and what it tells.

`OptimizerSettings` are the terms of a run; while it searches it reports
`Progress`, and it ends with an `OptimizationResult` whose `SolveStatus`
says whether the plan is offered.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.domain.conflicts import Conflict
from app.domain.plan import Assignment

__all__ = ["OptimizationResult", "OptimizerSettings", "Progress", "SolveStatus"]


class SolveStatus(enum.StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"
    # The solver's answer failed validation: never offered.
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OptimizerSettings:
    time_limit_s: float = 30.0
    workers: int = 2
    # The model's time grid; 5 suits a real plant, 1 an imported job shop.
    time_unit_minutes: int = 1
    # How far ahead tasks may go. None: an estimate from the open work
    # shared out over the resources (`optimizer_scope`).
    horizon_days: float | None = None
    # Open tasks the scheduler pinned: kept where they are.
    pinned: frozenset[int] = frozenset()
    seed: int = 0
    # Open tasks from which the plan is made by large-neighbourhood search
    # (`optimizer.scale`) rather than one model of them all.
    at_scale_tasks: int = 500


@dataclass(frozen=True, slots=True)
class Progress:
    # "placement" (only when not all tasks fit), "lateness" or "makespan"
    phase: str
    # The current solve's objective and best bound, in its own grid units.
    objective: float
    best_bound: float
    weighted_lateness_minutes: int
    makespan_minutes: int
    elapsed_s: float
    solutions: int
    # At plant scale (`optimizer.scale`): better plans since the first, the
    # first plan's weighted lateness, and tasks off their live slot.
    improvements: int = 0
    first_weighted_lateness_minutes: int | None = None
    changes: int | None = None
    # False when the bound says nothing worth a gap (a lateness bound of 0
    # while the plan is late).
    bound_known: bool = True

    @property
    def gap(self) -> float:
        """Relative distance to the bound, 0 when proved optimal."""
        return abs(self.objective - self.best_bound) / max(1.0, abs(self.objective))


@dataclass(frozen=True, slots=True)
class OptimizationResult:
    status: SolveStatus
    # The whole proposed plan's slots (kept and moved), by task id; empty
    # when nothing is offered.
    assignments: Mapping[int, Assignment]
    # The open tasks it placed (and so may move), and those it could not, why.
    placed: frozenset[int] = frozenset()
    unplaceable: Mapping[int, str] = field(default_factory=dict)
    weighted_lateness_minutes: int = 0
    makespan_minutes: int = 0
    solve_seconds: float = 0.0
    solutions: int = 0
    conflicts: tuple[Conflict, ...] = ()
    # How the plan was found: "one model" (every open task in one CP-SAT model)
    # or "neighbourhoods" (a first plan improved neighbourhood by neighbourhood).
    search: str = "one model"
    # The lateness's relative distance to a proved lower bound (0: proved least);
    # None when not known.
    gap: float | None = None
    # Why the search ended: "time limit", "stopped", "proved" (one model) or
    # "nothing left to gain" (neighbourhoods).
    ending: str = ""
    # Neighbourhoods: the first plan's figures and the better plans found since.
    first_plan: Mapping[str, float] = field(default_factory=dict)
    improvements: int = 0
    changes: int = 0

    @property
    def offered(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
