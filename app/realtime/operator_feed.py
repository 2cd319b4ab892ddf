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
or Last-Event-ID on the stream, `since` on a poll; and the same transport
(transport.py: admission, heartbeats, closing), which only ever asks this feed
`next_updates()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app import tracing
from app.realtime.feed import render_failed, retry_delay
from app.realtime.feeds import Listeners, Update, follow
from app.realtime.hub import Message
from app.realtime.live import Identity, Live
from app.realtime.session_watch import Ticket
from app.realtime.transport import (
    POLICY_VIOLATION,
    RESUME_WAIT_S,
    Refused,
    admit_request,
    exchange,
    serve_socket,
    update_stream,
)
from app.services.access import allowed
from app.services.context import Actor, Services
from app.services.write_path import schedule_channel

MAX_FRAME = 4 * 1024
RESUME = 'expected {"type": "resume", "since": N}'


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
        self,
        *,
        services: Services,
        actor: Actor,
        render: RenderOwnList,
        since: int,
        listeners: Listeners | None = None,
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
        # The instance's one subscription per channel (feeds.py); none: one of its own.
        self.listeners = listeners
        self._listening: AbstractAsyncContextManager[None] | None = None

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

    async def next_updates(self) -> list[Update]:
        """The list, if it changed since it was last sent (or since the page's revision)."""
        update = await self._next_update()
        return [] if update is None else [update]

    async def _next_update(self) -> Update | None:
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
        await follow(
            self.services.hub, channel, self.note, who="operator feed", subscribed=self._subscribed
        )

    async def __aenter__(self) -> OperatorFeed:
        """Subscribed from here on, so nothing committed later is missed; the first
        turn sends the list if the page is behind it (else a socket's heartbeat)."""
        if self.listeners is not None:
            channel = schedule_channel(await self.services.live_schedule_id())
            self._listening = self.listeners.listening(channel, self.note)
            await self._listening.__aenter__()
        else:
            self._reader = asyncio.create_task(self.listen())
            await self._subscribed.wait()
        self.wake.set()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._listening is not None:
            listening, self._listening = self._listening, None
            await listening.__aexit__(None, None, None)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])


def may_follow(actor: Actor) -> bool:
    return allowed(actor, "own_tasks.read") and actor.operator_id is not None


def refusal(actor: Actor) -> str | None:
    """Why `actor` may not follow this channel (None: it may)."""
    return None if may_follow(actor) else "only operators have a My tasks channel"


def routes(render: RenderOwnList) -> list[BaseRoute]:
    """The channel's routes, rendering with `render` (app/web/my_render.py)."""

    async def my_socket(websocket: WebSocket) -> None:
        serve = partial(_serve, render)
        await serve_socket(
            websocket, channel="operator", refusal=refusal, resume=_resume, serve=serve
        )

    async def my_stream(request: Request) -> Response:
        admitted = await admit_request(request, refusal)
        if isinstance(admitted, Response):
            return admitted
        live, identity, since = admitted
        feed, ticket = _follow(live, identity, render, since)
        return update_stream(feed, live=live, ticket=ticket, following=feed)

    async def my_poll(request: Request) -> Response:
        return await _poll(request, render)

    return [
        WebSocketRoute("/my/ws", my_socket),
        Route("/my/sse", my_stream, methods=["GET"]),
        Route("/my/poll", my_poll, methods=["GET"]),
    ]


def _follow(
    live: Live, identity: Identity, render: RenderOwnList, since: int
) -> tuple[OperatorFeed, Ticket]:
    """A feed for one connection, woken when the server stops or its session ends."""
    feed = OperatorFeed(
        services=live.services,
        actor=identity.actor,
        render=render,
        since=since,
        listeners=live.listeners,
    )
    live.follow_stop(feed.wake)
    return feed, live.watch(identity, feed.wake)


# --- WebSocket ---------------------------------------------------------------------------------


async def _resume(websocket: WebSocket, services: Services) -> int:
    try:
        async with asyncio.timeout(RESUME_WAIT_S):
            message = await websocket.receive_json()
    except (TimeoutError, ValueError, KeyError):
        raise Refused(POLICY_VIOLATION, RESUME) from None
    since = message.get("since") if isinstance(message, dict) else None
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise Refused(POLICY_VIOLATION, RESUME)
    return since


async def _serve(
    render: RenderOwnList, websocket: WebSocket, live: Live, identity: Identity, since: int
) -> None:
    feed, ticket = _follow(live, identity, render, since)
    async with feed:
        reading = _read(websocket, feed)
        await exchange(websocket, feed, reading, live=live, ticket=ticket, answer_every_wake=True)


async def _read(websocket: WebSocket, feed: OperatorFeed) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if len(message.get("text") or "") > MAX_FRAME:
            raise Refused(POLICY_VIOLATION, "frame too large")
        # Pings and resumes alike: answer with whatever is due, or a heartbeat.
        feed.wake.set()


# --- polling -------------------------------------------------------------------------------------


async def _poll(request: Request, render: RenderOwnList) -> Response:
    admitted = await admit_request(request, refusal)
    if isinstance(admitted, Response):
        return admitted
    live, identity, since = admitted
    own = await render(live.services, identity.actor)
    headers = {"Cache-Control": "no-store", "X-Takt-Revision": str(own.revision)}
    return HTMLResponse(own.html if own.revision > since else "", headers=headers)
