"""eager.Pusher: a board's update sent the moment it is ready, never overtaking another."""

from __future__ import annotations

import asyncio

import pytest

from app.realtime.eager import Pusher


class Socket:
    """A WebSocket's `send_text`: at once, or held while `paused` (a slow client)."""

    def __init__(self) -> None:
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
