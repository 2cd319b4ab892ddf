"""The scheduler's tools around the board: search and the plant-wide conflict list.

    GET /board/search?q=                 {"query", "results": [...]}: jobs (by order
                                         reference, name, customer), tasks, operators,
                                         equipment, each with where it is on the board
    GET /board/conflicts/all?offset=&severity=
                                         one page of every conflict of the plan (HTML),
                                         each with "go to"

Bad input answers 422 in the one error shape and reads nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from app.api.errors import error_response
from app.services import board as board_service, board_search, conflict_list
from app.services.errors import ServiceError
from app.web import board_forms as forms
from app.web.session import PageSession, page_route, services_of
from app.web.templates import ENV


def _bad(field: str, message: str) -> Response:
    return error_response(422, "invalid_input", message, {"field": field})


@page_route(action="plan.read")
async def search(request: Request, session: PageSession) -> Response:
    text = request.query_params.get("q", "")
    try:
        hits = await board_search.search_plan(
            services=services_of(request), actor=session.actor, text=text
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JSONResponse({"query": text.strip(), "results": [hit.as_dict() for hit in hits]})


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


routes = [
    Route("/board/search", search, methods=["GET"]),
    Route("/board/conflicts/all", all_conflicts, methods=["GET"]),
]
