"""Optimizer runs, their drafts, and bulk operations: all queued, all answered at once.

    POST /optimizations                 start a run → 202 {run_id}
    GET  /optimizations/{run_id}        the run: queued/running, progress, draft_id
    GET  /drafts/{id}                   the draft as a diff with KPI deltas
    POST /drafts/{id}/apply             one change; 409 draft_stale names the changed tasks
    DELETE /drafts/{id}                 discard it
    POST /bulk/unschedule-job | /bulk/shift-job | /bulk/clear-equipment   → 202 {run_id}

Progress and outcome of any of them: GET /queue/{run_id}.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import actor_of, json_response, no_content, path_id, services_of
from app.api.endpoint import ApiRouter, read_body
from app.api.routes.queue import run_id_of
from app.api.schemas import Id
from app.services import bulk, drafts, optimizer_runs

api = ApiRouter()


class OptimizationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_limit_s: float = Field(default=30.0, ge=0.5, le=600)
    # Only these jobs' tasks move; None: every open job.
    job_ids: list[Id] | None = Field(default=None, max_length=10_000)
    workers: int = Field(default=2, ge=1, le=8)
    time_unit_minutes: int = Field(default=5, ge=1, le=60)


class Queued(BaseModel):
    run_id: str
    status_url: str


class UnscheduleJobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: Id


class ShiftJobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: Id
    minutes: int = Field(
        ge=-bulk.MAX_SHIFT_MINUTES,
        le=bulk.MAX_SHIFT_MINUTES,
        description="later if positive, earlier if negative",
    )


class ClearEquipmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    equipment_id: Id


class AppliedOut(BaseModel):
    draft_id: int
    changes: int
    revision: int


def queued(run_id: str) -> Response:
    return json_response({"run_id": run_id, "status_url": f"/api/v1/queue/{run_id}"}, status=202)


def _queues(
    path: str,
    name: str,
    start: Callable[..., Awaitable[str]],
    *,
    body: type[BaseModel],
    summary: str,
    tag: str,
    **meta: Any,
) -> None:
    """A route that queues a run: its body's fields are `start`'s keywords; 202 and the run."""

    async def run(request: Request) -> Response:
        sent = await read_body(request, body)
        run_id = await start(
            services=services_of(request), actor=await actor_of(request), **sent.model_dump()
        )
        return queued(run_id)

    run.__name__ = name
    api.post(path, summary=summary, tag=tag, body=body, response=Queued, status=202, **meta)(run)


_queues(
    "/optimizations",
    "start_optimization",
    optimizer_runs.start_optimization,
    body=OptimizationIn,
    summary="Start an optimizer run; it ends in a draft",
    tag="optimizer",
)


@api.get(
    "/optimizations/{run_id:run}",
    summary="An optimizer run: queued/running with progress, then its draft",
    tag="optimizer",
    errors=(404,),
)
async def optimization_status(request: Request) -> Response:
    run = await optimizer_runs.run_status(
        services=services_of(request), actor=await actor_of(request), run_id=run_id_of(request)
    )
    return json_response(run.as_dict())


@api.get(
    "/drafts/{draft_id:id}",
    summary="A draft against the plan its run saw: moved, reassigned, newly scheduled, KPIs",
    tag="optimizer",
    errors=(404,),
)
async def draft_diff(request: Request) -> Response:
    diff = await drafts.draft_diff(
        services=services_of(request),
        actor=await actor_of(request),
        draft_id=path_id(request, "draft_id"),
    )
    return json_response(diff)


@api.post(
    "/drafts/{draft_id:id}/apply",
    summary="Apply a draft in one change, if none of its tasks changed since its run",
    tag="optimizer",
    response=AppliedOut,
    errors=(404, 409),
)
async def apply_draft(request: Request) -> Response:
    applied = await drafts.apply_draft(
        services=services_of(request),
        actor=await actor_of(request),
        draft_id=path_id(request, "draft_id"),
    )
    return json_response(
        {"draft_id": applied.draft_id, "changes": applied.changes, "revision": applied.revision}
    )


@api.delete("/drafts/{draft_id:id}", summary="Discard a draft", tag="optimizer", status=204)
async def discard_draft(request: Request) -> Response:
    await drafts.discard_draft(
        services=services_of(request),
        actor=await actor_of(request),
        draft_id=path_id(request, "draft_id"),
    )
    return no_content()


_queues(
    "/bulk/unschedule-job",
    "bulk_unschedule_job",
    bulk.unschedule_job,
    body=UnscheduleJobIn,
    summary="Move every open task of a job back to the tray (queued)",
    tag="bulk",
    errors=(404,),
)
_queues(
    "/bulk/shift-job",
    "bulk_shift_job",
    bulk.shift_job,
    body=ShiftJobIn,
    summary="Shift every open task of a job by some minutes (queued)",
    tag="bulk",
    errors=(404,),
)
_queues(
    "/bulk/clear-equipment",
    "bulk_clear_equipment",
    bulk.clear_equipment,
    body=ClearEquipmentIn,
    summary="Move every open task off a machine: to a free capable one, else to the tray",
    tag="bulk",
    errors=(404,),
)
