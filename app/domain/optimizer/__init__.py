"""The optimizer: a whole-plant plan from a live plan, pure and without I/O.

`solve` runs the search, `model` builds the CP-SAT model, `scope` decides what
may move and on which time grid, `start` builds the first plan by a
dispatching rule. Callers use the names below.
"""

from app.domain.optimizer.solve import (
    OptimizationResult,
    OptimizerSettings,
    Progress,
    SolveStatus,
    optimize,
)

__all__ = [
    "OptimizationResult",
    "OptimizerSettings",
    "Progress",
    "SolveStatus",
    "optimize",
]
