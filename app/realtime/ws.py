"""`GET /board/ws`: the board's live feed over a WebSocket (the first choice of live.js).

Client → server, JSON text frames:

    {"type": "resume", "since": N, "view": {<BoardView query params>}}   first, and
                                           again whenever the page shows another view
    {"type": "drag", "task_id": X}  /  {"type": "drag_end"}                 presence
    {"type": "ping"}                                  answered with a heartbeat

Server → client, text frames of HTML: `hx-swap-oob` fragments (what htmx-ext-ws
swaps too), or the comment `<!--heartbeat-->` every `HEARTBEAT_S` so proxies
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
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.db.session import database_unavailable
from app.domain.bounds import MAX_ID
from app.observability import WEBSOCKETS
from app.realtime.feed import Feed
from app.realtime.live import Identity, Live, identify, live_of, view_of
from app.realtime.presence import Seat
from app.realtime.session_watch import Ticket
from app.services.access import allowed
from app.services.board_view import BoardView
from app.services.context import Services

log = logging.getLogger(__name__)

HEARTBEAT = "<!--heartbeat-->"
HEARTBEAT_S = 25.0
# The client must say where it is this soon after connecting.
RESUME_WAIT_S = 10.0
MAX_FRAME = 16 * 1024
POLICY_VIOLATION = 1008
UNSUPPORTED = 1003
SERVICE_RESTART = 1012
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
# The close reason when the connection's session ended (logout, disable, role change).
SIGNED_OUT = "signed out"


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def board_socket(websocket: WebSocket) -> None:
    live = live_of(websocket)
    identity = await identify_or_refuse(websocket, live)
    if identity is False:
        return
    try:
        _admit(websocket, identity)
        assert identity is not None
        since, view = await _resume(await _first_message(websocket), live.services)
        WEBSOCKETS.inc()
        try:
            await _serve(websocket, live, identity, since, view)
        finally:
            WEBSOCKETS.dec()
    except Refused as refusal:
        await _close(websocket, refusal.code, refusal.reason)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("board socket failed")
        await _close(websocket, INTERNAL_ERROR, "internal error")


async def identify_or_refuse(websocket: WebSocket, live: Live) -> Identity | Literal[False] | None:
    """Accept the socket and say who is on it; False if it was closed instead.

    Who it is comes from the database (a token's display name, a page session):
    while the database is away the client is told to try again later.
    """
    try:
        identity = await identify(websocket, live.services)
    except Exception as exc:
        await websocket.accept()
        if not database_unavailable(exc):
            log.exception("board socket: could not identify the client")
        await _close(websocket, TRY_AGAIN_LATER, "the database is unavailable; try again")
        return False
    await websocket.accept()
    return identity


def _admit(websocket: WebSocket, identity: Identity | None) -> None:
    if identity is None:
        raise Refused(POLICY_VIOLATION, "sign in first")
    if identity.by_cookie and not same_origin(websocket):
        # The browser sends the cookie with any site's WebSocket: refuse other sites.
        raise Refused(POLICY_VIOLATION, "cross-site connection refused")
    if not allowed(identity.actor, "plan.read"):
        raise Refused(POLICY_VIOLATION, f"role {identity.actor.role!r} may not follow the board")


def same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    return bool(origin and host) and urlsplit(origin).netloc.lower() == str(host).lower()


async def _first_message(websocket: WebSocket) -> dict[str, Any]:
    try:
        async with asyncio.timeout(RESUME_WAIT_S):
            return await _receive(websocket)
    except TimeoutError:
        raise Refused(POLICY_VIOLATION, "expected a resume message") from None


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
    websocket: WebSocket, live: Live, identity: Identity, since: int, view: BoardView
) -> None:
    feed = live.feed(identity, view, since)
    ticket = live.watch(identity, feed.wake)
    schedule_id = await live.services.live_schedule_id()
    with live.presence.seat(
        schedule_id,
        user_id=identity.actor.user_id or 0,
        name=identity.name,
        on_change=feed.extras_changed,
    ) as seat:
        feed.extras = lambda: seat.render(me=identity.actor.user_id)
        feed.extras_changed()
        async with feed.listening():
            feed.resume(since, view)
            pong = asyncio.Event()
            tasks = [
                asyncio.create_task(_read(websocket, feed, seat, pong)),
                asyncio.create_task(_write(websocket, live, feed, pong, ticket)),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()  # re-raise Refused / WebSocketDisconnect / a real error


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


async def _write(
    websocket: WebSocket, live: Live, feed: Feed, pong: asyncio.Event, ticket: Ticket
) -> None:
    while True:
        if ticket.ended:
            raise Refused(POLICY_VIOLATION, SIGNED_OUT)
        quiet = False
        try:
            async with asyncio.timeout(HEARTBEAT_S):
                await feed.wake.wait()
        except TimeoutError:
            quiet = True
        if live.stopping:
            raise Refused(SERVICE_RESTART, "server restarting")
        if ticket.ended:
            raise Refused(POLICY_VIOLATION, SIGNED_OUT)
        for update in await feed.next_updates():
            await websocket.send_text(update.html)
        if quiet or pong.is_set():
            pong.clear()
            await websocket.send_text(HEARTBEAT)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with suppress(RuntimeError, WebSocketDisconnect, OSError):
            await websocket.close(code, reason)


routes: list[BaseRoute] = [WebSocketRoute("/board/ws", board_socket)]
