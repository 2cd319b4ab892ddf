"""The live board's server side as one object the app holds: `app.state.live`.

    Live(services, render, refresh, page_session)
                  the board's renderers (app/web/board_render.py) and how a
                  connection's session cookie names its user (app/web/session.py)
      .presence     who is on each board (presence.py)
      .routes()     GET /board/ws (ws.py), GET /board/sse, GET /board/poll (sse.py)
      .start/.stop  from the app's lifespan

Running late: no change makes a task late, time does. While the app runs, a
check every `running_late_check_s` asks which tasks in progress have just
passed their booked end (`services.running_late.became_late`) and tells this
instance's open boards (each instance its own: no message between them), which
re-send those tasks and their "Running late" list (`Feed.running_late`).

Shutdown: uvicorn closes WebSockets itself, but it waits for streaming
responses (SSE) to finish before it runs the lifespan's shutdown, and an event
stream never finishes by itself. So `start()` chains a handler onto the exit
signals that tells every open feed to end; streams close, uvicorn's graceful
shutdown completes, and only then does the lifespan run `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from app import clock, tracing
from app.auth.tokens import live_access_actor
from app.db import tables
from app.domain.plan import Interval
from app.realtime.feed import Feed, RenderAhead, RenderChanges, RenderRefresh
from app.realtime.feeds import Listeners
from app.realtime.fragments import Fragments
from app.realtime.presence import Presence, Seat
from app.realtime.session_watch import SessionWatch, Ticket
from app.realtime.shared_render import SharedRenders
from app.services.access import allowed
from app.services.board import plant_timezone
from app.services.board_view import BoardView, window_start
from app.services.context import Actor, Services
from app.services.errors import ServiceError
from app.services.running_late import became_late
from app.services.window_conflicts import keep_published, prepare as prepare_window

log = logging.getLogger(__name__)

_EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Net allocations between collections of the youngest generation (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


@dataclass(frozen=True, slots=True)
class Identity:
    actor: Actor
    name: str
    # Cookies ride along on cross-site requests; tokens have to be handed over.
    by_cookie: bool
    # The session record a cookie names (None: an access token).
    session_id: str | None = None


class PageIdentity(Protocol):
    """What a logged-in page's session says of its user."""

    @property
    def actor(self) -> Actor: ...

    @property
    def display_name(self) -> str: ...

    @property
    def session_id(self) -> str: ...


# The session of a connection's page (its cookie), None when not logged in.
PageSessionOf = Callable[[HTTPConnection], Awaitable[PageIdentity | None]]


class Live:
    def __init__(
        self,
        services: Services,
        render: RenderChanges,
        refresh: RenderRefresh | None = None,
        page_session: PageSessionOf | None = None,
        fragments: Fragments | None = None,
    ) -> None:
        self.services = services
        self.page_session = page_session
        # The pieces of a page this layer sends but does not write (realtime/fragments.py).
        self.fragments = fragments
        shared = SharedRenders(render, refresh)
        self.render: RenderChanges = shared.render
        self.ahead: RenderAhead = shared.ahead
        # One hub subscription per schedule for all of this instance's boards (feeds.py);
        # what the change's own instance found for its tasks is kept before they render.
        self.listeners = Listeners(
            services.hub, who="live feed", first=partial(keep_published, services)
        )
        self.refresh: RenderRefresh | None = shared.refresh if refresh is not None else None
        self.presence = Presence(
            services.hub,
            render=None if fragments is None else (lambda v, me: fragments.presence(v, me=me)),
        )
        # Closes the connections of sessions that end (session_watch.py).
        self.sessions = SessionWatch(services)
        self.stopping = False
        self._feeds: weakref.WeakSet[Feed] = weakref.WeakSet()
        # Wake-ups of other channels' connections (an operator's /my feed).
        self._wakes: weakref.WeakSet[asyncio.Event] = weakref.WeakSet()
        self._previous_handlers: dict[int, Any] = {}
        self._late_check: asyncio.Task[None] | None = None
        # Windows being readied for their boards' first change (`prepare`).
        self._preparing: dict[Interval, asyncio.Task[None]] = {}

    def routes(self) -> list[BaseRoute]:
        from app.realtime import sse, ws

        return [*ws.routes, *sse.routes]

    def feed(self, identity: Identity, view: BoardView, since: int) -> Feed:
        """A feed for one connection; `ServiceError` (Forbidden) if the actor may not read."""
        feed = Feed(
            services=self.services,
            actor=identity.actor,
            view=view,
            render=self.render,
            refresh=self.refresh,
            revision=since,
            fragments=self.fragments,
            ahead=self.ahead,
            listeners=self.listeners,
            prepare=self.prepare,
        )
        self._feeds.add(feed)
        if self.stopping:
            feed.wake.set()
        return feed

    def prepare(self, view: BoardView) -> None:
        """Have `view`'s window validated on this instance, in the background, unless it
        is kept here already (`window_conflicts.prepare`): boards that connect here
        without having loaded their page here would otherwise all wait for that on the
        first change."""
        window = Interval(view.start, view.end)
        if window not in self._preparing:
            self._preparing[window] = asyncio.create_task(self._prepared(window))

    async def _prepared(self, window: Interval) -> None:
        try:
            await prepare_window(self.services, window)
        except Exception:  # the first change validates it then, as it would have anyway
            log.info("live feed: a window could not be prepared", exc_info=True)
        finally:
            del self._preparing[window]

    @asynccontextmanager
    async def attending(self, identity: Identity, feed: Feed, since: int) -> AsyncIterator[Seat]:
        """A board connection while it is open: seated in presence (which its feed sends
        along), subscribed, and resumed from `since`; the seat carries what it drags."""
        schedule_id = await self.services.live_schedule_id()
        with self.presence.seat(
            schedule_id,
            user_id=identity.actor.user_id or 0,
            name=identity.name,
            on_change=feed.extras_changed,
        ) as seat:
            feed.extras = lambda: seat.render(me=identity.actor.user_id)
            feed.extras_changed()
            async with feed.listening():
                feed.resume(since, feed.view)
                yield seat

    def watch(self, identity: Identity, wake: asyncio.Event | None = None) -> Ticket:
        """A ticket that is ended (and `wake` set) when this connection's session ends."""
        return self.sessions.watch(
            user_id=identity.actor.user_id, session_id=identity.session_id, wake=wake
        )

    def follow_stop(self, wake: asyncio.Event) -> None:
        """Set `wake` when the server stops, like the board's own feeds."""
        self._wakes.add(wake)
        if self.stopping:
            wake.set()

    async def start(self) -> None:
        self.stopping = False
        # Untraced: a look every half minute is no trace of its own (app/tracing.py).
        self._late_check = asyncio.create_task(tracing.untraced(self._check_running_late()))
        await self.sessions.start()
        if threading.current_thread() is not threading.main_thread():
            return  # signals are for the main thread only (e.g. a TestClient's portal)
        tune_gc()
        loop = asyncio.get_running_loop()
        for sig in _EXIT_SIGNALS:
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.end_feeds)
                if callable(previous):
                    previous(signum, frame)
                elif previous == signal.SIG_DFL:
                    signal.signal(signum, signal.SIG_DFL)
                    signal.raise_signal(signum)

            self._previous_handlers[sig] = previous
            signal.signal(sig, handler)

    def end_feeds(self) -> None:
        """Tell every open connection to close (the server is going away)."""
        self.stopping = True
        for feed in list(self._feeds):
            feed.wake.set()
        for wake in list(self._wakes):
            wake.set()

    async def stop(self) -> None:
        self.end_feeds()
        preparing = list(self._preparing.values())
        for task in preparing:
            task.cancel()
        await asyncio.gather(*preparing, return_exceptions=True)
        if self._late_check is not None:
            self._late_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._late_check
            self._late_check = None
        for sig, previous in self._previous_handlers.items():
            signal.signal(sig, previous)
        self._previous_handlers.clear()
        await self.sessions.stop()
        await self.presence.stop()

    async def _check_running_late(self) -> None:
        """Every little while: the tasks that have just run late, to every open board."""
        every = self.services.settings.running_late_check_s
        last, tick = clock.now(), 0
        while True:
            await asyncio.sleep(every)
            now = clock.now()
            try:
                late = await became_late(self.services, after=last, until=now)
            except Exception:  # the database is away: the next check covers this stretch too
                log.exception("live: the running-late check failed")
                continue
            last, tick = now, tick + 1
            if late:
                for feed in list(self._feeds):
                    feed.running_late(late, tick)


