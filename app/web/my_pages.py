"""The operator's phone screen, "My tasks".

    GET /my            the page (operators; everyone else goes to the board)
    GET /my/list       `#my-work` again (after an action, or when the page comes back online)
    GET /my/session    {"csrf": ...}: the token for queued actions replayed from a cached page
    GET /my/sw.js      the service worker, allowed to control /my
    /my/ws, /my/sse, /my/poll   the live channel (app/realtime/operator_feed.py)

Actions (start, pause, complete, report breakdown) go to the JSON API from
static/my.js, authenticated by the session cookie plus its CSRF token and
made idempotent by an `Idempotency-Key` per action, so a replay from the
offline queue is applied once.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.services import my_tasks
from app.web.my_render import work_context
from app.web.session import PageSession, page_route, services_of
from app.web.templates import render

SERVICE_WORKER = Path(__file__).resolve().parents[2] / "static" / "sw.js"


@page_route(action="own_tasks.read")
async def my_page(request: Request, session: PageSession) -> Response:
    if session.actor.role != "operator":
        return RedirectResponse("/board", status_code=303)
    work = await my_tasks.my_work(services=services_of(request), actor=session.actor)
    response = render(request, "my/page.html", work_context(work) | {"session": session})
    # The service worker keeps its own copy for offline use; browsers' caches must not.
    response.headers["Cache-Control"] = "no-store"
    return response


@page_route(action="own_tasks.read")
async def my_list(request: Request, session: PageSession) -> Response:
    work = await my_tasks.my_work(services=services_of(request), actor=session.actor)
    context = work_context(work) | {"session": session, "oob": True}
    response = render(request, "my/page.html", context, block_names=["work", "revision"])
    response.headers["Cache-Control"] = "no-store"
    return response


@page_route(action="own_tasks.read")
async def my_session(request: Request, session: PageSession) -> Response:
    return JSONResponse({"csrf": session.csrf}, headers={"Cache-Control": "no-store"})


async def service_worker(request: Request) -> Response:
    return FileResponse(
        SERVICE_WORKER,
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/my", "Cache-Control": "no-cache"},
    )


routes = [
    Route("/my", my_page, methods=["GET"]),
    Route("/my/list", my_list, methods=["GET"]),
    Route("/my/session", my_session, methods=["GET"]),
    Route("/my/sw.js", service_worker, methods=["GET"]),
]
