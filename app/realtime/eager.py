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

One frame for every socket. A thousand boards of one view are sent the same
update, so its WebSocket frame (a text frame, unmasked, as a server sends it)
is the same bytes for all of them: it is encoded once (`text_frame`) and written
straight to each connection (`Connection`) instead of being encoded and framed
again per socket through the ASGI `send` (about a fifth of what a change's
fan-out cost an instance, docs/performance.md). That takes the server's own
`send` from under the middleware (`KeepServerSend`) and works with uvicorn's
WebSocket protocol only, without compression; with any other the push goes
through `send_text` as before.
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import Coroutine, Generator, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

# Where `KeepServerSend` leaves the server's `send` in a WebSocket's scope.
SERVER_SEND = "takt.server_send"


class Pusher:
    """Sends on one socket for its feed while the socket's sender waits (`idle`)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        # Set by the sender while it waits for its feed; a push is only made then.
        self.idle = False
        # A push that had to wait for the socket: the sender awaits it first.
        self.in_flight: asyncio.Task[None] | None = None
        # Written to directly when the server allows (an accepted socket by now).
        self.connection = Connection.of(websocket.scope)

    def __call__(self, html: str) -> bool:
        """Send `html` now if the sender is idle; False: the sender must send it."""
        if not self.idle or self.in_flight is not None:
            return False
        if (
            self.connection is not None
            and self.websocket.application_state is WebSocketState.CONNECTED
            and self.connection.write(text_frame(html))
        ):
            return True
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


class Connection:
    """A WebSocket served by uvicorn's protocol, written to without the ASGI `send`."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol

    @classmethod
    def of(cls, scope: MutableMapping[str, Any]) -> Connection | None:
        """The accepted socket of `scope`, if its frames can be written as they are:
        uvicorn's protocol, no extension (compression would change every frame)."""
        protocol = getattr(scope.get(SERVER_SEND), "__self__", None)
        if (
            isinstance(protocol, WebSocketsSansIOProtocol)
            and protocol.handshake_complete
            and not protocol.conn.extensions
        ):
            return cls(protocol)
        return None

    def write(self, frame: bytes) -> bool:
        """Write `frame` now, as uvicorn's `send` would; False: the socket cannot take it
        now (closing, closed, or waiting for the client to read: `send` must wait)."""
        protocol = self.protocol
        if (
            protocol.close_sent
            or protocol.disconnected
            or protocol.conn.state is not State.OPEN
            or not protocol.writable.is_set()
            or protocol.transport.is_closing()
        ):
            return False
        protocol.transport.write(frame)
        return True


@functools.lru_cache(maxsize=16)
def text_frame(text: str) -> bytes:
    """`text` as a server's WebSocket frame: encoded once for every board it goes to (a
    view's boards share the one `str`, whose hash it caches, shared_render.py)."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class KeepServerSend:
    """ASGI middleware, outermost: leaves the server's own `send` in each WebSocket's
    scope (`SERVER_SEND`), for `Connection`; everything passes through unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


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
