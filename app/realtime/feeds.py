"""What every live feed shares: the face a transport sees, and one resubscribe loop.

    hub schedule:{id} ─► follow(channel, note) ─► feed.note(message) ─► feed.wake
                           │ the hub failed us: pause, subscribe again,
                           │ and note a RESYNC first (pushes may have been missed)
                           ▼
    transport (transport.py) waits on `feed.wake`, sends `await feed.next_updates()`

The board's feed (feed.py), an operator's (operator_feed.py) and the wall's
(wall_feed.py) differ in what a message means to them, not in how they hear it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
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