def tune_gc() -> None:
    """Keep the cyclic garbage collector from eating the fan-out.

    With a thousand boards open the heap holds millions of objects (sockets,
    tasks, frames), and CPython's default thresholds ran a collection every
    700 net allocations: 44 % of a busy worker's CPU was `gc_collect_main`
    (py-spy --native, docs/performance.md). Everything imported by now lives
    as long as the process, so it is frozen out of collections, and the
    young generation may grow larger before it is looked at. Garbage without
    cycles is still freed at once by reference counting.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def board_refusal(actor: Actor) -> str | None:
    """Why `actor` may not follow the board (None: it may)."""
    return None if allowed(actor, "plan.read") else f"role {actor.role!r} may not follow the board"


def live_of(conn: HTTPConnection) -> Live:
    live: Live = conn.app.state.live
    return live


async def identify(conn: HTTPConnection, services: Services) -> Identity | None:
    """Who is connecting: the page's session cookie, or an access token (API clients, tests).

    The token may come as `Authorization: Bearer` or, for browsers' WebSocket
    and EventSource (which cannot set headers), as `?access_token=`.
    """
    header = conn.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else ""
    token = token or conn.query_params.get("access_token", "")
    if token:
        try:
            actor = await live_access_actor(token, services=services)
        except ServiceError:
            return None
        conn.scope.setdefault("state", {})["actor"] = actor  # for the request's log line
        return Identity(actor, await _display_name(services, actor), by_cookie=False)
    page_session = live_of(conn).page_session
    session = None if page_session is None else await page_session(conn)
    if session is None:
        return None
    return Identity(
        session.actor, session.display_name, by_cookie=True, session_id=session.session_id
    )


async def _display_name(services: Services, actor: Actor) -> str:
    if actor.user_id is None:
        return "Service"
    async with services.db.read() as session:
        user = await session.get(tables.User, actor.user_id)
    if user is None:
        return f"User {actor.user_id}"
    return user.display_name or user.username


async def view_of(params: Any, services: Services) -> BoardView:
    """The board view a client follows, from the same query parameters as the page,
    in the plant's time (its windows are the page's: a DST day is 23 or 25 hours)."""
    zone = ZoneInfo(await plant_timezone(services=services))
    zoom = str(params.get("zoom") or "day")
    today = window_start(zoom, zone, clock.now())
    return BoardView.from_query(params, default_start=today, zone=zone)


def since_of(raw: str | None) -> int | None:
    """A revision sent by a client: a non-negative integer, else None."""
    digits = (raw or "").strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        return None
    return int(digits)
