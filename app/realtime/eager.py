"""Sending a board's update the moment it is ready, without waking its sender.

With 2,000 boards open on one instance, waking each board's sending task to
send the same rendered change cost a task switch per board per change, about
half of what a change cost the instance (docs/performance.md). A board that
is in step and whose sender is idle gets the update straight from the render's
completion instead (feed.py `_rendered`):

    render done ─► Feed._rendered ─► Pusher(update.html)
                                       │ sender idle, nothing in flight?
                                       ▼ yes
                     websocket.send_text, run at once: on a socket that can take
                     the frame (the usual case) it completes without waiting
                                       │ it had to wait (the client reads slowly)
                                       ▼
                     finished in a task of its own; the sender awaits it before
                     it sends anything else, so frames never overtake each other

Anything else (the sender busy, a push still in flight) refuses, and the feed
wakes its sender as before.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any

from starlette.websockets import WebSocket


class Pusher:
    """Sends on one socket for its feed while the socket's sender waits (`idle`)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        # Set by the sender while it waits for its feed; a push is only made then.
        self.idle = False
        # A push that had to wait for the socket: the sender awaits it first.
        self.in_flight: asyncio.Task[None] | None = None

    def __call__(self, html: str) -> bool:
        """Send `html` now if the sender is idle; False: the sender must send it."""
        if not self.idle or self.in_flight is not None:
            return False
        sending = self.websocket.send_text(html)
        try:
            waiting_on = sending.send(None)
        except StopIteration:
            return True  # sent
        except Exception:
            return False  # the socket is gone: the sender sends it and meets that itself
        self.in_flight = asyncio.ensure_future(_finish(sending, waiting_on))
        # Retrieved here too: the connection may end before the sender looks.
        self.in_flight.add_done_callback(_retrieve)
        return True

    async def settled(self) -> None:
        """Wait for a push still on its way (and raise what it met)."""
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            await in_flight


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


async def _finish(sending: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    await _resumed(sending, waiting_on)


@types.coroutine
def _resumed(sending: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Drive `sending` on from where it suspended (on `waiting_on`) to its end: what
    `await` would have done had it been awaited from the start."""
    pending = waiting_on
    while True:
        try:
            value = yield pending
        except BaseException as exc:
            try:
                pending = sending.throw(exc)
            except StopIteration:
                return
        else:
            try:
                pending = sending.send(value)
            except StopIteration:
                return
