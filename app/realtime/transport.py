"""The one way a live feed reaches a browser: WebSocket, SSE and polling, for any feed.

    board (ws.py, sse.py)   operator (operator_feed.py)   wall (web/wall_pages.py)
            │                        │                          │
            └──────── admission ─────┴──────────────────────────┘ (401 / 403 / 400, or 1008)
                          │
           WebSocket: serve_socket ─ resume ─ exchange(reader ⇄ send_updates)
           SSE:       update_stream ─ wait on feed.wake ─ sse_event(update) / heartbeat
           polling:   each feed's own catch-up, admitted the same way

A feed (feeds.Feed) says when there is something to send (`wake`) and what
(`next_updates()`); the transport owns everything else: who may connect,
heartbeats, how long a stream lives, closing when the server stops or the
session ends, and the close codes a client acts on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.db.session import database_unavailable
from app.http_errors import error_response
from app.observability import WEBSOCKETS
from app.realtime.eager import Pusher
from app.realtime.feeds import Feed, Update
from app.realtime.live import Identity, Live, identify, live_of, since_of
from app.realtime.racing import first_to_end
from app.realtime.session_watch import Ticket
from app.services.context import Actor, Services

log = logging.getLogger(__name__)

R = TypeVar("R")

# Why an actor may not follow a channel (None: it may).
Refusal = Callable[[Actor], str | None]

# --- SSE: a comment every SSE_HEARTBEAT_S keeps proxies from closing an idle stream; a
# stream also ends after MAX_STREAM_S (the client reconnects and resumes), which bounds
# how long one connection can hold a server that is being drained.
SSE_HEARTBEAT_S = 15.0
MAX_STREAM_S = 300.0
# How soon EventSource reconnects after the stream ends (milliseconds).
RETRY_MS = 1000

# --- WebSocket
HEARTBEAT = "<!--heartbeat-->"
WS_HEARTBEAT_S = 25.0
# The client must say where it is this soon after connecting.
RESUME_WAIT_S = 10.0
POLICY_VIOLATION = 1008
UNSUPPORTED = 1003
SERVICE_RESTART = 1012
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
# The close reason when the connection's session ended (logout, disable, role change).
SIGNED_OUT = "signed out"


async def woken(wake: asyncio.Event, *, within: float) -> bool:
    """Wait for `wake`; False if it stayed quiet for `within` seconds (time for a heartbeat)."""
    try:
        async with asyncio.timeout(within):
            await wake.wait()
    except TimeoutError:
        return False
    return True


# --- SSE and polling -----------------------------------------------------------------------------


async def admit_request(
    conn: HTTPConnection, refusal: Refusal
) -> tuple[Live, Identity, int] | Response:
    """Who follows a stream or polls, and from which revision; else the error to answer."""
    live = live_of(conn)
    identity = await identify(conn, live.services)
    if identity is None:
        return error_response(401, "unauthorized", "sign in first", {})
    refused = refusal(identity.actor)
    if refused is not None:
        return error_response(403, "forbidden", refused, {})
    # On an automatic reconnect the browser says where it got to.
    since = since_of(conn.headers.get("last-event-id") or conn.query_params.get("since"))
    if since is None:
        return error_response(400, "bad_since", "since must be a revision (0 or more)", {})
    return live, identity, since


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        # No caching, and no buffering by nginx: each event must leave at once.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def update_stream(
    feed: Feed, *, live: Live, ticket: Ticket, following: AbstractAsyncContextManager[object]
) -> StreamingResponse:
    """`feed`'s updates as an event stream, while `following` (its subscription) holds.

    It ends when the server stops, at once when the session ends (EventSource
    reconnects, meets a 401, and the page goes to login), or after MAX_STREAM_S.
    """
    return event_stream(_update_events(feed, live, ticket, following))


async def _update_events(
    feed: Feed, live: Live, ticket: Ticket, following: AbstractAsyncContextManager[object]
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    async with following:
        ends = time.monotonic() + MAX_STREAM_S
        while not live.stopping and not ticket.ended and time.monotonic() < ends:
            if not await woken(feed.wake, within=SSE_HEARTBEAT_S):
                yield ": heartbeat\n\n"
                continue
            if live.stopping or ticket.ended:
                break
            for update in await feed.next_updates():
                yield sse_event(update)


def sse_event(update: Update) -> str:
    """One event; an update that moves the client's resume point carries `id: <revision>`,
    so EventSource's automatic reconnect sends `Last-Event-ID` and resumes exactly there."""
    lines = [f"id: {update.revision}"] if update.revision is not None else []
    # A data line must not contain a newline; the client joins them back with "\n".
    lines += [f"data: {line}" for line in update.html.replace("\r", "").split("\n")]
    return "\n".join(lines) + "\n\n"


