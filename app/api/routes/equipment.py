from __future__ import annotations

from typing import Literal

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
from app.api.schemas import EquipmentIn, EquipmentOut, EquipmentPatch, Page
from app.services import resources

api = ApiRouter("/equipment")


class EquipmentQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    type: str | None = None
    status: Literal["available", "down", "maintenance"] | None = None
    capability: str | None = None


@api.get(
    "", summary="List equipment", tag="equipment", query=EquipmentQuery, response=Page[EquipmentOut]
)
async def list_equipment(request: Request) -> Response:
    q = read_query(request, EquipmentQuery)
    items, total = await resources.list_equipment(
        services=services_of(request),
        actor=await actor_of(request),
        type=q.type,
        status=q.status,
        capability=q.capability,
        limit=q.limit,
        offset=q.offset,
    )
    return json_response(page(items, total, q))


@api.post(
    "",
    summary="Create equipment",
    tag="equipment",
    body=EquipmentIn,
    response=EquipmentOut,
    status=201,
    errors=(409,),
)
async def create_equipment(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, EquipmentIn)
    view = await resources.create_equipment(
        services=services_of(request), actor=actor, data=body.model_dump()
    )
    return json_response(view, status=201, version=view["version"])


@api.get(
    "/{equipment_id:int}",
    summary="One piece of equipment",
    tag="equipment",
    response=EquipmentOut,
    errors=(404,),
)
async def get_equipment(request: Request) -> Response:
    view = await resources.get_equipment(
        services=services_of(request),
        actor=await actor_of(request),
        equipment_id=path_id(request, "equipment_id"),
    )
    return json_response(view, version=view["version"])


@api.patch(
    "/{equipment_id:int}",
    summary="Change equipment (status changes are audited)",
    tag="equipment",
    body=EquipmentPatch,
    response=EquipmentOut,
    if_match=True,
    errors=(404, 412, 428),
)
async def update_equipment(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, EquipmentPatch)
    view = await resources.update_equipment(
        services=services_of(request),
        actor=actor,
        equipment_id=path_id(request, "equipment_id"),
        expected_version=if_match(request),
        changes=body.model_dump(exclude_unset=True),
    )
    return json_response(view, version=view["version"])


@api.delete(
    "/{equipment_id:int}",
    summary="Delete equipment without assignments",
    tag="equipment",
    status=204,
    if_match=True,
    errors=(404, 409, 412, 428),
)
async def delete_equipment(request: Request) -> Response:
    await resources.delete_equipment(
        services=services_of(request),
        actor=await actor_of(request),
        equipment_id=path_id(request, "equipment_id"),
        expected_version=if_match(request),
    )
    return no_content()
