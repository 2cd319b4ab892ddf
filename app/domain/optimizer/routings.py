"""Alternative routings in the model: a task's time on each machine that may run it.

A task with different durations on its candidate machines gets a size
variable on its interval, tied to each machine's own duration where the
model chooses the machine (`model._choose`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ortools.sat.python import cp_model

from app.domain.optimizer.scope import TimeGrid
from app.domain.plan import Task

if TYPE_CHECKING:
    from app.domain.optimizer.model import ModelTask

__all__ = ["routed_duration", "routed_durations", "routed_interval"]


def routed_durations(task: Task, equipment: tuple[int, ...], grid: TimeGrid) -> dict[int, int]:
    """Grid units on each candidate equipment (alternative routings)."""
    return {e: grid.units(task.duration_on(e)) for e in equipment}


def routed_duration(
    task: Task, equipment: tuple[int, ...], grid: TimeGrid
) -> tuple[int, dict[int, int]]:
    """A task's shortest time on its candidate equipment, in grid units, and
    each one's own when they differ (else {}: no choice to model)."""
    if not task.alternatives:
        return grid.units(task.duration_minutes), {}
    durations = routed_durations(task, equipment, grid)
    shortest = min(durations.values(), default=grid.units(task.duration_minutes))
    return shortest, durations if len(set(durations.values())) > 1 else {}


def routed_interval(
    m: cp_model.CpModel, task: ModelTask, durations: dict[int, int], name: str
) -> Any:
    """The task's interval when its duration depends on the equipment it gets:
    a size variable that `_choose` ties to each equipment's own duration."""
    task.durations = durations
    task.size = m.new_int_var(min(durations.values()), max(durations.values()), f"size_{name}")
    end = m.new_int_var(task.earliest, task.latest, f"end_{name}")
    if task.present is None:
        return m.new_interval_var(task.start, task.size, end, name)
    return m.new_optional_interval_var(task.start, task.size, end, task.present, name)
