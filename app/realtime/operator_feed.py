"""An operator's live channel: `/my/ws`, `/my/sse`, `/my/poll` carry their own tasks only.

The board's feed needs plan.read and renders any task in a view; this one
never renders anything but the operator's own list (app/services/my_tasks.py
reads it with `operator_id = <theirs>`), so no message about another
operator's task can leak into it: at worst such a message would cost a
re-render of the operator's unchanged list, and an unchanged list is not sent.

    hub message ─► concerns(message)?   a task on the list, its job or machine,
        │                               the operator themself (a task assigned
        │                               to them), a gap in revisions, a resync
        ▼
    render the own list ─► changed since last sent? ─► send (#my-work + #my-revision)

On (re)connect the client says the revision its page shows (`since`); if the
plan has moved on, it gets its list as it is now. The same protocol as the
board's (static/live.js drives both): a resume message on the socket, `since`
or Last-Event-ID on the stream, `since` on a poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app import tracing
from app.http_errors import error_response
from app.observability import WEBSOCKETS
from app.realtime.feed import RESUBSCRIBE_DELAYS_S, Update, render_failed, retry_delay
from app.realtime.hub import Message
from app.realtime.live import Identity, identify, live_of, since_of
from app.realtime.session_watch import Ticket
from app.realtime.sse import HEARTBEAT_S as SSE_HEARTBEAT_S, MAX_STREAM_S, RETRY_MS, sse_event
from app.realtime.ws import (
    HEARTBEAT,
    HEARTBEAT_S,
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    RESUME_WAIT_S,
    SERVICE_RESTART,
    SIGNED_OUT,
    Refused,
    identify_or_refuse,
    same_origin,
)
from app.services.access import allowed
from app.services.context import Actor, Services
from app.services.write_path import schedule_channel

log = logging.getLogger(__name__)

MAX_FRAME = 4 * 1024


@dataclass(frozen=True, slots=True)
class OwnList:
    """An operator's list as rendered, and what it was made of."""

    html: str  # OOB fragments: the list and the revision it shows
    key: str  # the list alone (what decides whether anything changed)
    revision: int
    task_ids: frozenset[int]
    equipment_ids: frozenset[int]
    job_ids: frozenset[int]


RenderOwnList = Callable[[Services, Actor], Awaitable[OwnList]]


def _ids(entities: dict[str, Any], name: str) -> set[int]:
    found = entities.get(name) or []
    return {i for i in found if isinstance(i, int)} if isinstance(found, list) else set()


class OperatorFeed:
    """One operator connection's view of the change stream."""

    def __init__(
        self, *, services: Services, actor: Actor, render: RenderOwnList, since: int
    ) -> None:
        self.services = services
        self.actor = actor
        self.render = render
        self.since = since
        self.wake = asyncio.Event()
        self.shown: OwnList | None = None
        self._heard = since
        self._due = True
        self._failures = 0
        self._subscribed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._trace: dict[str, str] = {}

    def concerns(self, message: Message) -> bool:
        revision, entities = message.get("revision"), message.get("entities")
        if message.get("kind") == "resync" or not isinstance(revision, int):
            return True
        gap = revision > self._heard + 1
        self._heard = max(self._heard, revision)
        if gap or not isinstance(entities, dict) or self.shown is None:
            # A message we never got may have been about us: look again.
            return True
        shown = self.shown
        return bool(
            _ids(entities, "tasks") & shown.task_ids
            or _ids(entities, "equipment") & shown.equipment_ids
            or _ids(entities, "jobs") & shown.job_ids
            or self.actor.operator_id in _ids(entities, "operators")
        )

    def note(self, message: Message) -> None:
        if self.concerns(message):
            self._due = True
            self._trace = tracing.carried(message)  # the newest change's trace (app/tracing.py)
            self.wake.set()

    async def next_update(self) -> Update | None:
        """The list, if it changed since it was last sent (or since the page's revision)."""
        self.wake.clear()
        if not self._due:
            return None
        self._due = False
        trace, self._trace = self._trace, {}
        try:
            with tracing.continued("my tasks push", trace):
                own = await self.render(self.services, self.actor)
        except Exception as exc:
            # The database is away: this update waits, the connection stays (feed.py).
            self._due = True
            self._failures += 1
            asyncio.get_running_loop().call_later(retry_delay(self._failures - 1), self.wake.set)
            render_failed(exc)
            return None
        self._failures = 0
        previous, self.shown = self.shown, own
        self._heard = max(self._heard, own.revision)
        if previous is None:
            return Update(own.html, own.revision) if own.revision > self.since else None
        if own.key == previous.key:
            return None
        return Update(own.html, own.revision)

    async def listen(self) -> None:
        """Feed hub messages into `note()` until cancelled; resubscribe if the hub fails us."""
        channel = schedule_channel(await self.services.live_schedule_id())
        attempt = 0
        while True:
            try:
                async with self.services.hub.subscribe(channel) as subscription:
                    if attempt:
                        self.note({"kind": "resync"})
                    self._subscribed.set()
                    attempt = 0
                    async for message in subscription:
                        self.note(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("operator feed: subscription to %s failed", channel)
                self._subscribed.set()
                await asyncio.sleep(RESUBSCRIBE_DELAYS_S[min(attempt, 4)])
                attempt += 1

    async def __aenter__(self) -> OperatorFeed:
        """Subscribed from here on, so nothing committed later is missed."""
        self._reader = asyncio.create_task(self.listen())
        await self._subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])


