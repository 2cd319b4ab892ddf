from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import actor_of, json_response, services_of
from app.api.endpoint import ApiRouter, read_body, read_query
from app.api.schemas import ChangesResponse, ValidateRequest, ValidateResponse
from app.domain.bounds import MAX_ID
from app.services import schedule

api = ApiRouter()


@api.post(
    "/schedule/validate",
    summary="Validate the whole plan, or a proposed assignment without saving it",
    tag="schedule",
    body=ValidateRequest,
    response=ValidateResponse,
)
async def validate(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, ValidateRequest)
    services = services_of(request)
    if body.task_id is not None and body.assignment is not None:
        result = await schedule.validate_proposal(
            services=services, actor=actor, task_id=body.task_id, **body.assignment.model_dump()
        )
    else:
        result = await schedule.validate_schedule(services=services, actor=actor)
    return json_response(
        {
            "conflicts": [c.as_dict() for c in result.conflicts],
            "revision": result.revision,
            "counts": result.counts,
        }
    )


class ChangesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: int = Field(ge=0, le=MAX_ID)
    limit: int = Field(default=1000, ge=1, le=5000)


@api.get(
    "/changes",
    summary="Committed changes after revision `since` (resume point)",
    tag="schedule",
    query=ChangesQuery,
    response=ChangesResponse,
)
async def changes(request: Request) -> Response:
    q = read_query(request, ChangesQuery)
    result = await schedule.changes_since(
        services=services_of(request), actor=await actor_of(request), since=q.since, limit=q.limit
    )
    return json_response(
        {"revision": result.revision, "changes": result.changes, "reload": result.reload}
    )
