"""What every live feed shares: the face a transport sees, and one subscription per channel.

    hub schedule:{id} ─► Listeners: one follow(channel) per instance ─► every feed.note(message)
                           │ the hub failed us: pause, subscribe again,    │
                           │ and note a RESYNC first                       ▼
                           │ (pushes may have been missed)             feed.wake
                           ▼
    transport (transport.py) waits on `feed.wake`, sends `await feed.next_updates()`

Every feed of a channel on one instance hears it through one subscription:
the one reader hands each message to each feed's `note` in turn, with no
queue and no task per feed (with 2,000 boards open, a task switch per board
per change was most of what a change cost, docs/performance.md).

The board's feed (feed.py), an operator's (operator_feed.py) and the wall's
(wall_feed.py) differ in what a message means to them, not in how they hear it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from app.realtime.hub import RESYNC, Hub, Message

log = logging.getLogger(__name__)

RESUBSCRIBE_DELAYS_S = (0.5, 1, 2, 5, 10)


@dataclass(frozen=True, slots=True)
class Update:
    """HTML for the client; `revision` when it moves the client's resume point."""

    html: str
    revision: int | None = None
    reload: bool = False


class Feed(Protocol):
    """One connection's feed, as its transport drives it."""

    # Set when there may be something to send (a message, a retry, the server stopping).
    wake: asyncio.Event

    async def next_updates(self) -> list[Update]:
        """Everything due now (empty: nothing to say); clears `wake` first."""
        ...


async def follow(
    hub: Hub,
    channel: str,
    note: Callable[[Message], None],
    *,
    who: str,
    subscribed: asyncio.Event | None = None,
) -> None:
    """Hand every message on `channel` to `note` until cancelled.

    `subscribed` is set once messages reach `note` (or once the first try
    failed: the feed then goes on without pushes). If the hub fails us (not
    expected: the hubs recover by themselves), subscribe again after a pause
    and note a RESYNC first: messages may have been published meanwhile.
    """
    attempt = 0
    while True:
        try:
            async with hub.subscribe(channel) as subscription:
                if attempt:
                    note(RESYNC)
                if subscribed is not None:
                    subscribed.set()
                attempt = 0
                async for message in subscription:
                    note(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: subscription to %s failed", who, channel)
            if subscribed is not None:
                subscribed.set()
            await asyncio.sleep(RESUBSCRIBE_DELAYS_S[min(attempt, len(RESUBSCRIBE_DELAYS_S) - 1)])
            attempt += 1


Note = Callable[[Message], None]


# Feeds noted in one go before the event loop gets a turn: a render a message starts
# (feed.py, `ahead`) sends its first query while the rest of the feeds are noted.
NOTE_TURN = 64


@dataclass(eq=False)
class _Room:
    """The feeds of one channel on this instance, and the one reader that feeds them."""

    first: Note | None = None
    notes: dict[object, Note] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None
    inbox: deque[Message] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, hub: Hub, channel: str, who: str) -> None:
        following = follow(hub, channel, self.arrive, who=who, subscribed=self.subscribed)
        await asyncio.gather(following, self._hand_out())

    def arrive(self, message: Message) -> None:
        self.inbox.append(message)
        self.arrived.set()

    async def _hand_out(self) -> None:
        """Each message to every feed in turn (`NOTE_TURN` at a time), in order."""
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            while self.inbox:
                message = self.inbox.popleft()
                if self.first is not None:
                    self.first(message)
                notes = list(self.notes.values())
                for start in range(0, len(notes), NOTE_TURN):
                    if start:
                        await asyncio.sleep(0)
                    for note in notes[start : start + NOTE_TURN]:
                        try:
                            note(message)
                        except Exception:  # one feed's bug must not cost the others
                            log.exception("live feed: a message could not be noted")


class Listeners:
    """One hub subscription per channel for all of this instance's feeds on it."""

    def __init__(self, hub: Hub, *, who: str, first: Note | None = None) -> None:
        self.hub = hub
        self.who = who
        # Hears each message once per instance, before the feeds do.
        self.first = first
        self._rooms: dict[str, _Room] = {}

    @asynccontextmanager
    async def listening(self, channel: str, note: Note) -> AsyncIterator[None]:
        """`note` hears every message on `channel` from when the block starts (once
        subscribed: nothing published later is missed) until it ends."""
        room = self._rooms.get(channel)
        if room is None:
            room = self._rooms[channel] = _Room(self.first)
            reading = room.run(self.hub, channel, self.who)
            room.reader = asyncio.create_task(reading, name=f"listeners {channel}")
        seat = object()
        room.notes[seat] = note
        try:
            await room.subscribed.wait()
            yield
        finally:
            del room.notes[seat]
            if not room.notes and self._rooms.get(channel) is room:
                del self._rooms[channel]
                assert room.reader is not None
                room.reader.cancel()
                # Raises at once if we are being cancelled ourselves; the reader then
                # finishes (unsubscribes) on its own.
                await asyncio.wait([room.reader])

    def listeners(self, channel: str) -> int:
        """How many feeds hear `channel` here (for tests and metrics)."""
        room = self._rooms.get(channel)
        return 0 if room is None else len(room.notes)
