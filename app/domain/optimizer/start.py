"""The optimizer's starting plan for a large model: the live plan, mended.

Every task in the live plan's order: its live slot when that is still free,
else the earliest slot on any of its candidate pairs (its live operator and
machine on a tie). The live slots not reached yet are *held*: a task placed
anew goes around them, unless that makes it wait more than a hold longer
than it must, or miss the end its job's due time asks of it while taking
the slot would not - then it takes the slot and the holders move on in
their turn. Holding for as long as it takes keeps the plan the live one
wherever nothing forces a change; short holds spread a push over more
tasks, which now and then makes a better plan. A few holds are tried and the
best plan kept (`ScheduleModel.score`).

At plant scale (`greedy_first_plan`, the first plan `optimizer.lns`
improves) it is a dispatching rule: ready tasks by earliest deadline (their
job's due time, less what follows them), each on the candidate pair where it
finishes soonest (its duration on each equipment, under alternative
routings); the live slots of jobs the live plan had complete are booked for
them from the start (*promised*), the others held as above.

CP-SAT completes a partial hint poorly when there are thousands of tasks
with several candidates each; with this whole plan as the hint of the
optional model (`optimizer_model`) it has a solution at once and improves
from there. Only a hint: the solver checks it, so a slot here that breaks a
rule costs a solution, never validity.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from app.domain.plan import Assignment

if TYPE_CHECKING:
    from app.domain.optimizer.model import ModelTask, ScheduleModel
    from app.domain.optimizer.scope import Span

__all__ = ["Busy", "greedy_first_plan", "greedy_slots"]


class Busy:
    """A resource's busy spans, sorted and disjoint, to find the first gap."""

    def __init__(self, spans: Iterable[Span], *, merge: bool = False) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        # Touching spans become one, so a fully booked stretch is one step to
        # walk over, not one per task; such spans can no longer be released.
        self.merge = merge
        for start, end in sorted(spans):
            self.take(start, end)

    def first_free(self, at: int, duration: int) -> int:
        starts, ends = self.starts, self.ends
        i, n = bisect_right(ends, at), len(starts)
        while i < n and starts[i] < at + duration:
            if ends[i] > at:
                at = ends[i]
            i += 1
        return at

    def take(self, start: int, end: int) -> None:
        i = bisect_left(self.starts, start)
        if self.merge:
            if i > 0 and self.ends[i - 1] >= start:
                i -= 1
                start = self.starts[i]
                end = max(end, self.ends[i])
                del self.starts[i], self.ends[i]
            while i < len(self.starts) and self.starts[i] <= end:
                end = max(end, self.ends[i])
                del self.starts[i], self.ends[i]
        self.starts.insert(i, start)
        self.ends.insert(i, end)

    def release(self, start: int, end: int) -> None:
        i = bisect_left(self.starts, start)
        while self.starts[i] != start or self.ends[i] != end:
            i += 1
        del self.starts[i], self.ends[i]


def earliest(at: int, duration: int, busy: Sequence[Busy]) -> int:
    """The first start from `at` at which every one of `busy` is free: each in
    turn moves it on, until all of them in a row leave it where it is."""
    count = len(busy)
    if count == 1:
        return busy[0].first_free(at, duration)
    if count == 2:  # a resource and its held slots: the greedy's most frequent question
        first, second = busy
        if not second.starts:
            return first.first_free(at, duration)
        while True:
            at = first.first_free(at, duration)
            moved = second.first_free(at, duration)
            if moved == at:
                return at
            at = moved
    i = agreed = 0
    while agreed < count:
        moved = busy[i].first_free(at, duration)
        agreed = 1 if moved != at else agreed + 1
        at = moved
        i = (i + 1) % count
    return at


# Greedy passes at most per hold: each later one places first what an earlier
# one left out.
_PASSES = 2
# How much longer a task waits to leave live slots not reached yet alone, in
# minutes: the plans for each are compared and the best kept (None: as long
# as its deadline allows).
_HOLDS = (None, 0)


