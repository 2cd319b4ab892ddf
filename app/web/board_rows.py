"""The board's rows in blocks, fetched as the board scrolls (see app/services/board_rows.py).

    GET /board/rows?<view>&first=N&count=M   the bars of rows N to N+M
    GET /board/rows?<view>&task=ID           the block of rows holding the task's bar

Both answer a `<template id="row-block" data-first data-last data-revision>`
holding the bars, rendered as the page renders them.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.services import board_rows
from app.services.access import allowed
from app.services.board import ROW_PAGE, plant_timezone
from app.web import board_forms as forms, board_render as render
from app.web.session import PageSession, page_route, services_of
from app.web.templates import ENV


@page_route(action="plan.read")
async def rows(request: Request, session: PageSession) -> Response:
    services, actor = services_of(request), session.actor
    zone = ZoneInfo(await plant_timezone(services=services))
    view = render.view_from_query(request.query_params, zone)
    scope = render.scope_of(view)
    params = request.query_params
    first = forms.query_int(params, "first") or 0
    count = forms.query_int(params, "count") or ROW_PAGE
    task_id = forms.query_int(params, "task")
    if task_id is not None:
        row = await board_rows.row_of_task(
            services=services, actor=actor, scope=scope, task_id=task_id
        )
        first, count = ((row // ROW_PAGE) * ROW_PAGE, ROW_PAGE) if row is not None else (0, 0)
    block = await board_rows.row_block(
        services=services, actor=actor, scope=scope, first=first, count=count
    )
    can_edit = allowed(actor, "assignment.write")
    bars = render.bars_of(
        block.bars, view, ZoneInfo(block.timezone), block.resources, block.conflicts, can_edit
    )
    html = ENV.get_template("board/rows.html").render(
        first=block.first, last=block.last, revision=block.revision, bars=bars
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


routes = [Route("/board/rows", rows, methods=["GET"])]
