from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.crud import EntityOps, add_item_routes
from app.api.deps import (
    PageQuery,
    actor_of,
    json_response,
    page,
    path_id,
    services_of,
)
from app.api.endpoint import ApiRouter, read_query
from app.api.schemas import UTC, CriticalPathOut, JobIn, JobOut, JobPatch, Page
from app.services import jobs, schedule

api = ApiRouter("/jobs")


class JobQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "done", "cancelled"] | None = None
    due_before: UTC | None = None


@api.get(
    "", summary="List jobs, earliest due first", tag="jobs", query=JobQuery, response=Page[JobOut]
)
async def list_jobs(request: Request) -> Response:
    q = read_query(request, JobQuery)
    items, total = await jobs.list_jobs(
        services=services_of(request),
        actor=await actor_of(request),
        status=q.status,
        due_before=q.due_before,
        limit=q.limit,
        offset=q.offset,
    )
    return json_response(page(items, total, q))


add_item_routes(
    api,
    noun="job",
    tag="jobs",
    create_model=JobIn,
    patch_model=JobPatch,
    out_model=JobOut,
    ops=EntityOps(
        get=lambda s, a, i: jobs.get_job(services=s, actor=a, job_id=i),
        create=lambda s, a, data: jobs.create_job(services=s, actor=a, data=data),
        update=lambda s, a, i, v, changes: jobs.update_job(
            services=s, actor=a, job_id=i, expected_version=v, changes=changes
        ),
        delete=lambda s, a, i, v: jobs.delete_job(
            services=s, actor=a, job_id=i, expected_version=v
        ),
    ),
    delete_summary="Delete a job that has not started",
)


@api.get(
    "/{job_id:id}/critical-path",
    summary="Critical path of a job (CPM with slack)",
    tag="jobs",
    response=CriticalPathOut,
    errors=(404,),
)
async def get_critical_path(request: Request) -> Response:
    job_id = path_id(request, "job_id")
    path = await schedule.job_critical_path(
        services=services_of(request), actor=await actor_of(request), job_id=job_id
    )
    return json_response(path.as_dict())
