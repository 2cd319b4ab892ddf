from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.crud import EntityOps, add_item_routes
from app.api.deps import PageQuery, actor_of, if_match, json_response, path_id, services_of
from app.api.endpoint import ApiRouter
from app.api.schemas import OperatorIn, OperatorOut, OperatorPatch
from app.services import personal_data, resources

api = ApiRouter("/operators")


class OperatorQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    skill: str | None = None


add_item_routes(
    api,
    noun="operator",
    tag="operators",
    query=OperatorQuery,
    create_model=OperatorIn,
    patch_model=OperatorPatch,
    out_model=OperatorOut,
    ops=EntityOps(
        list=resources.list_operators,
        get=resources.get_operator,
        create=resources.create_operator,
        update=resources.update_operator,
        delete=resources.delete_operator,
    ),
    list_summary="List operators (operators see only themselves)",
    delete_summary="Delete an operator without assignments",
)


class ErasedOut(BaseModel):
    operator_id: int
    user_id: int | None
    version: int


@api.get(
    "/{operator_id:id}/personal-data",
    summary="Export everything Takt holds about an operator (GDPR); the access is audited",
    tag="operators",
    response=dict[str, Any],
    errors=(403, 404),
)
async def export_personal_data(request: Request) -> Response:
    found = await personal_data.export_personal_data(
        services=services_of(request),
        actor=await actor_of(request),
        operator_id=path_id(request, "operator_id"),
    )
    return json_response(found)


@api.post(
    "/{operator_id:id}/erase",
    summary="Erase an operator's personal data (GDPR): name, contact, calendar, skills, login",
    tag="operators",
    response=ErasedOut,
    if_match=True,
    errors=(403, 404, 409, 412, 428),
)
async def erase_personal_data(request: Request) -> Response:
    erased = await personal_data.erase_personal_data(
        services=services_of(request),
        actor=await actor_of(request),
        operator_id=path_id(request, "operator_id"),
        expected_version=if_match(request),
    )
    return json_response(asdict(erased), version=erased.version)
