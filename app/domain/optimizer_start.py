"""The optimizer's starting plan for a large model: the live plan, mended -
every task in the live plan's order at its earliest free slot.

CP-SAT completes a partial hint poorly when there are thousands of tasks
with several candidates each; with this whole plan as the hint of the
optional model (`optimizer_model`) it has a solution at once and improves
from there. Only a hint: the solver checks it, so a slot here that breaks a
rule costs a solution, never validity.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from app.domain.plan import Assignment

if TYPE_CHECKING:
    from app.domain.optimizer_model import ScheduleModel
    from app.domain.optimizer_scope import Span

__all__ = ["Busy", "greedy_slots"]


class Busy:
    """A resource's busy spans, sorted and disjoint, to find the first gap."""

    def __init__(self, spans: Iterable[Span]) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in sorted(spans):
            self.take(start, end)

    def first_free(self, at: int, duration: int) -> int:
        i = bisect_right(self.ends, at)
        while i < len(self.starts) and self.starts[i] < at + duration:
            at = max(at, self.ends[i])
            i += 1
        return at

    def take(self, start: int, end: int) -> None:
        i = bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


# Greedy passes at most: each later one places first what an earlier one left out.
_PASSES = 3


def greedy_slots(model: ScheduleModel) -> dict[int, Assignment]:
    """Every task at its earliest free slot, in dependency order and the order
    of the live plan: its live slot when that is still free, else the earliest
    on any candidate pair.

    Live slots are not reserved up front: a task that must move then pushes
    the tasks after it on by a little, rather than itself past all of them.
    Only a hint: the solver checks it. A task that does not fit before its
    latest end (a locked successor waits for it), or waits for one that does
    not, is left out - and goes first in the next pass, with what it waits
    for, since the solver can only start from a plan without it.
    """
    best: dict[int, Assignment] = {}
    first: set[int] = set()
    for _ in range(_PASSES):
        placed = _one_pass(model, first)
        if len(placed) > len(best):
            best = placed
        missing = [t for t in model.tasks if t not in placed]
        if not missing:
            break
        first |= _with_predecessors(model, missing)
    return best


def _with_predecessors(model: ScheduleModel, task_ids: Iterable[int]) -> set[int]:
    found: set[int] = set()
    stack = list(task_ids)
    while stack:
        task_id = stack.pop()
        if task_id in found or task_id not in model.tasks:
            continue
        found.add(task_id)
        stack.extend(model.tasks[task_id].task.predecessors)
    return found


def _one_pass(model: ScheduleModel, first: set[int]) -> dict[int, Assignment]:
    free = Busy(())
    operators = {o: Busy(b) for o, b in model.operator_blocks.items()}
    equipment = {e: Busy(b) for e, b in model.equipment_blocks.items()}
    ends: dict[int, int] = {}
    waiting = {
        task_id: {p for p in t.task.predecessors if p in model.tasks}
        for task_id, t in model.tasks.items()
    }
    ready = [(t not in first, _wanted(model, t), t) for t, w in waiting.items() if not w]
    heapq.heapify(ready)
    successors: dict[int, list[int]] = {}
    for task_id, predecessors in waiting.items():
        for p in predecessors:
            successors.setdefault(p, []).append(task_id)
    placed: dict[int, Assignment] = {}
    while ready:
        _, _, task_id = heapq.heappop(ready)
        t = model.tasks[task_id]
        at = max([t.earliest, *(ends[p] for p in t.task.predecessors if p in ends)])
        best: tuple[int, int, int] | None = None
        if t.current is not None:
            # Its live slot, when still free and after its predecessors.
            start = model.grid.ceil(t.current.start)
            o, e = t.current.operator_id, t.current.equipment_id
            o_busy = free if model.operator_pool else operators[o]
            e_busy = free if model.equipment_pool else equipment[e]
            if start >= at and all(
                b.first_free(start, t.duration) == start for b in (o_busy, e_busy)
            ):
                best = (start, 0 if model.operator_pool else o, 0 if model.equipment_pool else e)
        for o in () if best else (0,) if model.operator_pool else t.operators:
            for e in (0,) if model.equipment_pool else t.equipment:
                o_busy = free if model.operator_pool else operators[o]
                e_busy = free if model.equipment_pool else equipment[e]
                start = at
                while True:
                    start = e_busy.first_free(o_busy.first_free(start, t.duration), t.duration)
                    if o_busy.first_free(start, t.duration) == start:
                        break
                if best is None or start < best[0]:
                    best = (start, o, e)
        if best is None or best[0] + t.duration > t.latest:
            continue
        start, o, e = best
        if not model.operator_pool:
            operators[o].take(start, start + t.duration)
        if not model.equipment_pool:
            equipment[e].take(start, start + t.duration)
        ends[task_id] = start + t.duration
        begins = model.grid.at(start)
        placed[task_id] = Assignment(
            task_id, o, e, begins, begins + timedelta(minutes=t.task.duration_minutes)
        )
        for successor in successors.get(task_id, ()):
            waiting[successor].discard(task_id)
            if not waiting[successor]:
                heapq.heappush(
                    ready, (successor not in first, _wanted(model, successor), successor)
                )
    return placed


def _wanted(model: ScheduleModel, task_id: int) -> int:
    """When a task would like to start: its live slot's start, else its earliest."""
    t = model.tasks[task_id]
    return t.earliest if t.current is None else max(t.earliest, model.grid.ceil(t.current.start))
