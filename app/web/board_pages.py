"""The board's routes: the page, its fragments, and the edits made from it.

    GET  /board                       the page (htmx navigation: #board-main and panels)
    GET  /board/tray?offset=          more unscheduled tasks (<li> items)
    GET  /board/tasks/{id}            the detail panel of one task
    GET  /board/jobs/{id}/critical    {"critical_task_ids": [...]} of a job
    POST /board/preview               what a placement would conflict with (JSON, nothing saved)
    POST /board/tasks/{id}/place      place/move a task (form; `version` is the task's version)
    POST /board/tasks/{id}/unschedule back to the tray

Edits answer with `hx-swap-oob` fragments (bar, conflicts, counters, tray,
notice); a refused edit answers with its 4xx status, a `#notice` and, where
the task exists, its current bar, so the board snaps back to the truth.
Every edit goes through `services.tasks`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app import clock
from app.db.session import database_unavailable
from app.domain.plan import TaskStatus
from app.http_errors import error_response
from app.services import board as board_service, jobs, qualification, schedule, tasks
from app.services.board_changes import board_changes
from app.services.board_view import BoardView
from app.services.errors import (
    InvalidInput,
    NotFound,
    PreconditionRequired,
    ServiceError,
    StateConflict,
    VersionMismatch,
)
from app.web import board_forms as forms, board_render as render, board_undo
from app.web.session import PageSession, page_route, services_of
from app.web.templates import ENV, notice_html, refused, render as render_template, wants_fragment

MAIN_BLOCKS = ["main", "conflicts", "tray", "revision"]


async def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(await board_service.plant_timezone(services=services_of(request)))


@page_route(action=None)
async def board_page(request: Request, session: PageSession) -> Response:
    began = time.perf_counter()
    if session.actor.role == "operator":
        return RedirectResponse("/my", status_code=303)
    if not session.may("plan.read"):
        return refused(request, 403, "Your role may not open the board.")
    zone = await _zone(request)
    view = render.view_from_query(request.query_params, zone)
    board = await board_service.load_board(
        services=services_of(request), actor=session.actor, scope=render.scope_of(view)
    )
    context = render.board_context(board, view, session.actor, zone) | {"session": session}
    if wants_fragment(request):
        response = render_blocks(request, MAIN_BLOCKS, context | {"oob": True})
    else:
        response = render_page(request, context)
    if "focus" in request.query_params:
        # Zoomed onto a bar: the address bar shows the window, not the bar it came from.
        response.headers["HX-Push-Url"] = "/board?" + render.query_string(view)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "HX-Request, Cookie"
    response.headers["Server-Timing"] = f"board;dur={(time.perf_counter() - began) * 1000:.1f}"
    return response


def render_page(request: Request, context: dict[str, Any]) -> Response:
    return render_template(request, "board.html", context)


def render_blocks(request: Request, blocks: list[str], context: dict[str, Any]) -> Response:
    return render_template(request, "board.html", context, block_names=blocks)


@page_route(action="plan.read")
async def tray_more(request: Request, session: PageSession) -> Response:
    view = BoardView.from_query(request.query_params, default_start=clock.now())
    offset = forms.query_int(request.query_params, "offset") or 0
    tray = await board_service.tray_page(
        services=services_of(request),
        actor=session.actor,
        filters=render.scope_of(view).filters,
        offset=offset,
    )
    tray_query = urlencode(
        {k: v for k, v in view.to_query().items() if k in ("job", "skill", "type")}
    )
    items = ENV.get_template("board/parts.html").module.tray_items(  # type: ignore[attr-defined]
        tray, tray_query, render.job_hue, session.may("assignment.write")
    )
    return HTMLResponse(str(items))


@page_route(action="plan.read")
async def task_detail(request: Request, session: PageSession) -> Response:
    zone = await _zone(request)
    view = render.view_from_query(request.query_params, zone)
    return HTMLResponse(
        await detail_html(request, session, request.path_params["task_id"], view, zone)
    )


async def detail_html(
    request: Request,
    session: PageSession,
    task_id: int,
    view: BoardView,
    zone: ZoneInfo,
    *,
    oob: bool = False,
) -> str:
    services, actor = services_of(request), session.actor
    task = await tasks.get_task(services=services, actor=actor, task_id=task_id)
    job = await jobs.get_job(services=services, actor=actor, job_id=task["job_id"])
    conflicts = await schedule.conflicts_of_task(services=services, task_id=task_id)
    operators, machines = await board_service.resources(services=services, actor=actor)
    fit = await qualification.qualified_for(services=services, actor=actor, task_id=task_id)
    placed = task["assignment"]
    start = placed["start"] if placed else max(view.start, _now_rounded(view))
    end = placed["end"] if placed else start + timedelta(minutes=task["duration_minutes"])
    context = {
        "task": task,
        "job": job,
        "placed": placed,
        "conflicts": [c.as_dict() for c in conflicts],
        "operators": [
            {
                "id": o.id,
                "name": o.name,
                "detail": o.detail,
                "status": o.status,
                "qualified": o.id in fit.operator_ids,
            }
            for o in operators
        ],
        "equipment": [
            {
                "id": m.id,
                "name": m.name,
                "status": m.status,
                "qualified": m.id in fit.equipment_ids,
            }
            for m in machines
        ],
        "form_start": start.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "form_end": end.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "zone": zone,
        "query": render.query_string(view),
        "job_filter_query": render.query_string(view, job_id=task["job_id"]),
        "can_edit": session.may("assignment.write"),
        # In progress past its booked end: the detail offers its repair (repair_pages.py).
        "running_late": placed is not None
        and task["status"] == TaskStatus.IN_PROGRESS
        and placed["end"] < clock.now(),
        "can_optimize": session.may("plan.optimize"),
        "hue": render.job_hue(task["job_id"]),
        "local": lambda moment, fmt="%a %d %b %H:%M": moment.astimezone(zone).strftime(fmt),
        "oob": oob,
    }
    return ENV.get_template("board/detail.html").render(context)


def _now_rounded(view: BoardView) -> datetime:
    now = clock.now()
    step = view.snap
    return view.start + ((now - view.start) // step) * step if now > view.start else view.start


@page_route(action="plan.read")
async def critical_path(request: Request, session: PageSession) -> Response:
    job_id = request.path_params["job_id"]
    try:
        path = await schedule.job_critical_path(
            services=services_of(request), actor=session.actor, job_id=job_id
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JSONResponse(
        {
            "job_id": job_id,
            "critical_task_ids": list(path.critical),
            "task_ids": sorted(path.timings),
        }
    )


@page_route(action="plan.read")
async def preview(request: Request, session: PageSession) -> Response:
    """What the dragged bar would conflict with there (board.js colours the ghost)."""
    form = await request.form()
    services = services_of(request)
    try:
        zone = await _zone(request)
        task_id = forms.required_int(form, "task_id")
        start, end = forms.slot(form, zone)
        there = await _dropped(request, session, form, task_id, start, end)
        found = await schedule.validate_proposal(
            services=services,
            actor=session.actor,
            task_id=task_id,
            operator_id=there.operator_id,
            equipment_id=there.equipment_id,
            start=there.start,
            end=there.end,
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    conflicts = [c.as_dict() for c in found.conflicts]
    level = "ok"
    if conflicts:
        level = "error" if any(c["severity"] == "error" for c in conflicts) else "warning"
    return JSONResponse(
        {
            "level": level,
            "conflicts": conflicts,
            "operator_id": there.operator_id,
            "equipment_id": there.equipment_id,
            # Where the slot ends there (alternative routings: the task's time on that
            # machine): the ghost takes this length before the drop.
            "ends_at": there.end.isoformat(),
            "revision": found.revision,
        }
    )


async def _dropped(
    request: Request,
    session: PageSession,
    form: FormData,
    task_id: int,
    start: datetime,
    end: datetime,
) -> tasks.Placement:
    """Where a drop lands, for the preview and the placement alike: the resource it did
    not name (`suggest_partner`), and the slot's end on that machine (`routed_end`)."""
    services = services_of(request)
    operator_id, equipment_id = await board_service.suggest_partner(
        services=services,
        actor=session.actor,
        task_id=task_id,
        operator_id=forms.optional_int(form, "operator_id"),
        equipment_id=forms.optional_int(form, "equipment_id"),
        start=start,
        end=end,
    )
    end = await tasks.routed_end(
        services=services, task_id=task_id, equipment_id=equipment_id, start=start, end=end
    )
    return tasks.Placement(operator_id, equipment_id, start, end)


