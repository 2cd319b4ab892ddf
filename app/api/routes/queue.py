"""The run queue: metrics, one run's status and progress, cancelling, the dead-letter record.

Background runs live under /queue because /jobs is the plant's work orders;
GET /jobs/metrics answers too (issue #5 named it so; `metrics` is no job id).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import PageQuery, actor_of, json_response, page, services_of
from app.api.endpoint import ApiRouter, read_query
from app.services import background
from app.services.errors import InvalidInput

api = ApiRouter()
_RUN_ID = re.compile(r"[0-9a-f]{32}")


class QueueMetrics(BaseModel):
    waiting: int
    active: int
    done: int
    failed: int
    cancelled: int
    # Workers alive now (None: the registry could not be read), and how long the
    # oldest job that is due has waited for one (None: none waits).
    workers_alive: int | None
    oldest_waiting_s: float | None


class BackgroundJobOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    kind: str
    status: str
    priority: int
    attempts: int
    progress: dict[str, object] | None
    error: str | None
    result: dict[str, object] | None


def run_id_of(request: Request) -> str:
    run_id = str(request.path_params["run_id"])
    if not _RUN_ID.fullmatch(run_id):
        raise InvalidInput("that is no background job id", {"run_id": run_id[:40]})
    return run_id


@api.get(
    "/queue/metrics",
    summary="Background jobs by status, workers alive, the oldest job's wait",
    tag="queue",
    response=QueueMetrics,
)
async def queue_metrics(request: Request) -> Response:
    counts = await background.queue_metrics(
        services=services_of(request), actor=await actor_of(request)
    )
    return json_response(counts)


@api.get(
    "/jobs/metrics",
    summary="Background jobs by status (the same as /queue/metrics)",
    tag="queue",
    response=QueueMetrics,
)
async def job_metrics(request: Request) -> Response:
    return await queue_metrics(request)


@api.get(
    "/queue/failed",
    summary="The dead-letter record: failed background jobs with their error",
    tag="queue",
    query=PageQuery,
)
async def dead_letters(request: Request) -> Response:
    q = read_query(request, PageQuery)
    items, total = await background.dead_letters(
        services=services_of(request), actor=await actor_of(request), limit=q.limit, offset=q.offset
    )
    return json_response(page([item.as_dict() for item in items], total, q))


@api.get(
    "/queue/{run_id:run}",
    summary="A background job: status, attempts, progress, result or error",
    tag="queue",
    response=BackgroundJobOut,
    errors=(404,),
)
async def job_status(request: Request) -> Response:
    found = await background.run_status(
        services=services_of(request), actor=await actor_of(request), run_id=run_id_of(request)
    )
    return json_response(found.as_dict())


@api.post(
    "/queue/{run_id:run}/cancel",
    summary="Cancel a waiting job, or ask a running one to stop",
    tag="queue",
    response=BackgroundJobOut,
    errors=(404, 409),
)
async def cancel_job(request: Request) -> Response:
    found = await background.cancel_run(
        services=services_of(request), actor=await actor_of(request), run_id=run_id_of(request)
    )
    return json_response(found.as_dict())