# --- WebSocket -----------------------------------------------------------------------------------


class Refused(Exception):
    """Close the socket with `code` and `reason` (after the handshake, so the client can
    tell "not allowed" from "could not connect")."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def serve_socket(
    websocket: WebSocket,
    *,
    channel: str,
    refusal: Refusal,
    resume: Callable[[WebSocket, Services], Awaitable[R]],
    serve: Callable[[WebSocket, Live, Identity, R], Awaitable[None]],
) -> None:
    """A live socket from handshake to close: admitted, resumed (the client's first
    message, read by `resume`), then `serve`d; whatever ends it, a close frame."""
    live = live_of(websocket)
    identity = await identify_or_refuse(websocket, live, channel)
    if identity is False:
        return
    try:
        _admit(websocket, identity, refusal)
        assert identity is not None
        resumed = await resume(websocket, live.services)
        WEBSOCKETS.inc()
        try:
            await serve(websocket, live, identity, resumed)
        finally:
            WEBSOCKETS.dec()
    except Refused as refused:
        await close(websocket, refused.code, refused.reason)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("%s socket failed", channel)
        await close(websocket, INTERNAL_ERROR, "internal error")


async def identify_or_refuse(
    websocket: WebSocket, live: Live, channel: str
) -> Identity | Literal[False] | None:
    """Accept the socket and say who is on it; False if it was closed instead.

    Who it is comes from the database (a token's display name, a page session):
    while the database is away the client is told to try again later.
    """
    try:
        identity = await identify(websocket, live.services)
    except Exception as exc:
        await websocket.accept()
        if not database_unavailable(exc):
            log.exception("%s socket: could not identify the client", channel)
        await close(websocket, TRY_AGAIN_LATER, "the database is unavailable; try again")
        return False
    await websocket.accept()
    return identity


def _admit(websocket: WebSocket, identity: Identity | None, refusal: Refusal) -> None:
    if identity is None:
        raise Refused(POLICY_VIOLATION, "sign in first")
    if identity.by_cookie and not same_origin(websocket):
        # The browser sends the cookie with any site's WebSocket: refuse other sites.
        raise Refused(POLICY_VIOLATION, "cross-site connection refused")
    refused = refusal(identity.actor)
    if refused is not None:
        raise Refused(POLICY_VIOLATION, refused)


def same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    return bool(origin and host) and urlsplit(origin).netloc.lower() == str(host).lower()


async def exchange(
    websocket: WebSocket,
    feed: Feed,
    read: Awaitable[None],
    *,
    live: Live,
    ticket: Ticket,
    asked: asyncio.Event | None = None,
    answer_every_wake: bool = False,
) -> None:
    """Read the client (`read`) and send `feed`'s updates, until either ends.

    A heartbeat goes out when the socket was quiet for WS_HEARTBEAT_S or the
    client `asked` (a ping); with `answer_every_wake`, instead whenever a
    wake-up had nothing else to send (each client message is a ping then).
    """
    pusher = Pusher(websocket)
    if hasattr(feed, "push"):
        feed.push = pusher  # a board's feed sends what it has ready at once (eager.py)
    send = _send_updates(websocket, feed, live, ticket, asked, answer_every_wake, pusher)
    await first_to_end(read, send)


async def _send_updates(
    websocket: WebSocket,
    feed: Feed,
    live: Live,
    ticket: Ticket,
    asked: asyncio.Event | None,
    answer_every_wake: bool,
    pusher: Pusher,
) -> None:
    while True:
        if ticket.ended:
            raise Refused(POLICY_VIOLATION, SIGNED_OUT)
        pusher.idle = True
        try:
            quiet = not await woken(feed.wake, within=WS_HEARTBEAT_S)
        finally:
            pusher.idle = False
        await pusher.settled()  # a push that had to wait goes out before anything else
        if live.stopping:
            raise Refused(SERVICE_RESTART, "server restarting")
        if ticket.ended:
            raise Refused(POLICY_VIOLATION, SIGNED_OUT)
        updates = await feed.next_updates()
        for update in updates:
            await websocket.send_text(update.html)
        if answer_every_wake:
            if not updates:
                await websocket.send_text(HEARTBEAT)
        elif quiet or (asked is not None and asked.is_set()):
            if asked is not None:
                asked.clear()
            await websocket.send_text(HEARTBEAT)


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with suppress(RuntimeError, WebSocketDisconnect, OSError):
            await websocket.close(code, reason)
