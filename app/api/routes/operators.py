from __future__ import annotations

from pydantic import ConfigDict
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
from app.api.schemas import OperatorIn, OperatorOut, OperatorPatch, Page
from app.services import resources

api = ApiRouter("/operators")


class OperatorQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    skill: str | None = None


@api.get(
    "",
    summary="List operators (operators see only themselves)",
    tag="operators",
    query=OperatorQuery,
    response=Page[OperatorOut],
)
async def list_operators(request: Request) -> Response:
    q = read_query(request, OperatorQuery)
    items, total = await resources.list_operators(
        services=services_of(request),
        actor=await actor_of(request),
        skill=q.skill,
        limit=q.limit,
        offset=q.offset,
    )
    return json_response(page(items, total, q))


@api.post(
    "",
    summary="Create an operator",
    tag="operators",
    body=OperatorIn,
    response=OperatorOut,
    status=201,
)
async def create_operator(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, OperatorIn)
    view = await resources.create_operator(
        services=services_of(request), actor=actor, data=body.model_dump()
    )
    return json_response(view, status=201, version=view["version"])


@api.get(
    "/{operator_id:int}",
    summary="One operator",
    tag="operators",
    response=OperatorOut,
    errors=(404,),
)
async def get_operator(request: Request) -> Response:
    view = await resources.get_operator(
        services=services_of(request),
        actor=await actor_of(request),
        operator_id=path_id(request, "operator_id"),
    )
    return json_response(view, version=view["version"])


@api.patch(
    "/{operator_id:int}",
    summary="Change an operator",
    tag="operators",
    body=OperatorPatch,
    response=OperatorOut,
    if_match=True,
    errors=(404, 412, 428),
)
async def update_operator(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, OperatorPatch)
    view = await resources.update_operator(
        services=services_of(request),
        actor=actor,
        operator_id=path_id(request, "operator_id"),
        expected_version=if_match(request),
        changes=body.model_dump(exclude_unset=True),
    )
    return json_response(view, version=view["version"])


@api.delete(
    "/{operator_id:int}",
    summary="Delete an operator without assignments",
    tag="operators",
    status=204,
    if_match=True,
    errors=(404, 409, 412, 428),
)
async def delete_operator(request: Request) -> Response:
    await resources.delete_operator(
        services=services_of(request),
        actor=await actor_of(request),
        operator_id=path_id(request, "operator_id"),
        expected_version=if_match(request),
    )
    return no_content()