def greedy_slots(model: ScheduleModel) -> dict[int, Assignment]:
    """The best of a few whole plans (`ScheduleModel.score`), each made as the
    module docstring says with one of `_HOLDS`.

    Only a hint: the solver checks it. A task that does not fit before its
    latest end (a locked successor waits for it), or waits for one that does
    not, is left out - and goes first in the next pass, with what it waits
    for, since the solver can only start from a plan without it.
    """
    deadlines = _deadlines(model)
    plans = [_passes(model, hold, deadlines) for hold in _HOLDS]
    return min(plans, key=model.score)


def greedy_first_plan(
    model: ScheduleModel, promised: frozenset[int] = frozenset()
) -> dict[int, Assignment]:
    """One whole plan, fast: live slots held as long as a task's deadline
    allows, and those of `promised` tasks (of jobs the live plan had
    complete) always - no new work pushes them on, and they go first among
    the ready tasks. The plan at plant scale, which `optimizer.lns` improves."""
    return _passes(model, None, _deadlines(model), promised, by_deadline=True)


def _deadlines(model: ScheduleModel) -> dict[int, int]:
    """When each task must end for its job to be on time, its successors in the
    model after it: a backward pass over the jobs' due times (and the tasks'
    latest ends), successors before predecessors."""
    successors: dict[int, list[int]] = {t: [] for t in model.tasks}
    for task_id, t in model.tasks.items():
        for p in t.task.predecessors:
            if p in model.tasks:
                successors[p].append(task_id)
    waiting = {t: len(found) for t, found in successors.items()}
    ready = [t for t, n in waiting.items() if n == 0]
    found: dict[int, int] = {}
    while ready:
        task_id = ready.pop()
        t = model.tasks[task_id]
        due = model.dues.get(t.task.job_id)
        own = t.latest if due is None else min(t.latest, due[1])
        found[task_id] = min(
            [own, *(found[s] - model.tasks[s].duration for s in successors[task_id])]
        )
        for p in {p for p in t.task.predecessors if p in model.tasks}:
            waiting[p] -= 1
            if waiting[p] == 0:
                ready.append(p)
    return found


def _passes(
    model: ScheduleModel,
    hold: int | None,
    deadlines: dict[int, int],
    promised: frozenset[int] = frozenset(),
    *,
    by_deadline: bool = False,
) -> dict[int, Assignment]:
    best: dict[int, Assignment] = {}
    # Promised work goes first among what is ready: a promised task whose live
    # slot is gone takes the first free one, before new work does.
    first: set[int] = set(_with_predecessors(model, promised)) if promised else set()
    for _ in range(_PASSES):
        placed = _Pass(model, first, hold, deadlines, promised, by_deadline).run()
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


# A resource: ("o", operator id) or ("e", equipment id).
Resource = tuple[str, int]


