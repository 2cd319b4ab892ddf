"""The board's live feed where WebSockets fail: `GET /board/sse`, then `GET /board/poll`.

Both take `since=N` and the board's view parameters (`start`, `zoom`, `rows`,
`job`, `skill`, `type`), and answer with the same `hx-swap-oob` fragments as
the socket.

SSE: one event per update, `data:` lines of HTML; an update that moves the
client's resume point carries `id: <revision>`, so EventSource's automatic
reconnect sends `Last-Event-ID` and resumes exactly there. A comment every
`HEARTBEAT_S` keeps proxies from closing an idle stream. A stream also ends
after `MAX_STREAM_S` (the client reconnects and resumes): that bounds how long
one connection can hold a server that is being drained.

A stream ends at once when its session ends (logout elsewhere, the user
disabled or given another role): EventSource reconnects, meets a 401, and
the page goes to login.

Polling: one catch-up per request (live.js asks every 3 s), plus `#presence`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app.http_errors import error_response
from app.realtime.feed import Feed, Update
from app.realtime.live import Identity, Live, identify, live_of, since_of, view_of
from app.services.access import allowed

HEARTBEAT_S = 15.0
MAX_STREAM_S = 300.0
# How soon EventSource reconnects after the stream ends (milliseconds).
RETRY_MS = 1000


async def _admitted(request: Request) -> tuple[Live, Identity, int] | Response:
    live = live_of(request)
    identity = await identify(request, live.services)
    if identity is None:
        return error_response(401, "unauthorized", "sign in first", {})
    if not allowed(identity.actor, "plan.read"):
        message = f"role {identity.actor.role!r} may not follow the board"
        return error_response(403, "forbidden", message, {})
    # On an automatic reconnect the browser says where it got to.
    raw = request.headers.get("last-event-id") or request.query_params.get("since")
    since = since_of(raw)
    if since is None:
        return error_response(400, "bad_since", "since must be a revision (0 or more)", {})
    return live, identity, since


async def board_stream(request: Request) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    live, identity, since = admitted
    feed = live.feed(identity, await view_of(request.query_params, live.services), since)
    return StreamingResponse(
        _events(live, identity, feed, since),
        media_type="text/event-stream",
        # No caching, and no buffering by nginx: each event must leave at once.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(live: Live, identity: Identity, feed: Feed, since: int) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    schedule_id = await live.services.live_schedule_id()
    ticket = live.watch(identity, feed.wake)
    with live.presence.seat(
        schedule_id,
        user_id=identity.actor.user_id or 0,
        name=identity.name,
        on_change=feed.extras_changed,
    ) as seat:
        feed.extras = lambda: seat.render(me=identity.actor.user_id)
        feed.extras_changed()
        async with feed.listening():
            feed.resume(since, feed.view)
            ends = time.monotonic() + MAX_STREAM_S
            while not live.stopping and not ticket.ended and time.monotonic() < ends:
                try:
                    async with asyncio.timeout(HEARTBEAT_S):
                        await feed.wake.wait()
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if live.stopping or ticket.ended:
                    break
                for update in await feed.next_updates():
                    yield sse_event(update)


def sse_event(update: Update) -> str:
    lines = [f"id: {update.revision}"] if update.revision is not None else []
    # A data line must not contain a newline; the client joins them back with "\n".
    lines += [f"data: {line}" for line in update.html.replace("\r", "").split("\n")]
    return "\n".join(lines) + "\n\n"


async def board_poll(request: Request) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    live, identity, since = admitted
    feed = live.feed(identity, await view_of(request.query_params, live.services), since)
    update = await feed.catch_up(since)
    schedule_id = await live.services.live_schedule_id()
    if identity.actor.user_id is not None:
        live.presence.visit(schedule_id, user_id=identity.actor.user_id, name=identity.name)
    presence = live.presence.render(schedule_id, me=identity.actor.user_id)
    body = (update.html if update else "") + presence
    headers = {"Cache-Control": "no-store"}
    if update is not None and update.revision is not None:
        headers["X-Takt-Revision"] = str(update.revision)
    return HTMLResponse(body, headers=headers)


routes: list[BaseRoute] = [
    Route("/board/sse", board_stream, methods=["GET"]),
    Route("/board/poll", board_poll, methods=["GET"]),
]
