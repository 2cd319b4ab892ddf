from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import (
    PageQuery,
    actor_of,
    if_match,
    json_response,
    no_content,
    page,
    path_id,
    services_of,
)
from app.api.endpoint import ApiRouter, read_body, read_query
from app.api.schemas import CriticalPathOut, JobIn, JobOut, JobPatch, Page
from app.services import jobs, schedule

api = ApiRouter("/jobs")


class JobQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "done", "cancelled"] | None = None
    due_before: AwareDatetime | None = None


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


@api.post("", summary="Create a job", tag="jobs", body=JobIn, response=JobOut, status=201)
async def create_job(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, JobIn)
    view = await jobs.create_job(services=services_of(request), actor=actor, data=body.model_dump())
    return json_response(view, status=201, version=view["version"])


@api.get("/{job_id:int}", summary="One job", tag="jobs", response=JobOut, errors=(404,))
async def get_job(request: Request) -> Response:
    view = await jobs.get_job(
        services=services_of(request),
        actor=await actor_of(request),
        job_id=path_id(request, "job_id"),
    )
    return json_response(view, version=view["version"])


@api.patch(
    "/{job_id:int}",
    summary="Change a job",
    tag="jobs",
    body=JobPatch,
    response=JobOut,
    if_match=True,
    errors=(404, 412, 428),
)
async def update_job(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, JobPatch)
    view = await jobs.update_job(
        services=services_of(request),
        actor=actor,
        job_id=path_id(request, "job_id"),
        expected_version=if_match(request),
        changes=body.model_dump(exclude_unset=True),
    )
    return json_response(view, version=view["version"])


@api.delete(
    "/{job_id:int}",
    summary="Delete a job that has not started",
    tag="jobs",
    status=204,
    if_match=True,
    errors=(404, 409, 412, 428),
)
async def delete_job(request: Request) -> Response:
    await jobs.delete_job(
        services=services_of(request),
        actor=await actor_of(request),
        job_id=path_id(request, "job_id"),
        expected_version=if_match(request),
    )
    return no_content()


@api.get(
    "/{job_id:int}/critical-path",
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
