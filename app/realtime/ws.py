"""`GET /board/ws`: the board's live feed over a WebSocket (the first choice of live.js).

Client → server, JSON text frames:

    {"type": "resume", "since": N, "view": {<BoardView query params>}}   first, and
                                           again whenever the page shows another view
    {"type": "drag", "task_id": X}  /  {"type": "drag_end"}                 presence
    {"type": "ping"}                                  answered with a heartbeat

Server → client, text frames of HTML: `hx-swap-oob` fragments (what htmx-ext-ws
swaps too), or the comment `<!--heartbeat-->` every `WS_HEARTBEAT_S` so proxies
keep the socket open and the client can tell a dead one.

Refusals are a close with 1008 (policy violation) after the handshake, so the
client can tell "not allowed" (stop) from "could not connect" (fall back).
1008 "signed out" too when the session ends while the socket is open
(logout elsewhere, the user disabled or given another role): live.js then
reloads, and the page goes to login.
1012 (service restart) when the server shuts down: reconnect elsewhere.
1013 (try again later) when the database is away as the client connects
(live.js retries the socket), and 1011 (internal error) for anything
unexpected: always a close frame, never a socket that just drops.

The admission, the close codes and the sending loop are every channel's
(transport.py); what is the board's own is its resume message and its reader.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.domain.bounds import MAX_ID
from app.realtime.feed import Feed
from app.realtime.live import Identity, Live, board_refusal, view_of
from app.realtime.presence import Seat
from app.realtime.transport import (
    POLICY_VIOLATION,
    RESUME_WAIT_S,
    UNSUPPORTED,
    Refused,
    exchange,
    serve_socket,
)
from app.services.board_view import BoardView
from app.services.context import Services

MAX_FRAME = 16 * 1024


async def board_socket(websocket: WebSocket) -> None:
    await serve_socket(
        websocket, channel="board", refusal=board_refusal, resume=_first_resume, serve=_serve
    )


async def _first_resume(websocket: WebSocket, services: Services) -> tuple[int, BoardView]:
    try:
        async with asyncio.timeout(RESUME_WAIT_S):
            message = await _receive(websocket)
    except TimeoutError:
        raise Refused(POLICY_VIOLATION, "expected a resume message") from None
    return await _resume(message, services)


async def _receive(websocket: WebSocket) -> dict[str, Any]:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if not isinstance(text, str) or len(text) > MAX_FRAME:
        raise Refused(UNSUPPORTED, "send JSON text frames")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(UNSUPPORTED, "send JSON text frames") from None
    if not isinstance(data, dict):
        raise Refused(UNSUPPORTED, "send JSON objects")
    return data


async def _resume(message: dict[str, Any], services: Services) -> tuple[int, BoardView]:
    since = message.get("since")
    view = message.get("view") or {}
    if (
        message.get("type") != "resume"
        or not isinstance(since, int)
        or isinstance(since, bool)
        or not 0 <= since <= MAX_ID
        or not isinstance(view, dict)
    ):
        raise Refused(POLICY_VIOLATION, 'expected {"type": "resume", "since": N, "view": {...}}')
    return since, await view_of({str(k): str(v) for k, v in view.items()}, services)


async def _serve(
    websocket: WebSocket, live: Live, identity: Identity, resumed: tuple[int, BoardView]
) -> None:
    since, view = resumed
    feed = live.feed(identity, view, since)
    ticket = live.watch(identity, feed.wake)
    async with live.attending(identity, feed, since) as seat:
        pong = asyncio.Event()
        reading = _read(websocket, feed, seat, pong)
        await exchange(websocket, feed, reading, live=live, ticket=ticket, asked=pong)


async def _read(websocket: WebSocket, feed: Feed, seat: Seat, pong: asyncio.Event) -> None:
    while True:
        message = await _receive(websocket)
        kind = message.get("type")
        if kind == "resume":
            feed.resume(*await _resume(message, feed.services))
        elif kind == "drag" and _task_id(message.get("task_id")) is not None:
            seat.drag(message["task_id"])
        elif kind == "drag_end":
            seat.drag_end()
        elif kind == "ping":
            pong.set()
            feed.wake.set()
        # Anything else is ignored: a newer client may know more types.


def _task_id(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None


routes: list[BaseRoute] = [WebSocketRoute("/board/ws", board_socket)]