@page_route(action="assignment.write")
async def place(request: Request, session: PageSession) -> Response:
    services, actor = services_of(request), session.actor
    task_id: int = request.path_params["task_id"]
    form = await request.form()
    zone = await _zone(request)
    view = render.view_from_query(request.query_params, zone)
    try:
        version = forms.version(form)
        start, end = forms.slot(form, zone)
        before = await tasks.get_task(services=services, actor=actor, task_id=task_id)
        placement = await _dropped(request, session, form, task_id, start, end)
        end = placement.end
        placed = await tasks.assign_task(
            services=services,
            actor=actor,
            task_id=task_id,
            expected_version=version,
            placement=placement,
        )
    except ServiceError as exc:
        return await _edit_refused(request, session, view, task_id, exc)
    message, level = placed_notice(placed, render.span_label(start, end, zone))
    record = board_undo.last_edit_html(
        task_id=task_id,
        version=placed.task["version"],
        before=board_undo.placement_of(before["assignment"]),
        after_start=start.isoformat(),
        what=f"{placed.task['name']} to {render.span_label(start, end, zone)}",
    )
    rows = _rows_of(view, before["assignment"], asdict(placement))
    return await _edit_done(
        request, session, view, zone, task_id, message, form, level=level, record=record, rows=rows
    )


