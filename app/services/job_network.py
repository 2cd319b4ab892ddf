"""A job's network as the board draws it: its finish-to-start links and each task's
CPM timing (earliest and latest start, slack), from `domain.critical_path`."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.critical_path import CriticalPath
from app.services.context import Actor, Services
from app.services.schedule import job_plan_and_path


@dataclass(frozen=True, slots=True)
class JobNetwork:
    path: CriticalPath
    # (predecessor, successor) pairs within the job.
    links: list[tuple[int, int]]

    def as_dict(self) -> dict[str, object]:
        path = self.path
        return {
            "job_id": path.job_id,
            "makespan_minutes": path.makespan,
            "critical_task_ids": list(path.critical),
            "links": [list(link) for link in self.links],
            "tasks": [
                {
                    "task_id": timing.task_id,
                    "earliest_start": _iso(path, timing.earliest_start),
                    "latest_start": _iso(path, timing.latest_start),
                    "slack_minutes": timing.slack,
                    "critical": timing.critical,
                }
                for timing in sorted(
                    path.timings.values(), key=lambda t: (t.earliest_start, t.task_id)
                )
            ],
        }


def _iso(path: CriticalPath, minutes: int) -> str | None:
    moment = path.at(minutes)
    return moment.isoformat() if moment else None


async def job_network(*, services: Services, actor: Actor, job_id: int) -> JobNetwork:
    """Raises `DependencyCycle` if the job's links loop (as `schedule.job_critical_path`)."""
    plan, path = await job_plan_and_path(services=services, actor=actor, job_id=job_id)
    tasks = {task.id for task in plan.tasks_of_job(job_id)}
    links = sorted(
        (predecessor, task.id)
        for task in plan.tasks_of_job(job_id)
        for predecessor in task.predecessors
        if predecessor in tasks
    )
    return JobNetwork(path, links)
