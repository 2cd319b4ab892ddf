"""The broadcast hub: publish a change, subscribe to a channel.

Pushes are hints; the change log is the truth. A subscriber whose bounded
queue overflows gets a `resync` marker instead of silently missing messages,
and must catch up from the change log. The in-process hub serves one
instance; the Redis hub (same interface) fans out across instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.realtime.backfill import ReadBacklog
    from app.settings import Settings

Message = dict[str, Any]
RESYNC: Message = {"kind": "resync"}
DEFAULT_QUEUE_SIZE = 256


class Subscription:
    def __init__(self, channel: str, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)
        self._overflowed = False

    def deliver(self, message: Message) -> None:
        if self._overflowed:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            # Drop what is queued and tell the subscriber to catch up instead.
            self._overflowed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)

    async def get(self) -> Message:
        message = await self._queue.get()
        if message is RESYNC:
            self._overflowed = False
        return message

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            yield await self.get()


class Hub(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, channel: str) -> Any:
        """An async context manager yielding a `Subscription`."""
        ...

    def fill_gaps_from(self, read: ReadBacklog) -> None:
        """Where to read what Redis did not deliver (app/realtime/backfill.py)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class MemoryHub:
    """In-process fan-out for the embedded default (one instance)."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._queue_size = queue_size

    def fill_gaps_from(self, read: ReadBacklog) -> None:
        return None  # one process: every publish is delivered

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._subscribers.clear()

    async def publish(self, channel: str, message: Message) -> None:
        for subscription in list(self._subscribers.get(channel, ())):
            subscription.deliver(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel, self._queue_size)
        self._subscribers.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[channel]


def make_hub(settings: Settings) -> Hub:
    """Redis when `REDIS_URL` is set (several instances), in-process otherwise."""
    if settings.redis_url:
        # Imported here: the Redis hub builds on this module's classes.
        from app.realtime.redis_hub import RedisHub

        return RedisHub(settings.redis_url)
    return MemoryHub()
