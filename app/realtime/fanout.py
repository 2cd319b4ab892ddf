"""One hub subscription per channel for all of this instance's live feeds.

With a subscription per open board, each change went into N queues and woke
N reader tasks before a single board could be rendered for. Here one reader
per channel calls every listening feed's `note()` (synchronous, no I/O), so a
change costs N function calls and wakes only the feeds' senders.

    async with fanout.listen("schedule:1", feed.note):   # subscribed on entry
        ...                                             # note() hears every message

A resubscription after a hub failure tells every listener `{"kind": "resync"}`:
messages may have been published meanwhile, and the change log has them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from app.realtime.hub import Hub, Message

log = logging.getLogger(__name__)

RESUBSCRIBE_DELAYS_S = (0.5, 1, 2, 5, 10)

Listener = Callable[[Message], None]


@dataclass
class _Channel:
    listeners: dict[int, Listener] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


class Fanout:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._channels: dict[str, _Channel] = {}
        self._numbers = iter(range(1, 1 << 62))

    @asynccontextmanager
    async def listen(self, channel: str, listener: Listener) -> AsyncIterator[None]:
        """Call `listener` with every message of `channel` while the block runs."""
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel()
            entry.reader = asyncio.create_task(self._read(channel, entry))
        number = next(self._numbers)
        entry.listeners[number] = listener
        try:
            await entry.subscribed.wait()
            yield
        finally:
            # No awaits here: this also runs while the connection is being cancelled.
            entry.listeners.pop(number, None)
            if not entry.listeners and self._channels.get(channel) is entry:
                del self._channels[channel]
                if entry.reader is not None:
                    entry.reader.cancel()

    async def stop(self) -> None:
        readers = [e.reader for e in self._channels.values() if e.reader is not None]
        self._channels.clear()
        for reader in readers:
            reader.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.gather(*readers, return_exceptions=True)

    async def _read(self, channel: str, entry: _Channel) -> None:
        attempt = 0
        while True:
            try:
                async with self.hub.subscribe(channel) as subscription:
                    if attempt:
                        _tell(entry, {"kind": "resync"})
                    entry.subscribed.set()
                    attempt = 0
                    async for message in subscription:
                        _tell(entry, message)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The hub failed us (not expected: the hubs recover by themselves).
                # Go on without pushes and catch up once subscribed again.
                log.exception("live feed: subscription to %s failed", channel)
                entry.subscribed.set()
                await asyncio.sleep(RESUBSCRIBE_DELAYS_S[min(attempt, 4)])
                attempt += 1


def _tell(entry: _Channel, message: Message) -> None:
    for listener in list(entry.listeners.values()):
        listener(message)
