"""eager.Pusher: a board's update sent the moment it is ready, never overtaking another;
written as one shared frame straight to each connection when uvicorn serves it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.realtime.eager import KeepServerSend, Pusher, text_frame


class Socket:
    """A WebSocket's `send_text`: at once, or held while `paused` (a slow client)."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}  # no server's `send` in it: no direct writes
        self.sent: list[str] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.gone = False

    async def send_text(self, text: str) -> None:
        await self.writable.wait()
        if self.gone:
            raise RuntimeError("the socket is closed")
        self.sent.append(text)


def pusher_for(socket: Socket) -> Pusher:
    pusher = Pusher(socket)  # type: ignore[arg-type]
    pusher.idle = True
    return pusher


async def test_an_idle_sender_s_socket_gets_the_update_at_once() -> None:
    socket = Socket()
    pusher = pusher_for(socket)
    assert pusher("<r1>") is True
    assert socket.sent == ["<r1>"] and pusher.in_flight is None


async def test_a_busy_sender_sends_it_itself() -> None:
    socket = Socket()
    pusher = pusher_for(socket)
    pusher.idle = False
    assert pusher("<r1>") is False
    assert socket.sent == []


async def test_a_push_that_must_wait_goes_out_before_anything_else() -> None:
    socket = Socket()
    pusher = pusher_for(socket)
    socket.writable.clear()  # the client reads slowly
    assert pusher("<r1>") is True
    assert socket.sent == [] and pusher.in_flight is not None
    # Until it is out, nothing else is pushed: the sender gets the next one.
    assert pusher("<r2>") is False
    socket.writable.set()
    async with asyncio.timeout(5):
        await pusher.settled()
    await socket.send_text("<r2>")  # what the sender then sends
    assert socket.sent == ["<r1>", "<r2>"]
    assert pusher("<r3>") is True and socket.sent[-1] == "<r3>"


async def test_a_push_on_a_closed_socket_is_left_to_the_sender() -> None:
    socket = Socket()
    socket.gone = True
    pusher = pusher_for(socket)
    assert pusher("<r1>") is False
    # One that was waiting when the socket went: the sender meets the error.
    socket.gone = False
    socket.writable.clear()
    assert pusher("<r2>") is True
    socket.gone = True
    socket.writable.set()
    with pytest.raises(RuntimeError):
        async with asyncio.timeout(5):
            await pusher.settled()


# --- one shared frame, written straight to uvicorn's connections ------------------------------

# Past 125 and 65,535 bytes a frame's header grows; the dash is three bytes in UTF-8.
TEXTS = ["<r1 data-x='é — ü'>", "<r2>" + "x" * 300, "<r3>" + "y" * 70_000]


class Wrapped:
    """A middleware that wraps `send`, as the app's own do (observability, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Any) -> None:
            await send(message)

        await self.app(scope, receive, wrapped)


@asynccontextmanager
async def served(
    endpoint: Callable[[WebSocket], Any], *, deflate: bool = False
) -> AsyncIterator[str]:
    """`endpoint` on a real uvicorn (its WebSocket protocol, as `takt serve` runs it)."""
    app = Starlette(
        routes=[WebSocketRoute("/ws", endpoint)],
        middleware=[Middleware(KeepServerSend), Middleware(Wrapped)],
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        ws_per_message_deflate=deflate,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn's is a flag, not an event
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await serving


async def received(url: str, count: int, *, compression: str | None = None) -> list[str]:
    async with websockets.connect(url, compression=compression, max_size=None) as client:
        return [str(await client.recv()) for _ in range(count)]


async def idle_pusher(websocket: WebSocket, direct: list[bool]) -> Pusher:
    """The socket accepted and its sender idle; `direct` notes if it is written to directly."""
    await websocket.accept()
    pusher = Pusher(websocket)
    pusher.idle = True
    direct.append(pusher.connection is not None)
    return pusher


async def test_a_push_is_one_shared_frame_written_straight_to_the_connection() -> None:
    direct: list[bool] = []

    async def endpoint(websocket: WebSocket) -> None:
        pusher = await idle_pusher(websocket, direct)
        assert pusher(TEXTS[0]) is True
        await websocket.send_text("between")  # the sender's own, through every middleware
        assert pusher(TEXTS[1]) is True and pusher(TEXTS[2]) is True
        with pytest.raises(WebSocketDisconnect):
            await websocket.receive_text()
        # The client has gone: a frame is no longer written, the sender meets the close.
        assert pusher.connection is not None
        assert pusher.connection.write(text_frame("late")) is False

    async with served(endpoint) as url:
        got = await received(url, 4)
    assert direct == [True]
    assert got == [TEXTS[0], "between", TEXTS[1], TEXTS[2]]


async def test_a_compressed_connection_is_sent_to_through_its_send() -> None:
    """With permessage-deflate every frame is the socket's own: no shared frame then."""
    direct: list[bool] = []

    async def endpoint(websocket: WebSocket) -> None:
        pusher = await idle_pusher(websocket, direct)
        for text in TEXTS:
            assert pusher(text) is True
            await pusher.settled()
        with pytest.raises(WebSocketDisconnect):
            await websocket.receive_text()

    async with served(endpoint, deflate=True) as url:
        got = await received(url, len(TEXTS), compression="deflate")
    assert direct == [False]
    assert got == TEXTS
