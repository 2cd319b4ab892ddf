"""The board's optimizer panel: start a run, watch it, preview its draft, apply it.

    GET  /board/optimizer                        the options (time limit, which tasks)
    POST /board/optimizer/runs                   start a run → the running panel
    GET  /board/optimizer/runs/{run_id}          the running panel (htmx polls it every 1 s),
                                                 or the draft's diff once it is ready
    POST /board/optimizer/runs/{run_id}/cancel   stop: the best draft so far, if any
    POST /board/optimizer/drafts/{id}/apply      apply → "Applied N changes", or 409 naming
                                                 the tasks that changed since the run started
    POST /board/optimizer/drafts/{id}/discard    drop the draft → the options again

Every answer is the whole `#optimizer` panel (templates/board/optimizer.html).
Progress comes by polling, not the live feed: one small GET a second per
watching scheduler, robust behind any proxy, and it stops by itself (the
draft's panel carries no trigger). An applied draft reaches every board,
this one included, through the live feed as one revision, like any edit.

The view's query (start, zoom, rows, filters) rides along on every URL:
"the jobs in view" is that window's jobs, and the draft's ghosts are drawn
for it. Starting, cancelling, applying and discarding are POSTs, so they
need the session's CSRF token (htmx sends it); the actions are the
service's: `plan.optimize` to run, `assignment.write` to apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.services import board as board_service, drafts, optimizer_runs, run_watch, tasks
from app.services.board_view import BoardView
from app.services.errors import InvalidInput, NotFound, ServiceError
from app.web import board_render, optimizer_render as render
from app.web.session import PageSession, page_route, services_of
from app.web.templates import ENV

TIME_LIMITS = (10, 30, 60)
# The route takes any limit in this range (tests run with 2 s); the panel offers TIME_LIMITS.
LIMIT_RANGE = range(1, 301)
SCOPES = (
    ("window", "Jobs in view", "the jobs with tasks in this window (and filter)"),
    ("all", "All open jobs", "every job with tasks still to do"),
)
# How long a look at a running panel waits for the first plan before it answers anyway.
FIRST_PLAN_WAIT_S = 1.5
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- reading a request -----------------------------------------------------------------------


async def _options(request: Request) -> tuple[int, str]:
    """The time limit and scope, from the options form or (re-run) the query."""
    form = await request.form()
    raw_limit = form.get("time_limit") or request.query_params.get("time_limit") or "30"
    raw_scope = form.get("scope") or request.query_params.get("scope") or "window"
    if (
        not isinstance(raw_limit, str)
        or not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 3)
        or int(raw_limit) not in LIMIT_RANGE
    ):
        raise InvalidInput(
            "the time limit must be a whole number of seconds from 1 to 300",
            {"time_limit": str(raw_limit)[:20]},
        )
    if raw_scope not in {value for value, _, _ in SCOPES}:
        raise InvalidInput("scope must be 'window' or 'all'", {"scope": str(raw_scope)[:20]})
    return int(raw_limit), str(raw_scope)


def _run_id(request: Request) -> str:
    run_id = str(request.path_params["run_id"])
    if not _RUN_ID.fullmatch(run_id):
        raise InvalidInput("that is no optimizer run", {"run_id": run_id[:40]})
    return run_id


async def _view(request: Request) -> tuple[BoardView, ZoneInfo]:
    zone = ZoneInfo(await board_service.plant_timezone(services=services_of(request)))
    return board_render.view_from_query(request.query_params, zone), zone


def _queries(view: BoardView, limit: int, scope: str) -> dict[str, str]:
    query = board_render.query_string(view)
    run = urlencode({"time_limit": limit, "scope": scope})
    return {"query": query, "rerun_query": f"{query}&{run}", "draft_query": f"{query}&{run}"}


def _panel(context: dict[str, Any], *, status_code: int = 200) -> Response:
    html = ENV.get_template("board/optimizer.html").render(context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


# --- the routes ------------------------------------------------------------------------------


@page_route(action="plan.optimize")
async def options(request: Request, session: PageSession) -> Response:
    view, _ = await _view(request)
    limit = request.query_params.get("time_limit", "")
    scope = request.query_params.get("scope", "window")
    return _panel(
        {
            "state": "options",
            "time_limits": TIME_LIMITS,
            "time_limit": int(limit)
            if limit.isascii() and limit.isdigit() and len(limit) <= 3
            else 30,
            "scopes": SCOPES,
            "scope": scope,
            **_queries(view, 30, scope),
        }
    )


@page_route(action="plan.optimize")
async def start(request: Request, session: PageSession) -> Response:
    services = services_of(request)
    limit, scope = await _options(request)
    view, _ = await _view(request)
    job_ids = await _jobs_in_view(request, session, view) if scope == "window" else None
    run_id = await optimizer_runs.start_optimization(
        services=services, actor=session.actor, time_limit_s=limit, job_ids=job_ids
    )
    status = await optimizer_runs.run_status(
        services=services, actor=session.actor, run_id=str(run_id)
    )
    return await _run_panel(request, session, str(run_id), status, view, limit, scope)


@page_route(action="plan.optimize")
async def progress(request: Request, session: PageSession) -> Response:
    limit, scope = await _options(request)
    run_id = _run_id(request)
    view, _ = await _view(request)
    # Until the first plan the panel asks again at once and the answer waits for it.
    status = await run_watch.once_planned(
        services=services_of(request),
        actor=session.actor,
        run_id=run_id,
        within_s=FIRST_PLAN_WAIT_S,
    )
    return await _run_panel(request, session, run_id, status, view, limit, scope)


@page_route(action="plan.optimize")
async def cancel(request: Request, session: PageSession) -> Response:
    limit, scope = await _options(request)
    run_id = _run_id(request)
    view, _ = await _view(request)
    services = services_of(request)
    await optimizer_runs.cancel_run(services=services, actor=session.actor, run_id=run_id)
    status = await optimizer_runs.run_status(services=services, actor=session.actor, run_id=run_id)
    return await _run_panel(request, session, run_id, status, view, limit, scope)


@page_route(action="assignment.write")
async def apply(request: Request, session: PageSession) -> Response:
    limit, scope = await _options(request)
    view, _ = await _view(request)
    draft_id: int = request.path_params["draft_id"]
    services = services_of(request)
    try:
        applied = await drafts.apply_draft(
            services=services, actor=session.actor, draft_id=draft_id
        )
    except ServiceError as exc:
        if exc.code == "draft_expired":
            hours = services.settings.draft_expiry_hours
            message = (
                f"Not applied: drafts can be applied for {hours:g} hours and this one is older. "
                "Nothing was written; run the optimizer again on the plan as it is now."
            )
            ended = {"state": "ended", "level": "error", "message": message}
            return _panel(ended | _queries(view, limit, scope), status_code=409)
        if exc.code != "draft_stale":
            raise
        changed = await _changed_tasks(request, session, exc)
        context = {"state": "stale", "changed": changed, **_queries(view, limit, scope)}
        return _panel(context, status_code=409)
    context = {
        "state": "applied",
        "applied": _field(applied, "changes", 0),
        "revision": _field(applied, "revision", None),
        **_queries(view, limit, scope),
    }
    return _panel(context)


@page_route(action="plan.optimize")
async def discard(request: Request, session: PageSession) -> Response:
    limit, scope = await _options(request)
    view, _ = await _view(request)
    draft_id: int = request.path_params["draft_id"]
    await drafts.discard_draft(
        services=services_of(request), actor=session.actor, draft_id=draft_id
    )
    context = {
        "state": "options",
        "time_limits": TIME_LIMITS,
        "time_limit": limit,
        "scopes": SCOPES,
        "scope": scope,
        **_queries(view, limit, scope),
    }
    return _panel(context)


# --- pieces ----------------------------------------------------------------------------------


async def _run_panel(
    request: Request,
    session: PageSession,
    run_id: str,
    status: Any,
    view: BoardView,
    limit: int,
    scope: str,
) -> Response:
    queries = _queries(view, limit, scope)
    state = str(_field(status, "status", ""))
    if state in ("queued", "running"):
        poll_url = f"/board/optimizer/runs/{run_id}?{queries['rerun_query']}"
        progress = _field(status, "progress", None) or {}
        run = render.progress_model(run_id, state, progress, limit)
        # The worker went quiet, died, or there is none: said at once, not after the sweep.
        notice = _field(status, "notice", None)
        context = {"state": "running", "run": run, "poll_url": poll_url, "notice": notice}
        return _panel(context | queries)
    draft_id = _field(status, "draft_id", None)
    if draft_id is not None:
        return await _draft_panel(request, session, int(draft_id), view, queries)
    message = (
        _field(status, "message", None) or f"The optimizer run ended ({state}) without a draft."
    )
    level = "error" if state == "failed" else "info"
    return _panel({"state": "ended", "message": message, "level": level, **queries})


async def _draft_panel(
    request: Request, session: PageSession, draft_id: int, view: BoardView, queries: dict[str, str]
) -> Response:
    services = services_of(request)
    zone = ZoneInfo(await board_service.plant_timezone(services=services))
    diff = await drafts.draft_diff(services=services, actor=session.actor, draft_id=draft_id)
    operators, machines = await board_service.resources(services=services, actor=session.actor)
    names = render.Names(
        operators={o.id: o.name for o in operators}, equipment={m.id: m.name for m in machines}
    )
    model = render.diff_model(draft_id, diff, names, zone)
    return _panel({"state": "draft", "diff": model, "run": None, **queries})


async def _jobs_in_view(request: Request, session: PageSession, view: BoardView) -> list[int]:
    board = await board_service.load_board(
        services=services_of(request), actor=session.actor, scope=board_render.scope_of(view)
    )
    jobs = {bar.job_id for bar in board.bars} | {task.job_id for task in board.tray.tasks}
    return sorted(jobs)


async def _changed_tasks(
    request: Request, session: PageSession, exc: ServiceError
) -> list[dict[str, str]]:
    """The tasks a stale draft touches that changed since its run started, by name and by whom."""
    services, actor = services_of(request), session.actor
    details = exc.details if isinstance(exc.details, Mapping) else {}
    changed_by = details.get("changed_by") or {}
    found: list[dict[str, str]] = []
    for task_id in list(details.get("changed_task_ids") or ())[:20]:
        try:
            task = await tasks.get_task(services=services, actor=actor, task_id=int(task_id))
        except NotFound:
            found.append({"name": f"Task #{task_id} (deleted)", "job": "", "by": ""})
            continue
        user_id = changed_by.get(str(task_id), changed_by.get(task_id))
        by = await board_service.changed_by_name(services=services, user_id=user_id)
        found.append({"name": task["name"], "job": str(task.get("job_name") or ""), "by": by or ""})
    return found


def _field(found: Any, name: str, default: Any) -> Any:
    """A field of what the service answered, be it a mapping or an object."""
    if isinstance(found, Mapping):
        return found.get(name, default)
    return getattr(found, name, default)


routes = [
    Route("/board/optimizer", options, methods=["GET"]),
    Route("/board/optimizer/runs", start, methods=["POST"]),
    Route("/board/optimizer/runs/{run_id:str}", progress, methods=["GET"]),
    Route("/board/optimizer/runs/{run_id:str}/cancel", cancel, methods=["POST"]),
    Route("/board/optimizer/drafts/{draft_id:id}/apply", apply, methods=["POST"]),
    Route("/board/optimizer/drafts/{draft_id:id}/discard", discard, methods=["POST"]),
]
