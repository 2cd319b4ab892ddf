"""The board's live feed where WebSockets fail: `GET /board/sse`, then `GET /board/poll`.

Both take `since=N` and the board's view parameters (`start`, `zoom`, `rows`,
`job`, `skill`, `type`), and answer with the same `hx-swap-oob` fragments as
the socket.

SSE: one event per update, `data:` lines of HTML; an update that moves the
client's resume point carries `id: <revision>`, so EventSource's automatic
reconnect sends `Last-Event-ID` and resumes exactly there. A comment every
`SSE_HEARTBEAT_S` keeps proxies from closing an idle stream. A stream also ends
after `MAX_STREAM_S` (the client reconnects and resumes): that bounds how long
one connection can hold a server that is being drained (transport.py: the
same for every channel's stream).

A stream ends at once when its session ends (logout elsewhere, the user
disabled or given another role): EventSource reconnects, meets a 401, and
the page goes to login.

Polling: one catch-up per request (live.js asks every 3 s), plus `#presence`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from app.realtime.feed import Feed
from app.realtime.live import Identity, Live, board_refusal, view_of
from app.realtime.transport import admit_request, update_stream


async def _admitted(request: Request) -> tuple[Live, Identity, int, Feed] | Response:
    admitted = await admit_request(request, board_refusal)
    if isinstance(admitted, Response):
        return admitted
    live, identity, since = admitted
    feed = live.feed(identity, await view_of(request.query_params, live.services), since)
    return live, identity, since, feed


async def board_stream(request: Request) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    live, identity, since, feed = admitted
    ticket = live.watch(identity, feed.wake)
    following = live.attending(identity, feed, since)
    return update_stream(feed, live=live, ticket=ticket, following=following)


async def board_poll(request: Request) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    live, identity, since, feed = admitted
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