def may_follow(actor: Actor) -> bool:
    return allowed(actor, "own_tasks.read") and actor.operator_id is not None


# --- WebSocket ---------------------------------------------------------------------------------


def routes(render: RenderOwnList) -> list[BaseRoute]:
    """The channel's routes, rendering with `render` (app/web/my_render.py)."""

    async def my_socket(websocket: WebSocket) -> None:
        await _socket(websocket, render)

    async def my_stream(request: Request) -> Response:
        return await _stream(request, render)

    async def my_poll(request: Request) -> Response:
        return await _poll(request, render)

    return [
        WebSocketRoute("/my/ws", my_socket),
        Route("/my/sse", my_stream, methods=["GET"]),
        Route("/my/poll", my_poll, methods=["GET"]),
    ]


async def _socket(websocket: WebSocket, render: RenderOwnList) -> None:
    live = live_of(websocket)
    identity = await identify_or_refuse(websocket, live)
    if identity is False:
        return
    try:
        if identity is None:
            raise Refused(POLICY_VIOLATION, "sign in first")
        if identity.by_cookie and not same_origin(websocket):
            raise Refused(POLICY_VIOLATION, "cross-site connection refused")
        if not may_follow(identity.actor):
            raise Refused(POLICY_VIOLATION, "only operators have a My tasks channel")
        since = await _resume(websocket)
        feed = OperatorFeed(
            services=live.services, actor=identity.actor, render=render, since=since
        )
        live.follow_stop(feed.wake)
        ticket = live.watch(identity, feed.wake)
        WEBSOCKETS.inc()
        try:
            async with feed:
                await _serve(websocket, feed, lambda: live.stopping, ticket)
        finally:
            WEBSOCKETS.dec()
    except Refused as refusal:
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with suppress(RuntimeError, WebSocketDisconnect, OSError):
                await websocket.close(refusal.code, refusal.reason)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("operator socket failed")
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with suppress(RuntimeError, WebSocketDisconnect, OSError):
                await websocket.close(INTERNAL_ERROR, "internal error")


async def _resume(websocket: WebSocket) -> int:
    try:
        async with asyncio.timeout(RESUME_WAIT_S):
            message = await websocket.receive_json()
    except (TimeoutError, ValueError, KeyError):
        raise Refused(POLICY_VIOLATION, 'expected {"type": "resume", "since": N}') from None
    since = message.get("since") if isinstance(message, dict) else None
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise Refused(POLICY_VIOLATION, 'expected {"type": "resume", "since": N}')
    return since


async def _serve(
    websocket: WebSocket, feed: OperatorFeed, stopping: Callable[[], bool], ticket: Ticket
) -> None:
    async def read() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if len(message.get("text") or "") > MAX_FRAME:
                raise Refused(POLICY_VIOLATION, "frame too large")
            # Pings and resumes alike: answer with whatever is due, and a heartbeat.
            feed.wake.set()

    async def write() -> None:
        feed.wake.set()
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_S):
                    await feed.wake.wait()
            if stopping():
                raise Refused(SERVICE_RESTART, "server restarting")
            if ticket.ended:
                raise Refused(POLICY_VIOLATION, SIGNED_OUT)
            update = await feed.next_update()
            await websocket.send_text(update.html if update else HEARTBEAT)

    tasks = [asyncio.create_task(read()), asyncio.create_task(write())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()


# --- SSE and polling ---------------------------------------------------------------------------


async def _admitted(conn: HTTPConnection) -> tuple[Identity, int] | Response:
    live = live_of(conn)
    identity = await identify(conn, live.services)
    if identity is None:
        return error_response(401, "unauthorized", "sign in first", {})
    if not may_follow(identity.actor):
        return error_response(403, "forbidden", "only operators have a My tasks channel", {})
    since = since_of(conn.headers.get("last-event-id") or conn.query_params.get("since"))
    if since is None:
        return error_response(400, "bad_since", "since must be a revision (0 or more)", {})
    return identity, since


async def _stream(request: Request, render: RenderOwnList) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    identity, since = admitted
    live = live_of(request)
    feed = OperatorFeed(services=live.services, actor=identity.actor, render=render, since=since)
    live.follow_stop(feed.wake)
    ticket = live.watch(identity, feed.wake)

    async def events() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        async with feed:
            feed.wake.set()
            ends = time.monotonic() + MAX_STREAM_S
            while not live.stopping and not ticket.ended and time.monotonic() < ends:
                try:
                    async with asyncio.timeout(SSE_HEARTBEAT_S):
                        await feed.wake.wait()
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if live.stopping or ticket.ended:
                    break
                update = await feed.next_update()
                if update is not None:
                    yield sse_event(update)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _poll(request: Request, render: RenderOwnList) -> Response:
    admitted = await _admitted(request)
    if isinstance(admitted, Response):
        return admitted
    identity, since = admitted
    own = await render(live_of(request).services, identity.actor)
    headers = {"Cache-Control": "no-store", "X-Takt-Revision": str(own.revision)}
    return HTMLResponse(own.html if own.revision > since else "", headers=headers)
