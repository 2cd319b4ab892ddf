"""Plant pages: equipment — type, capabilities, status, downtime windows.

    GET  /plant/equipment?q=&offset=      machines by name, 50 a page; "new machine"
    POST /plant/equipment                 create one
    GET  /plant/equipment/{id}            the machine's form
    POST /plant/equipment/{id}            save it (hidden `version`: If-Match)
    POST /plant/equipment/{id}/delete     delete (refused while tasks are planned on it)

The board's own status control (`app/web/equipment_pages.py`) takes a machine
out of service in a hurry; this form is where a manager keeps the machine's
record: a status change saved here is audited as `equipment.status_changed`
all the same (`services.resources.update_equipment`). Downtime windows are
planned maintenance, in plant time.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.services import resources
from app.services.errors import InvalidInput, StateConflict
from app.services.views import EquipmentView
from app.web import plant_render as plant
from app.web.plant_forms import FormInvalid, FormReader, local, submitted
from app.web.session import PageSession, page_route, services_of

STATUSES = (("available", "Available"), ("down", "Down"), ("maintenance", "In maintenance"))


def read_equipment(reader: FormReader, *, editing: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": reader.text("name", required=True),
        "type": reader.text("type", required=True, max_length=100),
        "capabilities": reader.tags("capabilities"),
    }
    if editing:
        status = reader.raw("status")
        if status not in {key for key, _ in STATUSES}:
            reader.error("status", "must be available, down or in maintenance")
        data["status"] = status
        data["expected_back"] = None if status == "available" else reader.moment("expected_back")
        data["downtime"] = _downtime(reader)
    reader.done()
    return data


def _downtime(reader: FormReader) -> list[dict[str, Any]]:
    found = []
    for i in reader.rows("down"):
        start, end = f"down-{i}-start", f"down-{i}-end"
        if reader.checked(f"down-{i}-remove") or not (reader.given(start) or reader.given(end)):
            continue
        begins = reader.moment(start, required=True)
        ends = reader.moment(end, required=True)
        reader.after(end, begins, ends)
        reason = reader.text(f"down-{i}-reason")
        if begins and ends and ends > begins:
            found.append({"start": begins, "end": ends, "reason": reason})
    return found


def equipment_values(machine: EquipmentView, zone: ZoneInfo) -> dict[str, str]:
    values = {
        "name": machine["name"],
        "type": machine["type"],
        "capabilities": ", ".join(machine["capabilities"]),
        "status": machine["status"],
        "expected_back": local(machine["expected_back"], zone),
    }
    for i, window in enumerate(sorted(machine["downtime"], key=lambda w: w["start"])):
        values |= {
            f"down-{i}-start": local(window["start"], zone),
            f"down-{i}-end": local(window["end"], zone),
            f"down-{i}-reason": window["reason"],
        }
    return values


def _down_rows(values: dict[str, str]) -> int:
    found = [int(k.split("-")[1]) for k in values if k.startswith("down-")]
    return max(found, default=-1) + 2  # the windows, and one empty row for a new one


def _errors(exc: plant.Refused) -> dict[str, str]:
    if isinstance(exc, FormInvalid):
        return exc.errors
    if isinstance(exc, StateConflict) and "exists already" in exc.message:
        return {"name": "is taken: another machine has this name"}
    return {"form": f"Not saved: {exc.message}."}


REFUSED = (FormInvalid, InvalidInput, StateConflict)
NEW = plant.PlantForm("plant/equipment_list.html", "new_machine", "machine", _errors,
                      refused=REFUSED)  # fmt: skip
EDIT = plant.PlantForm(
    "plant/equipment.html",
    "machine_form",
    "machine",
    _errors,
    rows=lambda form, _: {"down_rows": _down_rows(submitted(form))},
    refused=REFUSED,
)


async def _list_context(request: Request, session: PageSession) -> dict[str, Any]:
    async def fetch(search: str | None, offset: int) -> tuple[list[EquipmentView], int]:
        return await resources.list_equipment(
            services=services_of(request), actor=session.actor, type=None, status=None,
            capability=None, limit=plant.PAGE_SIZE, offset=offset, search=search,
        )  # fmt: skip

    return await plant.listing(request, session, "equipment", "machines", fetch)


@page_route(action=plant.READ)
async def equipment_list(request: Request, session: PageSession) -> Response:
    context = await _list_context(request, session)
    return plant.answer(request, "plant/equipment_list.html", context, block="plant")


@page_route(action=plant.MANAGE)
async def create_equipment(request: Request, session: PageSession) -> Response:
    async def write(data: dict[str, Any]) -> tuple[str, str]:
        made = await resources.create_equipment(
            services=services_of(request), actor=session.actor, data=data
        )
        return f"/plant/equipment/{made['id']}", f"{made['name']} added."

    load = partial(_list_context, request, session)
    return await plant.created(
        request, NEW, load, write=write, read=lambda form, _: read_equipment(form, editing=False)
    )


async def _machine_context(
    request: Request, session: PageSession, equipment_id: int
) -> dict[str, Any]:
    zone = await plant.plant_zone(request)
    machine = await resources.get_equipment(
        services=services_of(request), actor=session.actor, equipment_id=equipment_id
    )
    values = equipment_values(machine, zone)
    return plant.base_context(session, "equipment", zone) | {
        "machine": machine,
        "values": values,
        "down_rows": _down_rows(values),
        "statuses": STATUSES,
    }


@page_route(action=plant.READ)
async def machine_page(request: Request, session: PageSession) -> Response:
    context = await _machine_context(request, session, request.path_params["equipment_id"])
    return plant.answer(request, "plant/equipment.html", context, block="plant")


@page_route(action=plant.MANAGE)
async def save_machine(request: Request, session: PageSession) -> Response:
    equipment_id: int = request.path_params["equipment_id"]
    update = partial(resources.update_equipment, services=services_of(request),
                     actor=session.actor, equipment_id=equipment_id)  # fmt: skip
    return await plant.saved(
        request, EDIT, partial(_machine_context, request, session, equipment_id), update=update,
        read=lambda reader, _: read_equipment(reader, editing=True),
        url=f"/plant/equipment/{equipment_id}",
    )  # fmt: skip


@page_route(action=plant.MANAGE)
async def delete_machine(request: Request, session: PageSession) -> Response:
    delete = partial(
        resources.delete_equipment, services=services_of(request), actor=session.actor,
        equipment_id=request.path_params["equipment_id"],
    )  # fmt: skip
    return await plant.deleted(
        request, "machine", delete, back="/plant/equipment", done="Machine deleted."
    )


routes = [
    Route("/plant/equipment", equipment_list, methods=["GET"]),
    Route("/plant/equipment", create_equipment, methods=["POST"]),
    Route("/plant/equipment/{equipment_id:id}", machine_page, methods=["GET"]),
    Route("/plant/equipment/{equipment_id:id}", save_machine, methods=["POST"]),
    Route("/plant/equipment/{equipment_id:id}/delete", delete_machine, methods=["POST"]),
]
