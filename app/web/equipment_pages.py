"""Equipment status from the board: a machine goes down, into maintenance, back.

    POST /board/equipment/{id}/status   form: status, expected_back (plant time), note
    POST /board/equipment/{id}/clear    move every open task off the machine (a bulk job)

The row header of each machine (rows by equipment) carries the status form
for people with `equipment.status`. Setting a status goes through
`services.breakdowns` (audited, published); the answer re-renders the whole
board out of band, as the live feed does for every other board, so the row,
the marked bars and the "out of service" list in the conflicts panel show
at once. The tasks to move are offered there: "Back to tray" per task (the
existing unschedule route, with the version the board shows) and, for
`assignment.write`, "Move all off this machine" (`services.bulk`, on the
run queue; its result reaches the board through the live feed).

Both routes are POSTs, so they need the session's CSRF token (htmx sends it
as a header; the form carries it as a field for a browser without scripts,
which gets a redirect back to the board instead of fragments).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.db.board_queries import Resource
from app.db.session import database_unavailable
from app.services import board as board_service, breakdowns, bulk
from app.services.board_view import BoardView
from app.services.breakdowns import StatusChanged
from app.web import board_forms as forms, board_render as render
from app.web.session import PageSession, page_route, services_of
from app.web.templates import notice_html, render as render_template, wants_fragment

# What the status answer re-renders: the same blocks as the live feed's full refresh.
REFRESH_BLOCKS = ["main", "conflicts", "tray", "revision"]


@page_route(action="equipment.status")
async def set_status(request: Request, session: PageSession) -> Response:
    services = services_of(request)
    equipment_id: int = request.path_params["equipment_id"]
    zone = ZoneInfo(await board_service.plant_timezone(services=services))
    view = render.view_from_query(request.query_params, zone)
    form = await request.form()
    changed = await breakdowns.set_equipment_status(
        services=services,
        actor=session.actor,
        equipment_id=equipment_id,
        status=forms.text(form, "status"),
        expected_back=_expected_back(form, zone),
        note=forms.text(form, "note"),
    )
    if not wants_fragment(request):
        return RedirectResponse(f"/board?{render.query_string(view)}", status_code=303)
    try:
        board = await board_service.load_board(
            services=services, actor=session.actor, scope=render.scope_of(view)
        )
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        # Saved all the same; the live feed redraws the board once the database answers.
        message = f"Equipment {equipment_id} is now {changed.status}."
        return HTMLResponse(notice_html(message, level="ok"))
    context = render.board_context(board, view, session.actor, zone) | {
        "session": session,
        "oob": True,
        "main_oob": True,
    }
    name = _machine_name(board.resources, view, equipment_id)
    response = render_template(request, "board.html", context, block_names=REFRESH_BLOCKS)
    notice = notice_html(status_message(name, changed, zone), level="ok")
    return HTMLResponse(bytes(response.body).decode() + str(notice))


@page_route(action="assignment.write")
async def clear_machine(request: Request, session: PageSession) -> Response:
    services = services_of(request)
    equipment_id: int = request.path_params["equipment_id"]
    await bulk.clear_equipment(services=services, actor=session.actor, equipment_id=equipment_id)
    message = (
        "Moving the open tasks off this machine: to another free machine where one fits, "
        "else to the tray. The board updates when it is done."
    )
    if not wants_fragment(request):
        return RedirectResponse("/board", status_code=303)
    return HTMLResponse(notice_html(message, level="ok"))


def status_message(name: str, changed: StatusChanged, zone: ZoneInfo) -> str:
    if changed.status == "available":
        return f"{name} is available again."
    state = "down" if changed.status == "down" else "in maintenance"
    until = ""
    if changed.expected_back is not None:
        until = f" until {changed.expected_back.astimezone(zone):%a %d %b %H:%M}"
    count = len(changed.affected_task_ids)
    if not count:
        return f"{name} is {state}{until}. No booked tasks are affected."
    tasks = f"{count} booked task{'s' if count != 1 else ''}"
    return f"{name} is {state}{until}: {tasks} affected. Move them from the Conflicts panel."


def _machine_name(resources: list[Resource], view: BoardView, equipment_id: int) -> str:
    if view.rows == "equipment":
        for resource in resources:
            if resource.id == equipment_id:
                return str(resource.name)
    return f"Equipment #{equipment_id}"


def _expected_back(form: Mapping[str, Any], zone: ZoneInfo) -> datetime | None:
    if not forms.text(form, "expected_back"):
        return None
    # datetime-local: plant time, no offset.
    return forms.form_time(form, "expected_back", zone)


routes = [
    Route("/board/equipment/{equipment_id:id}/status", set_status, methods=["POST"]),
    Route("/board/equipment/{equipment_id:id}/clear", clear_machine, methods=["POST"]),
]
