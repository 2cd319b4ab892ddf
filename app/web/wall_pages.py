"""The managers' dashboard wall: the page and its live updates.

    GET /wall                       the page (reports.read: managers, schedulers, admins;
                                    operators are refused); each opening is audited
    GET /wall/sse                   text/event-stream: the wall's sections as hx-swap-oob
                                    HTML whenever the figures change, the clock every
                                    minute, a heartbeat comment every SSE_HEARTBEAT_S;
                                    `id: <revision>`
    GET /wall/poll?since=N&frame=K  the same sections (only the clock when K is current),
                                    for walls whose event stream fails

Every event is a complete state, never a diff: the first event of any
(re)connect is the whole wall as it is now, so whatever revision the client
says it had (Last-Event-ID or `since`), it is up to date after one event.

A wall is left open for days, longer than a session lasts: while it keeps
asking, a session older than `RENEW_AFTER` becomes a device session with a
fresh expiry and cookie (same CSRF token), as long as its record is live:
ending it (from another browser, `takt sessions end`, disabling the user)
signs the wall out, and its open stream closes at once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app import clock
from app.db import tables
from app.http_errors import error_response
from app.realtime.feeds import Update
from app.realtime.live import Identity, live_of, since_of
from app.realtime.session_watch import Ticket
from app.realtime.transport import MAX_STREAM_S, SSE_HEARTBEAT_S, event_stream, sse_event
from app.realtime.wall_feed import WallFeed, WallFrame
from app.services.sessions import renew_device_session
from app.services.wall import open_wall
from app.web.session import (
    SESSION_COOKIE,
    SESSION_HOURS,
    PageSession,
    encode_session,
    page_route,
    page_session,
    services_of,
    start_session,
)
from app.web.templates import render
from app.web.wall_render import page_context

RETRY_MS = 2000
RENEW_AFTER = timedelta(hours=SESSION_HOURS / 2)


def wall_of(request: Request) -> WallFeed:
    feed: WallFeed = request.app.state.wall
    return feed


@page_route(action="reports.read")
async def wall_page(request: Request, session: PageSession) -> Response:
    feed = wall_of(request)
    await open_wall(services=services_of(request), actor=session.actor, cache=feed.cache)
    frame = await feed.latest()
    context = page_context(frame.figures, clock.now()) | {"session": session}
    response = render(request, "wall/page.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _admitted(request: Request) -> PageSession | Response:
    session = await page_session(request)
    if session is None:
        return error_response(401, "unauthorized", "sign in first", {})
    if not session.may("reports.read"):
        message = f"role {session.actor.role!r} may not see the wall"
        return error_response(403, "forbidden", message, {})
    return session


async def wall_stream(request: Request) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    feed = wall_of(request)
    await feed.latest()  # fails here (500) rather than inside the stream
    identity = Identity(
        admitted.actor, admitted.display_name, by_cookie=True, session_id=admitted.session_id
    )
    ticket = live_of(request).watch(identity)
    response = event_stream(_events(feed, ticket))
    await keep_signed_in(request, admitted, response)
    return response


async def _events(feed: WallFeed, ticket: Ticket) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    async with feed.listening():
        frame = await feed.latest()
        yield _event(frame, full=True)
        shown, ends = frame.key, time.monotonic() + MAX_STREAM_S
        while not feed.closing and not ticket.ended and time.monotonic() < ends:
            # The stream ends at once when its session does (the wall was signed out).
            next_frame = await ticket.unless_ended(
                feed.next_frame(frame.number, within=SSE_HEARTBEAT_S)
            )
            if feed.closing or ticket.ended:
                break
            if next_frame is None:
                yield ": heartbeat\n\n"
                continue
            frame = next_frame
            yield _event(frame, full=frame.key != shown)
            shown = frame.key


def _event(frame: WallFrame, *, full: bool) -> str:
    html = frame.html.sections if full else frame.html.status
    return sse_event(Update(html, frame.revision))


async def wall_poll(request: Request) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    since = since_of(request.query_params.get("since"))
    if request.query_params.get("since") is not None and since is None:
        return error_response(400, "bad_since", "since must be a revision (0 or more)", {})
    frame = await wall_of(request).latest()
    known = request.query_params.get("frame")
    full = known != frame.key if known is not None else since != frame.revision
    html = frame.html.sections if full else frame.html.status
    headers = {"Cache-Control": "no-store", "X-Takt-Revision": str(frame.revision)}
    response = HTMLResponse(html, headers=headers)
    await keep_signed_in(request, admitted, response)
    return response


async def keep_signed_in(request: Request, session: PageSession, response: Response) -> None:
    """Keep a wall that is still being watched signed in: its record becomes a device
    session with a fresh expiry, and the cookie is renewed (same CSRF token).

    Only while the record is live: a wall whose session was ended (logout,
    `takt sessions end`, the user disabled or given another role) stays out.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token or session.actor.user_id is None:
        return
    # page_session has verified the token already; only its age is read here.
    issued = jwt.decode(token, options={"verify_signature": False}).get("iat")
    if (
        not isinstance(issued, int)
        or clock.now().timestamp() - issued < RENEW_AFTER.total_seconds()
    ):
        return
    services = services_of(request)
    async with services.db.read() as db:
        user = await db.get(tables.User, session.actor.user_id)
    if user is None or not user.active or user.role != session.actor.role:
        return
    record = await renew_device_session(services=services, session_id=session.session_id)
    if record is None:
        return
    fresh = encode_session(
        settings=services.settings, user=user, session_id=record.id, csrf=session.csrf
    )
    start_session(response, request, fresh)


routes = [
    Route("/wall", wall_page, methods=["GET"]),
    Route("/wall/sse", wall_stream, methods=["GET"]),
    Route("/wall/poll", wall_poll, methods=["GET"]),
]
