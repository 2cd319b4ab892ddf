"""The scheduler's tools around the board: search and the plant-wide conflict list.

    GET /board/search?q=[&kind=]         {"query", "results": [...]}: jobs (by order
                                         reference, name, customer), tasks, operators,
                                         equipment (only `kind`, e.g. job for the job
                                         filter), each with where it is on the board
    GET /board/conflicts?<view>&after=   the board panel's conflicts after the last shown
                                         (HTML: its items, and "Show more" out of band)
    GET /board/conflicts/all?offset=&severity=
                                         one page of every conflict of the plan (HTML),
                                         each with "go to"
    GET /board/export.csv?<view>         the plan in view (the board's window and
    GET /board/export.xlsx?<view>        filters) as CSV or an Excel workbook
    POST /board/selection/shift          tasks=<id>:<version>,... minutes=: move the
                                         selected tasks together (a bulk run); {"run_id"}
    GET /board/runs/{run_id}             how that run went: {"status", "error", "result"}
    GET /board/jobs/{id}/network         the job's links and each task's earliest/latest
                                         start and slack (CPM), for its arrows on the board

Bad input answers 422 in the one error shape and reads nothing.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from app.domain.plan import Interval
from app.http_errors import error_response
from app.services import (
    background,
    board as board_service,
    board_search,
    bulk,
    conflict_list,
    job_network,
    plan_export,
)
from app.services.access import allowed
from app.services.errors import ServiceError
from app.services.offload import offload
from app.web import board_forms as forms, board_render as render
from app.web.board_conflicts import conflict_items, more_conflicts
from app.web.session import PageSession, page_route, services_of
from app.web.templates import ENV

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORTS = ("csv", "xlsx")


def _bad(field: str, message: str) -> Response:
    return error_response(422, "invalid_input", message, {"field": field})


@page_route(action="plan.read")
async def search(request: Request, session: PageSession) -> Response:
    text = request.query_params.get("q", "")
    kind = request.query_params.get("kind") or None
    try:
        hits = await board_search.search_plan(
            services=services_of(request), actor=session.actor, text=text, kind=kind
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JSONResponse({"query": text.strip(), "results": [hit.as_dict() for hit in hits]})


@page_route(action="plan.read")
async def window_conflicts(request: Request, session: PageSession) -> Response:
    after = request.query_params.get("after")
    if after is None:
        return _bad("after", "after is the data-order of the last item shown (empty: the first)")
    services = services_of(request)
    zone = ZoneInfo(await board_service.plant_timezone(services=services))
    view = render.view_from_query(request.query_params, zone)
    try:
        page = await conflict_list.window_conflicts(
            services=services, actor=session.actor, scope=render.scope_of(view), after=after
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    html = ENV.get_template("board/parts.html").module.conflicts_page(  # type: ignore[attr-defined]
        conflict_items(page.items, page.refs),
        more_conflicts(page, services.settings.board_conflicts_page),
        can_edit=allowed(session.actor, "assignment.write"),
    )
    # board_conflicts.js asks again if its board already shows a later revision.
    headers = {"Cache-Control": "no-store", "X-Takt-Revision": str(page.revision)}
    return HTMLResponse(str(html), headers=headers)


@page_route(action="plan.read")
async def all_conflicts(request: Request, session: PageSession) -> Response:
    params = request.query_params
    offset = forms.query_int(params, "offset")
    if params.get("offset") not in (None, "") and offset is None:
        return _bad("offset", "offset is a whole number, zero or more")
    severity = params.get("severity") or None
    try:
        page = await conflict_list.plant_conflicts(
            services=services_of(request),
            actor=session.actor,
            offset=offset or 0,
            severity=severity,
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    zone = await board_service.plant_timezone(services=services_of(request))
    html = ENV.get_template("board/tools.html").module.plant_conflicts(  # type: ignore[attr-defined]
        page, severity or "", zone
    )
    return HTMLResponse(str(html), headers={"Cache-Control": "no-store"})


@page_route(action="plan.read")
async def export(request: Request, session: PageSession) -> Response:
    kind = request.path_params["kind"]
    if kind not in EXPORTS:
        return error_response(404, "not_found", "the plan exports as .csv or .xlsx")
    services = services_of(request)
    zone = ZoneInfo(await board_service.plant_timezone(services=services))
    view = render.view_from_query(request.query_params, zone)
    rows = await plan_export.plan_in_view(
        services=services,
        actor=session.actor,
        window=Interval(view.start, view.end),
        filters=render.scope_of(view).filters,
    )
    name = f"takt-plan-{view.start.astimezone(zone):%Y-%m-%d-%H%M}-{view.zoom}"
    # Writing a week's rows takes a while: off the event loop.
    if kind == "csv":
        body, media = await offload(plan_export.csv_bytes, rows), "text/csv; charset=utf-8"
    else:
        title = f"Takt plan · {render.span_label(view.start, view.end, zone)} · {zone.key}"
        body, media = await offload(plan_export.xlsx_bytes, rows, title=title), XLSX
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{kind}"',
            "Cache-Control": "no-store",
        },
    )


@page_route(action="assignment.write")
async def shift_selection(request: Request, session: PageSession) -> Response:
    form = await request.form()
    versions = _selection(str(form.get("tasks", "")))
    if versions is None:
        return _bad("tasks", "tasks is a list of <task id>:<version>, comma-separated")
    minutes = _minutes(str(form.get("minutes", "")))
    if minutes is None:
        return _bad("minutes", "minutes is a whole number, negative for earlier")
    try:
        run_id = await bulk.shift_tasks(
            services=services_of(request), actor=session.actor, versions=versions, minutes=minutes
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JSONResponse({"run_id": run_id}, status_code=202)


def _minutes(raw: str) -> int | None:
    digits = raw.removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) < 10):
        return None
    return -int(digits) if raw.startswith("-") else int(digits)


def _selection(raw: str) -> dict[int, int] | None:
    versions: dict[int, int] = {}
    for part in filter(None, raw.split(",")):
        task, _, version = part.partition(":")
        if not (task.isascii() and task.isdigit() and version.isascii() and version.isdigit()):
            return None
        if len(task) > 12 or len(version) > 9:
            return None
        versions[int(task)] = int(version)
    return versions


@page_route(action="plan.read")
async def run_state(request: Request, session: PageSession) -> Response:
    try:
        found = await background.run_status(
            services=services_of(request), actor=session.actor, run_id=request.path_params["run_id"]
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if found.created_by != session.actor.user_id or not found.kind.startswith("bulk."):
        return error_response(404, "not_found", "no such run of yours")
    return JSONResponse(
        {"status": found.status, "error": found.error, "result": found.result},
        headers={"Cache-Control": "no-store"},
    )


@page_route(action="plan.read")
async def network(request: Request, session: PageSession) -> Response:
    job_id = request.path_params["job_id"]
    try:
        found = await job_network.job_network(
            services=services_of(request), actor=session.actor, job_id=job_id
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JSONResponse(found.as_dict())


routes = [
    Route("/board/search", search, methods=["GET"]),
    Route("/board/conflicts", window_conflicts, methods=["GET"]),
    Route("/board/conflicts/all", all_conflicts, methods=["GET"]),
    Route("/board/export.{kind:str}", export, methods=["GET"]),
    Route("/board/selection/shift", shift_selection, methods=["POST"]),
    Route("/board/runs/{run_id:str}", run_state, methods=["GET"]),
    Route("/board/jobs/{job_id:id}/network", network, methods=["GET"]),
]
