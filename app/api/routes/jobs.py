from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.crud import EntityOps, add_item_routes
from app.api.deps import PageQuery, actor_of, json_response, path_id, services_of
from app.api.endpoint import ApiRouter
from app.api.schemas import UTC, CriticalPathOut, JobIn, JobOut, JobPatch
from app.services import jobs, schedule

api = ApiRouter("/jobs")


class JobQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "done", "cancelled"] | None = None
    due_before: UTC | None = None


add_item_routes(
    api,
    noun="job",
    tag="jobs",
    query=JobQuery,
    create_model=JobIn,
    patch_model=JobPatch,
    out_model=JobOut,
    ops=EntityOps(
        list=jobs.list_jobs,
        get=jobs.get_job,
        create=jobs.create_job,
        update=jobs.update_job,
        delete=jobs.delete_job,
    ),
    list_summary="List jobs, earliest due first",
    delete_summary="Delete a job that has not started",
)


@api.get(
    "/{job_id:id}/critical-path",
    summary="Critical path of a job (CPM with slack)",
    tag="jobs",
    response=CriticalPathOut,
    errors=(404, 409),
)
async def get_critical_path(request: Request) -> Response:
    job_id = path_id(request, "job_id")
    path = await schedule.job_critical_path(
        services=services_of(request), actor=await actor_of(request), job_id=job_id
    )
    return json_response(path.as_dict())
