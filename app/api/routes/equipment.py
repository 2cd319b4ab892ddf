from __future__ import annotations

from dataclasses import asdict
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
from app.api.endpoint import ApiRouter, read_body, read_query
from app.api.schemas import (
    BreakdownIn,
    EquipmentIn,
    EquipmentOut,
    EquipmentPatch,
    EquipmentStatusIn,
    EquipmentStatusOut,
    Page,
)
from app.services import breakdowns, resources

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


add_item_routes(
    api,
    noun="equipment",
    tag="equipment",
    create_model=EquipmentIn,
    patch_model=EquipmentPatch,
    out_model=EquipmentOut,
    ops=EntityOps(
        get=lambda s, a, i: resources.get_equipment(services=s, actor=a, equipment_id=i),
        create=lambda s, a, data: resources.create_equipment(services=s, actor=a, data=data),
        update=lambda s, a, i, v, changes: resources.update_equipment(
            services=s, actor=a, equipment_id=i, expected_version=v, changes=changes
        ),
        delete=lambda s, a, i, v: resources.delete_equipment(
            services=s, actor=a, equipment_id=i, expected_version=v
        ),
    ),
    delete_summary="Delete equipment without assignments (status changes are audited on PATCH)",
)


@api.post(
    "/{equipment_id:id}/breakdown",
    summary="Report a breakdown: the equipment is down (operators: equipment they are booked on)",
    tag="equipment",
    body=BreakdownIn,
    response=EquipmentStatusOut,
    errors=(403, 404, 422),
)
async def report_breakdown(request: Request) -> Response:
    body = await read_body(request, BreakdownIn)
    changed = await breakdowns.report_breakdown(
        services=services_of(request),
        actor=await actor_of(request),
        equipment_id=path_id(request, "equipment_id"),
        note=body.note,
        expected_back=body.expected_back,
    )
    return json_response(asdict(changed))


@api.put(
    "/{equipment_id:id}/status",
    summary="Set equipment status: available, down or maintenance, with an expected-back time",
    tag="equipment",
    body=EquipmentStatusIn,
    response=EquipmentStatusOut,
    errors=(403, 404, 422),
)
async def set_status(request: Request) -> Response:
    body = await read_body(request, EquipmentStatusIn)
    changed = await breakdowns.set_equipment_status(
        services=services_of(request),
        actor=await actor_of(request),
        equipment_id=path_id(request, "equipment_id"),
        status=body.status,
        expected_back=body.expected_back,
        note=body.note,
    )
    return json_response(asdict(changed))
