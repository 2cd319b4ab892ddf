"""Plant pages: operators — skills with levels, the weekly shift pattern, time off.

    GET  /plant/operators?q=&offset=      operators by name, 50 a page; "new operator"
    POST /plant/operators                 create one
    GET  /plant/operators/{id}            the operator's form
    POST /plant/operators/{id}            save it (hidden `version`: If-Match)
    POST /plant/operators/{id}/delete     delete (refused while tasks are planned for them)

The form is sent whole: skills, shifts and time off replace the saved ones in
one write (`services.resources.update_operator`). Shift times are the plant's
wall clock; an end before the start runs past midnight. Time off is plant
time; its reason is personal and never reaches the audit trail.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.services import resources
from app.services.views import OperatorView
from app.web import plant_render as plant
from app.web.plant_forms import FormInvalid, FormReader, local, submitted
from app.web.session import PageSession, page_route, services_of

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SPARE = 2


def read_operator(reader: FormReader) -> dict[str, Any]:
    data: dict[str, Any] = {"name": reader.text("name", required=True)}
    skills: list[dict[str, Any]] = []
    for i in reader.rows("skill"):
        name, level = f"skill-{i}-name", f"skill-{i}-level"
        if not reader.given(name) and not reader.given(level):
            continue
        if not reader.given(name):
            reader.error(name, "is required")
        tag = reader.tag(name)
        value = reader.number(level, low=1, high=5)
        if tag in {s["skill"] for s in skills}:
            reader.error(name, "is named twice: one level per skill")
        elif tag and value:
            skills.append({"skill": tag, "level": value})
    data["skills"] = skills
    data["shifts"] = _shifts(reader)
    data["exceptions"] = _time_off(reader)
    data["contact"] = _contact(reader)
    reader.done()
    return data


def _contact(reader: FormReader) -> dict[str, str | None] | None:
    """Phone and e-mail: personal data, stored encrypted (None: no contact data kept)."""
    phone = reader.text("phone", max_length=50)
    email = reader.text("email", max_length=200)
    if email and ("@" not in email or " " in email):
        reader.error("email", "must be an e-mail address, e.g. olga@example.com")
    if not phone and not email:
        return None
    return {"phone": phone or None, "email": email or None}


def _shifts(reader: FormReader) -> list[dict[str, Any]]:
    shifts = []
    for i in reader.rows("shift"):
        start, end = f"shift-{i}-start", f"shift-{i}-end"
        if not reader.given(start) and not reader.given(end):
            continue  # a day off
        weekday = reader.number(f"shift-{i}-weekday", low=0, high=6)
        begins, ends = reader.wall_time(start), reader.wall_time(end)
        if weekday is not None and begins is not None and ends is not None:
            shifts.append({"weekday": weekday, "start": begins, "end": ends})
    return shifts


def _time_off(reader: FormReader) -> list[dict[str, Any]]:
    found = []
    for i in reader.rows("off"):
        start, end = f"off-{i}-start", f"off-{i}-end"
        if reader.checked(f"off-{i}-remove") or not (reader.given(start) or reader.given(end)):
            continue
        kind = reader.raw(f"off-{i}-kind") or "time_off"
        if kind not in ("time_off", "extra_shift"):
            reader.error(f"off-{i}-kind", "must be time off or an extra shift")
        begins = reader.moment(start, required=True)
        ends = reader.moment(end, required=True)
        reader.after(end, begins, ends)
        reason = reader.text(f"off-{i}-reason")
        if begins and ends and ends > begins:
            found.append({"kind": kind, "start": begins, "end": ends, "reason": reason})
    return found


def operator_values(operator: OperatorView, zone: ZoneInfo) -> dict[str, str]:
    contact = operator["contact"] or {}
    values = {
        "name": operator["name"],
        "phone": contact.get("phone") or "",
        "email": contact.get("email") or "",
    }
    for i, skill in enumerate(sorted(operator["skills"], key=lambda s: s["skill"])):
        values |= {f"skill-{i}-name": skill["skill"], f"skill-{i}-level": str(skill["level"])}
    shifts = sorted(operator["shifts"], key=lambda s: (s["weekday"], s["start"]))
    free_days = [d for d in range(7) if d not in {s["weekday"] for s in shifts}]
    for i, shift in enumerate(shifts):
        values |= {
            f"shift-{i}-weekday": str(shift["weekday"]),
            f"shift-{i}-start": shift["start"].strftime("%H:%M"),
            f"shift-{i}-end": shift["end"].strftime("%H:%M"),
        }
    for i, day in enumerate(free_days + [0] * SPARE, start=len(shifts)):
        values[f"shift-{i}-weekday"] = str(day)
    for i, off in enumerate(sorted(operator["exceptions"], key=lambda e: e["start"])):
        values |= {
            f"off-{i}-kind": off["kind"],
            f"off-{i}-start": local(off["start"], zone),
            f"off-{i}-end": local(off["end"], zone),
            f"off-{i}-reason": off["reason"],
        }
    return values


def _row_counts(values: dict[str, str]) -> dict[str, int]:
    def used(prefix: str) -> int:
        found = [int(k.split("-")[1]) for k in values if k.startswith(prefix + "-")]
        return max(found, default=-1) + 1

    return {
        "skill_rows": max(used("skill") + SPARE, 3),
        "shift_rows": max(used("shift"), 7),
        "off_rows": used("off") + 1,
    }


def _errors(exc: plant.Refused) -> dict[str, str]:
    return exc.errors if isinstance(exc, FormInvalid) else {"form": f"Not saved: {exc.message}."}


NEW = plant.PlantForm("plant/operators.html", "new_operator", "operator", _errors,
                      refused=(FormInvalid,))  # fmt: skip
EDIT = plant.PlantForm("plant/operator.html", "operator_form", "operator", _errors,
                       rows=lambda form, _: _row_counts(submitted(form)))  # fmt: skip


async def _list_context(request: Request, session: PageSession) -> dict[str, Any]:
    async def fetch(search: str | None, offset: int) -> tuple[list[OperatorView], int]:
        return await resources.list_operators(
            services=services_of(request), actor=session.actor, skill=None,
            limit=plant.PAGE_SIZE, offset=offset, search=search,
        )  # fmt: skip

    return await plant.listing(request, session, "operators", "operators", fetch)


@page_route(action=plant.READ)
async def operator_list(request: Request, session: PageSession) -> Response:
    context = await _list_context(request, session)
    return plant.answer(request, "plant/operators.html", context, block="plant")


def _read_new(reader: FormReader, _: dict[str, Any]) -> dict[str, Any]:
    """A new operator is a name; the rest is the operator's own form."""
    name = reader.text("name", required=True)
    reader.done()
    return {"name": name}


