from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from pydantic import ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.crud import EntityOps, add_item_routes
from app.api.deps import PageQuery, actor_of, json_response, path_id, services_of
from app.api.endpoint import ApiRouter, read_body
from app.api.schemas import (
    BreakdownIn,
    EquipmentIn,
    EquipmentOut,
    EquipmentPatch,
    EquipmentStatusIn,
    EquipmentStatusOut,
)
from app.services import breakdowns, resources

api = ApiRouter("/equipment")


class EquipmentQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    type: str | None = None
    status: Literal["available", "down", "maintenance"] | None = None
    capability: str | None = None


add_item_routes(
    api,
    noun="equipment",
    tag="equipment",
    query=EquipmentQuery,
    create_model=EquipmentIn,
    patch_model=EquipmentPatch,
    out_model=EquipmentOut,
    ops=EntityOps(
        list=resources.list_equipment,
        get=resources.get_equipment,
        create=resources.create_equipment,
        update=resources.update_equipment,
        delete=resources.delete_equipment,
    ),
    list_summary="List equipment",
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