class _Pass:
    """One greedy pass; `first` are placed before the others that are ready."""

    def __init__(
        self,
        model: ScheduleModel,
        first: set[int],
        hold: int | None,
        deadlines: dict[int, int],
        promised: frozenset[int] = frozenset(),
        by_deadline: bool = False,
    ) -> None:
        self.model = model
        self.first = first
        self.hold_units = model.horizon if hold is None else model.grid.units(hold)
        self.deadlines = deadlines
        self.by_deadline = by_deadline
        self.booked: dict[Resource, Busy] = {
            **{("o", o): Busy(b, merge=True) for o, b in model.operator_blocks.items()},
            **{("e", e): Busy(b, merge=True) for e, b in model.equipment_blocks.items()},
        }
        self.held: dict[Resource, Busy] = {r: Busy(()) for r in self.booked}
        # What a slot must avoid on each resource, with and without the held slots.
        self.around = {r: [self.booked[r], self.held[r]] for r in self.booked}
        self.booked_only = {r: [self.booked[r]] for r in self.booked}
        # Live slots of promised tasks, booked for them from the start: nobody
        # else's. Should one not be taken after all (its predecessor ends
        # later), that time stays unused in this plan; the search can use it.
        self.reserved: set[int] = set()
        self.holders: dict[Resource, dict[int, Span]] = {r: {} for r in self.booked}
        self.holding: dict[int, tuple[Span, list[Resource]]] = {}
        for task_id, t in model.tasks.items():
            if t.current is not None:
                start = model.grid.ceil(t.current.start)
                duration = t.duration_on(t.current.equipment_id)
                span = (start, start + duration)
                pair = self._pair(t.current.operator_id, t.current.equipment_id)
                taken = [self.booked[r] for r in pair]
                if task_id in promised and earliest(start, duration, taken) == start:
                    self.reserved.add(task_id)
                    for r in pair:
                        self.booked[r].take(*span)
                else:
                    self._hold(task_id, span, pair)
        self.ends: dict[int, int] = {}
        self.placed: dict[int, Assignment] = {}

    def run(self) -> dict[int, Assignment]:
        model = self.model
        waiting = {
            task_id: {p for p in t.task.predecessors if p in model.tasks}
            for task_id, t in model.tasks.items()
        }
        successors: dict[int, list[int]] = {}
        for task_id, predecessors in waiting.items():
            for p in predecessors:
                successors.setdefault(p, []).append(task_id)
        ready = [self._key(t) for t, w in waiting.items() if not w]
        heapq.heapify(ready)
        while ready:
            task_id = heapq.heappop(ready)[-1]
            if not self._place(task_id):
                continue
            for successor in successors.get(task_id, ()):
                waiting[successor].discard(task_id)
                if not waiting[successor]:
                    heapq.heappush(ready, self._key(successor))
        return self.placed

    def _key(self, task_id: int) -> tuple[bool, int, int, int]:
        """Those placed first, then by when the task would like to start: its
        live slot's start, else its earliest. `by_deadline`: earliest deadline
        first instead (each goes into the first gap that fits, so one due
        later still fills the time before) - on the large demo that cuts the
        first plan's weighted lateness 26-fold."""
        t = self.model.tasks[task_id]
        wanted = t.earliest
        if t.current is not None:
            wanted = max(wanted, self.model.grid.ceil(t.current.start))
        deadline = self.deadlines[task_id] if self.by_deadline else 0
        return task_id not in self.first, deadline, wanted, task_id

    def _pair(self, operator_id: int, equipment_id: int) -> list[Resource]:
        """The resources a slot occupies: none of a pooled kind."""
        pair: list[Resource] = []
        if not self.model.operator_pool:
            pair.append(("o", operator_id))
        if not self.model.equipment_pool:
            pair.append(("e", equipment_id))
        return pair

    def _place(self, task_id: int) -> bool:
        model, t = self.model, self.model.tasks[task_id]
        at = max([t.earliest, *(self.ends[p] for p in t.task.predecessors if p in self.ends)])
        self._unhold(task_id)
        best: tuple[int, int, int] | None = None
        if t.current is not None:
            start = model.grid.ceil(t.current.start)
            o, e = t.current.operator_id, t.current.equipment_id
            duration = t.duration_on(e)
            booked = [self.booked[r] for r in self._pair(o, e)]
            fits = start >= at and start + duration <= t.latest
            if fits and task_id in self.reserved:
                return self._keep_reserved(task_id, start)
            if fits and earliest(start, duration, booked) == start:
                best = (start, o, e)
        if best is None:
            best = self._anew(t, at)
        if best is None or _end(t, best) > t.latest:
            return False
        start, o, e = best
        span = (start, _end(t, best))
        for r in self._pair(o, e):
            self.booked[r].take(*span)
            for holder, (s, end) in list(self.holders[r].items()):
                if s < span[1] and span[0] < end:
                    self._unhold(holder)  # it moves on in its turn
        self.ends[task_id] = span[1]
        begins = model.grid.at(start)
        self.placed[task_id] = Assignment(
            task_id,
            0 if model.operator_pool else o,
            0 if model.equipment_pool else e,
            begins,
            begins + timedelta(minutes=t.task.duration_on(e)),
        )
        if t.current is not None and best == _on_grid(t.current, model):
            self.placed[task_id] = t.current  # its live slot, to the minute
        return True

    def _keep_reserved(self, task_id: int, start: int) -> bool:
        """A promised task in its live slot, booked for it from the start."""
        t = self.model.tasks[task_id]
        if t.current is None:
            return False
        self.ends[task_id] = start + t.duration_on(t.current.equipment_id)
        self.placed[task_id] = t.current
        return True

    def _anew(self, t: ModelTask, at: int) -> tuple[int, int, int] | None:
        """The earliest slot on any candidate pair around the held slots, unless
        the earliest ignoring them is more than the hold sooner."""
        around = self._earliest_pair(t, at, around=True)
        on_time = around is not None and _end(t, around) <= self.deadlines[t.task.id]
        if on_time and self.hold_units >= self.model.horizon:
            return around  # held for as long as it takes, and in time: no need to look further
        free = self._earliest_pair(t, at, around=False)
        if free is None or around is None:
            return None
        if around[0] - free[0] > self.hold_units:
            return free
        # Going around would make it miss its deadline: better to push others on.
        late = _end(t, around) > self.deadlines[t.task.id] >= _end(t, free)
        return free if late else around

    def _earliest_pair(self, t: ModelTask, at: int, *, around: bool) -> tuple[int, int, int] | None:
        """The candidate pair that finishes soonest from `at` (its live pair on a
        tie), with or without the held slots. Each resource alone bounds a
        pair's start from below (an operator for the task's shortest time), so
        pairs are tried by the end that bound gives until it passes the best found."""
        model = self.model
        live = (
            (None, None) if t.current is None else (t.current.operator_id, t.current.equipment_id)
        )
        busy = (self.around if around else self.booked_only).__getitem__
        duration_on = t.duration_on

        # A pooled kind is never busy: one stand-in, free from `at`.
        operators = (
            {0: at}
            if model.operator_pool
            else {o: earliest(at, t.duration, busy(("o", o))) for o in t.operators}
        )
        # Per equipment: when it is free, for how long the task takes on it.
        equipment = (
            {0: (at, t.duration)}
            if model.equipment_pool
            else {
                e: (earliest(at, d, busy(("e", e))), d)
                for e in t.equipment
                for d in (duration_on(e),)
            }
        )
        live_o, live_e = live
        # Taken lazily in order: most tasks settle on the first pair or two.
        pairs = [
            (max(so, se) + d, o != live_o or e != live_e, o, e)
            for o, so in operators.items()
            for e, (se, d) in equipment.items()
        ]
        heapq.heapify(pairs)
        best: tuple[int, int, int] | None = None
        best_end = 0
        while pairs:
            bound, _, o, e = heapq.heappop(pairs)
            if best is not None and bound >= best_end:
                break
            duration = equipment[e][1]
            start = earliest(
                bound - duration, duration, [b for r in self._pair(o, e) for b in busy(r)]
            )
            if best is None or start + duration < best_end:
                best, best_end = (start, o, e), start + duration
        return best

    def _hold(self, task_id: int, span: Span, pair: list[Resource]) -> None:
        self.holding[task_id] = (span, pair)
        for r in pair:
            self.held[r].take(*span)
            self.holders[r][task_id] = span

    def _unhold(self, task_id: int) -> None:
        if (found := self.holding.pop(task_id, None)) is None:
            return
        span, pair = found
        for r in pair:
            self.held[r].release(*span)
            del self.holders[r][task_id]


def _end(t: ModelTask, slot: tuple[int, int, int]) -> int:
    """When a task placed at (start, operator, equipment) ends, in grid units."""
    return slot[0] + t.duration_on(slot[2])


def _on_grid(slot: Assignment, model: ScheduleModel) -> tuple[int, int, int]:
    return model.grid.ceil(slot.start), slot.operator_id, slot.equipment_id