@page_route(action=plant.MANAGE)
async def create_operator(request: Request, session: PageSession) -> Response:
    async def write(data: dict[str, Any]) -> tuple[str, str]:
        made = await resources.create_operator(
            services=services_of(request), actor=session.actor, data=data
        )
        return f"/plant/operators/{made['id']}", f"{data['name']} added."

    load = partial(_list_context, request, session)
    return await plant.created(request, NEW, load, read=_read_new, write=write)


async def _operator_context(
    request: Request, session: PageSession, operator_id: int
) -> dict[str, Any]:
    zone = await plant.plant_zone(request)
    operator = await resources.get_operator(
        services=services_of(request), actor=session.actor, operator_id=operator_id
    )
    values = operator_values(operator, zone)
    return (
        plant.base_context(session, "operators", zone)
        | _row_counts(values)
        | {
            "operator": operator,
            "values": values,
            "day_options": [(str(i), day) for i, day in enumerate(WEEKDAYS)],
        }
    )


@page_route(action=plant.READ)
async def operator_page(request: Request, session: PageSession) -> Response:
    context = await _operator_context(request, session, request.path_params["operator_id"])
    return plant.answer(request, "plant/operator.html", context, block="plant")


@page_route(action=plant.MANAGE)
async def save_operator(request: Request, session: PageSession) -> Response:
    operator_id: int = request.path_params["operator_id"]
    update = partial(resources.update_operator, services=services_of(request),
                     actor=session.actor, operator_id=operator_id)  # fmt: skip
    return await plant.saved(
        request, EDIT, partial(_operator_context, request, session, operator_id), update=update,
        read=lambda reader, _: read_operator(reader), url=f"/plant/operators/{operator_id}",
    )  # fmt: skip


@page_route(action=plant.MANAGE)
async def delete_operator(request: Request, session: PageSession) -> Response:
    delete = partial(
        resources.delete_operator, services=services_of(request), actor=session.actor,
        operator_id=request.path_params["operator_id"],
    )  # fmt: skip
    return await plant.deleted(
        request, "operator", delete, back="/plant/operators", done="Operator deleted."
    )


routes = [
    Route("/plant/operators", operator_list, methods=["GET"]),
    Route("/plant/operators", create_operator, methods=["POST"]),
    Route("/plant/operators/{operator_id:id}", operator_page, methods=["GET"]),
    Route("/plant/operators/{operator_id:id}", save_operator, methods=["POST"]),
    Route("/plant/operators/{operator_id:id}/delete", delete_operator, methods=["POST"]),
]
