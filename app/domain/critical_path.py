"""The critical path of a job (CPM) and dependency cycles.

Times are whole minutes from the job's start reference (`CriticalPath.origin`):
its release, else its earliest assigned start, else none (plain minute 0).
Only predecessor edges within the job shape its CPM; the finish-to-start links
to other jobs are the validator's business (`dependency_violation`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.plan import Plan, Task

__all__ = ["CriticalPath", "DependencyCycle", "TaskTiming", "critical_path", "find_cycle"]


class DependencyCycle(Exception):
    """Predecessor links that loop back on themselves: no schedule can satisfy them."""

    def __init__(self, task_ids: Iterable[int]) -> None:
        self.task_ids = tuple(task_ids)
        loop = " → ".join(str(task_id) for task_id in (*self.task_ids, self.task_ids[0]))
        super().__init__(f"Tasks form a dependency cycle: {loop}")


@dataclass(frozen=True, slots=True)
class TaskTiming:
    task_id: int
    duration: int
    earliest_start: int
    earliest_finish: int
    latest_start: int
    latest_finish: int

    @property
    def slack(self) -> int:
        return self.latest_start - self.earliest_start

    @property
    def critical(self) -> bool:
        return self.slack == 0


@dataclass(frozen=True, slots=True)
class CriticalPath:
    job_id: int
    # The moment minute 0 stands for; None when the job has no release and
    # nothing assigned.
    origin: datetime | None
    # The job's minimum makespan in minutes from durations and edges alone.
    makespan: int
    timings: Mapping[int, TaskTiming]
    # Tasks with no slack, in schedule order (earliest start, then edges).
    critical: tuple[int, ...]

    def at(self, minutes: int) -> datetime | None:
        return None if self.origin is None else self.origin + timedelta(minutes=minutes)

    def as_dict(self) -> dict[str, object]:
        """The shape of the API's `CriticalPathOut`; tasks in earliest-start order."""
        timings = sorted(self.timings.values(), key=lambda t: (t.earliest_start, t.task_id))
        return {
            "job_id": self.job_id,
            "makespan_minutes": self.makespan,
            "critical_task_ids": list(self.critical),
            "tasks": [
                {
                    "task_id": t.task_id,
                    "earliest_start": t.earliest_start,
                    "earliest_finish": t.earliest_finish,
                    "latest_start": t.latest_start,
                    "latest_finish": t.latest_finish,
                    "slack": t.slack,
                }
                for t in timings
            ],
        }


def critical_path(plan: Plan, job_id: int) -> CriticalPath:
    """CPM for one job; raises `DependencyCycle` if its tasks' links loop."""
    tasks = {task.id: task for task in plan.tasks_of_job(job_id)}
    predecessors = {
        task.id: sorted({p for p in task.predecessors if p in tasks}) for task in tasks.values()
    }
    successors: dict[int, list[int]] = {task_id: [] for task_id in tasks}
    for task_id, preds in predecessors.items():
        for predecessor in preds:
            successors[predecessor].append(task_id)
    order = _topological_order(tasks, predecessors, successors)

    earliest_finish: dict[int, int] = {}
    for task_id in order:
        start = max((earliest_finish[p] for p in predecessors[task_id]), default=0)
        earliest_finish[task_id] = start + _duration(tasks[task_id])
    makespan = max(earliest_finish.values(), default=0)

    latest_start: dict[int, int] = {}
    timings: dict[int, TaskTiming] = {}
    for task_id in reversed(order):
        duration = _duration(tasks[task_id])
        finish = min((latest_start[s] for s in successors[task_id]), default=makespan)
        latest_start[task_id] = finish - duration
        timings[task_id] = TaskTiming(
            task_id=task_id,
            duration=duration,
            earliest_start=earliest_finish[task_id] - duration,
            earliest_finish=earliest_finish[task_id],
            latest_start=finish - duration,
            latest_finish=finish,
        )

    position = {task_id: index for index, task_id in enumerate(order)}
    critical = sorted(
        (task_id for task_id, timing in timings.items() if timing.critical),
        key=lambda task_id: (timings[task_id].earliest_start, position[task_id]),
    )
    return CriticalPath(
        job_id=job_id,
        origin=_origin(plan, job_id, tasks),
        makespan=makespan,
        timings=timings,
        critical=tuple(critical),
    )


def find_cycle(tasks: Iterable[Task]) -> list[int] | None:
    """A loop in the predecessor links among `tasks`, or None.

    The loop is returned so that each task is a predecessor of the next and
    the last is a predecessor of the first. Links to tasks not given are
    ignored, so pass every task that may take part (across jobs).
    """
    predecessors = {task.id: sorted(set(task.predecessors)) for task in tasks}
    finished: set[int] = set()
    for root in sorted(predecessors):
        if root not in finished:
            cycle = _cycle_from(root, predecessors, finished)
            if cycle is not None:
                return cycle
    return None


def _cycle_from(
    root: int, predecessors: Mapping[int, list[int]], finished: set[int]
) -> list[int] | None:
    """Iterative depth-first search along predecessor links (no recursion limit)."""
    path = [root]
    on_path = {root}
    pending: list[Iterator[int]] = [iter(predecessors[root])]
    while path:
        nxt = next(pending[-1], None)
        if nxt is None:
            finished.add(path[-1])
            on_path.discard(path.pop())
            pending.pop()
        elif nxt in on_path:
            # path runs successor → predecessor; report it the other way round.
            return path[path.index(nxt) :][::-1]
        elif nxt in predecessors and nxt not in finished:
            path.append(nxt)
            on_path.add(nxt)
            pending.append(iter(predecessors[nxt]))
    return None


def _topological_order(
    tasks: Mapping[int, Task],
    predecessors: Mapping[int, list[int]],
    successors: Mapping[int, list[int]],
) -> list[int]:
    """Kahn's algorithm, smallest id first among ready tasks."""
    waiting = {task_id: len(preds) for task_id, preds in predecessors.items()}
    ready = [task_id for task_id, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        task_id = heapq.heappop(ready)
        order.append(task_id)
        for successor in successors[task_id]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                heapq.heappush(ready, successor)
    if len(order) < len(tasks):
        stuck = set(tasks) - set(order)
        cycle = find_cycle(tasks[task_id] for task_id in stuck)
        raise DependencyCycle(cycle or sorted(stuck))
    return order


def _duration(task: Task) -> int:
    return max(task.duration_minutes, 0)


def _origin(plan: Plan, job_id: int, tasks: Mapping[int, Task]) -> datetime | None:
    job = plan.jobs.get(job_id)
    if job is not None and job.release is not None:
        return job.release
    starts = [plan.assignments[t].start for t in tasks if t in plan.assignments]
    return min(starts, default=None)
