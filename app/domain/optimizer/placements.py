"""The solved model's answer as slots: each placed task's operator, machine, start and end.

A pooled kind's resource (see `model`) is chosen by the solver as "any of
the pool" and handed out here, after the solve.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from app.domain.optimizer.model import ScheduleModel
from app.domain.plan import Assignment

__all__ = ["placements"]


def placements(model: ScheduleModel, values: Mapping[Any, int]) -> dict[int, Assignment]:
    """The solved slots, by task id; absent tasks join `unplaceable`."""
    return _hand_out(model, _on_grid(model, values))


def _on_grid(model: ScheduleModel, values: Mapping[Any, int]) -> dict[int, Assignment]:
    """Slots on the grid; a pooled kind's resource is 0 until handed out."""
    placed: dict[int, Assignment] = {}
    for task_id, t in model.tasks.items():
        if t.present is not None and not values[t.present]:
            model.unplaceable[task_id] = "does not fit with the rest of the plan"
            continue
        start = model.grid.at(values[t.start])
        equipment_id = _chosen(t.equipment, t.equipment_literals, values, model.equipment_pool)
        placed[task_id] = Assignment(
            task_id=task_id,
            operator_id=_chosen(t.operators, t.operator_literals, values, model.operator_pool),
            equipment_id=equipment_id,
            start=start,
            end=start + timedelta(minutes=t.task.duration_on(equipment_id)),
        )
    return placed


def _chosen(
    candidates: tuple[int, ...],
    literals: tuple[Any, ...],
    values: Mapping[Any, int],
    pool: tuple[int, ...],
) -> int:
    if pool:
        return 0
    if not literals:
        return candidates[0]
    return next(rid for rid, literal in zip(candidates, literals, strict=True) if values[literal])


def _hand_out(model: ScheduleModel, placed: dict[int, Assignment]) -> dict[int, Assignment]:
    """Give each pooled slot a free resource of the pool, in start order.

    Never more slots run at once than the pool has resources (see the model),
    so one is always free; a task keeps its live resource when that one is.
    """
    pool = model.operator_pool or model.equipment_pool
    if not pool:
        return placed
    operators = bool(model.operator_pool)
    free_at = dict.fromkeys(pool, model.grid.origin - timedelta(days=1))
    handed: dict[int, Assignment] = {}
    for slot in sorted(placed.values(), key=lambda a: (a.start, a.end, a.task_id)):
        current = model.tasks[slot.task_id].current
        wanted = None if current is None else (
            current.operator_id if operators else current.equipment_id
        )  # fmt: skip
        free = [rid for rid in pool if free_at[rid] <= slot.start]
        # `free` is never empty; were it, validation would reject the proposal.
        rid = wanted if wanted in free else (free or [min(pool, key=free_at.__getitem__)])[0]
        free_at[rid] = slot.end
        handed[slot.task_id] = (
            Assignment(slot.task_id, rid, slot.equipment_id, slot.start, slot.end)
            if operators
            else Assignment(slot.task_id, slot.operator_id, rid, slot.start, slot.end)
        )
    return handed
