"""Closing the sockets and streams of ended sessions, on every instance, at once.

Each instance subscribes once to the hub's `sessions` channel
(app/services/sessions.py publishes there after a logout, a disable or a role
change has committed). Every open connection (board WebSocket/SSE, /my, the
wall's stream) holds a `Ticket` naming its user and session; a message that
concerns it marks the ticket ended and sets the connection's wake event, so
the connection's own loop notices on its next turn and closes (WebSocket:
1008 "signed out"; SSE: the stream ends and the page's reconnect meets a
401 and goes to login).

No per-connection polling of the database: one subscription per instance, a
set lookup per open connection per message. If the hub says messages may
have been lost (`resync`), every cookie connection's record is looked up once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.realtime.hub import RESYNC, Message
from app.services.context import Services
from app.services.sessions import SESSIONS_CHANNEL, live_session

log = logging.getLogger(__name__)

T = TypeVar("T")
RESUBSCRIBE_DELAY_S = 1.0


@dataclass(eq=False)
class Ticket:
    """One open connection's session, as the watch knows it."""

    user_id: int | None
    session_id: str | None
    wake: asyncio.Event | None = None
    ended_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ended(self) -> bool:
        return self.ended_event.is_set()

    def end(self) -> None:
        self.ended_event.set()
        if self.wake is not None:
            self.wake.set()

    def concerns(self, message: Message) -> bool:
        ids = message.get("session_ids")
        if self.session_id is not None and isinstance(ids, list) and self.session_id in ids:
            return True
        # A disable or role change: every connection of that user, by cookie or token.
        return (
            bool(message.get("all"))
            and self.user_id is not None
            and message.get("user_id") == self.user_id
        )

    async def unless_ended(self, waiting: Awaitable[T]) -> T | None:
        """Await `waiting`, or stop waiting (None) as soon as the session ends."""
        task = asyncio.ensure_future(waiting)
        ended = asyncio.ensure_future(self.ended_event.wait())
        try:
            await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not task.done():
                task.cancel()
            await asyncio.wait({task, ended})
        return None if task.cancelled() else task.result()


class SessionWatch:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._tickets: weakref.WeakSet[Ticket] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._rechecks: set[asyncio.Task[None]] = set()

    def watch(
        self, *, user_id: int | None, session_id: str | None, wake: asyncio.Event | None = None
    ) -> Ticket:
        ticket = Ticket(user_id=user_id, session_id=session_id, wake=wake)
        self._tickets.add(ticket)
        return ticket

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="session-watch")
            # Messages published from here on reach this instance's connections.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._subscribed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def deliver(self, message: Message) -> None:
        if message is RESYNC or message.get("kind") == RESYNC["kind"]:
            recheck = asyncio.ensure_future(self._recheck())
            self._rechecks.add(recheck)
            recheck.add_done_callback(self._rechecks.discard)
            return
        if message.get("kind") != "sessions_ended":
            return
        for ticket in list(self._tickets):
            if not ticket.ended and ticket.concerns(message):
                ticket.end()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.services.hub.subscribe(SESSIONS_CHANNEL) as subscription:
                    self._subscribed.set()
                    async for message in subscription:
                        self.deliver(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("session watch: the subscription failed; resubscribing")
                self._subscribed.set()
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
                await self._recheck()

    async def _recheck(self) -> None:
        """Messages may have been lost: look each cookie connection's record up once."""
        for ticket in list(self._tickets):
            if ticket.ended or ticket.session_id is None:
                continue
            try:
                live: Any = await live_session(services=self.services, session_id=ticket.session_id)
            except Exception:
                log.exception("session watch: could not recheck a session")
                return
            if live is None:
                ticket.end()
