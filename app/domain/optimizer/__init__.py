"""The optimizer: a whole-plant plan from a live plan, pure and without I/O.

`terms` says what a run is asked and what it tells, `solve` runs the search,
`model` builds the CP-SAT model, `scope` decides what may move and on which
time grid, `start` builds the first plan by a dispatching rule, `proposal`
checks the answer before it is offered. Callers use the names below.
"""

from app.domain.optimizer.solve import optimize
from app.domain.optimizer.terms import (
    OptimizationResult,
    OptimizerSettings,
    Progress,
    SolveStatus,
)

__all__ = [
    "OptimizationResult",
    "OptimizerSettings",
    "Progress",
    "SolveStatus",
    "optimize",
]