def placed_notice(placed: tasks.Placed, span: str) -> tuple[str, str]:
    """Saved: green when the plan holds, a warning naming the conflicts when it does not."""
    name = placed.task["name"]
    if not placed.conflicts:
        return f"{name} placed: {span}", "ok"
    count = len(placed.conflicts)
    shown = "; ".join(c.message for c in placed.conflicts[:2])
    more = f" (+{count - 2} more)" if count > 2 else ""
    noun = f"{count} conflict{'s' if count != 1 else ''}"
    return f"{name} placed with {noun}: {span}. {shown}{more}", "warning"


@page_route(action="assignment.write")
async def unschedule(request: Request, session: PageSession) -> Response:
    services, actor = services_of(request), session.actor
    task_id: int = request.path_params["task_id"]
    form = await request.form()
    zone = await _zone(request)
    view = render.view_from_query(request.query_params, zone)
    try:
        before = await tasks.get_task(services=services, actor=actor, task_id=task_id)
        task = await tasks.unschedule_task(
            services=services, actor=actor, task_id=task_id, expected_version=forms.version(form)
        )
    except ServiceError as exc:
        return await _edit_refused(request, session, view, task_id, exc)
    message = f"{task['name']} is back in the tray."
    record = board_undo.last_edit_html(
        task_id=task_id,
        version=task["version"],
        before=board_undo.placement_of(before["assignment"]),
        after_start=None,
        what=f"{task['name']} back to the tray",
    )
    rows = _rows_of(view, before["assignment"])
    return await _edit_done(
        request, session, view, zone, task_id, message, form, record=record, rows=rows
    )


def _rows_of(view: BoardView, *placements: Mapping[str, Any] | None) -> set[int]:
    """The rows of `view` these placements are on (a move's old and new one): their
    load strips go with the answer."""
    key = "equipment_id" if view.rows == "equipment" else "operator_id"
    return {p[key] for p in placements if p is not None and p.get(key) is not None}


async def _edit_done(
    request: Request,
    session: PageSession,
    view: BoardView,
    zone: ZoneInfo,
    task_id: int,
    message: str,
    form: FormData,
    *,
    level: str = "ok",
    record: str = "",
    rows: Collection[int] = (),
) -> Response:
    try:
        html = await _task_fragments(request, session, view, task_id, rows)
        if form.get("from_detail"):
            html += await detail_html(request, session, task_id, view, zone, oob=True)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        # Saved all the same: only the redraw failed. The live feed brings the bar
        # once the database answers again.
        html, message = "", f"{message} The board will catch up in a moment."
    # str(): Markup + str would escape the fragments before it.
    return HTMLResponse(html + str(notice_html(message, level=level)) + str(record))


async def _edit_refused(
    request: Request, session: PageSession, view: BoardView, task_id: int, exc: ServiceError
) -> Response:
    """A refused edit: say why, and show the task as it is now (the bar snaps back)."""
    message = exc.message
    if isinstance(exc, VersionMismatch):
        who = await board_service.changed_by_name(
            services=services_of(request), user_id=exc.changed_by
        )
        form = await request.form()
        intent = form.get("intent")
        message = board_undo.refusal(intent if isinstance(intent, str) else None, who) or (
            f"{who or 'Someone else'} changed this task while you were editing it. "
            "Your change was not saved; the board shows their version."
        )
    elif isinstance(exc, PreconditionRequired):
        message = "The board did not say which version of the task you changed. Reload the page."
    html = str(notice_html(message))
    if isinstance(exc, VersionMismatch | StateConflict | InvalidInput):
        html += await _task_fragments(request, session, view, task_id)
    headers = {"HX-Reswap": "none"}
    return HTMLResponse(html, status_code=exc.status, headers=headers)


async def _task_fragments(
    request: Request,
    session: PageSession,
    view: BoardView,
    task_id: int,
    rows: Collection[int] = (),
) -> str:
    try:
        changes = await board_changes(
            services=services_of(request),
            actor=session.actor,
            scope=render.scope_of(view),
            task_ids={task_id},
            rows=rows,
        )
    except NotFound:
        return ""
    # revision=None: only the live feed, applying changes in order, moves the page's revision.
    return render.changes_html(changes, view, session.actor, revision=None)


routes = [
    Route("/board", board_page, methods=["GET"]),
    Route("/board/tray", tray_more, methods=["GET"]),
    Route("/board/preview", preview, methods=["POST"]),
    Route("/board/tasks/{task_id:id}", task_detail, methods=["GET"]),
    Route("/board/tasks/{task_id:id}/place", place, methods=["POST"]),
    Route("/board/tasks/{task_id:id}/unschedule", unschedule, methods=["POST"]),
    Route("/board/jobs/{job_id:id}/critical", critical_path, methods=["GET"]),
]
