"""When Redis cannot deliver, an instance feeds its own subscribers from the change log.

Redis pub/sub is at-most-once, and Redis may be away altogether; the change
log (the database) is the truth. So each instance keeps, per channel with
local subscribers, the newest revision it has delivered, and looks at the
change log for what it has not:

    every DEGRADED_EVERY_S while the hub's subscription is down
    every HEALTHY_EVERY_S  while it is up
        │
        ▼  read(channel, after=newest delivered)      one indexed query; nothing
        │                                             more when the revision is known
        ├─ degraded: deliver every change after it, as the message `change()`
        │            would have published (the feeds cannot tell the difference)
        ├─ healthy:  the same, but only for revisions already behind at the
        │            previous look: a message still on its way is not a gap,
        │            one that took a whole interval was lost (another instance
        │            could not publish it)
        └─ too many, or the log does not reach back: RESYNC (the feeds catch up
                     or reload by themselves)

Subscribers de-duplicate by revision (a feed ignores what it has already sent),
so a change that arrives both from here and from Redis costs nothing. When
the subscription is back the hub sends RESYNC as before; the feeds catch up
from what they have sent, so there is neither a gap nor a double.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from app.realtime.hub import RESYNC, Message

log = logging.getLogger(__name__)

DEGRADED_EVERY_S = 1.0
HEALTHY_EVERY_S = 2.0
# More changes than this behind: the subscribers catch up by themselves.
LIMIT = 200
# At most one log line per this many seconds while the database fails too.
LOG_EVERY_S = 30.0

FILLED = Counter(
    "takt_hub_backfilled_total", "Changes delivered from the change log instead of Redis"
)


@dataclass(frozen=True, slots=True)
class Backlog:
    """A channel's change log after a revision."""

    revision: int  # the channel's newest revision
    messages: list[Message]  # the changes after the one asked for, oldest first, at most `limit`


# (channel, after, limit) → the backlog; None for channels without a change log.
ReadBacklog = Callable[[str, int | None, int], Awaitable[Backlog | None]]


class Filled(Protocol):
    """What the backfill needs of a hub."""

    @property
    def degraded(self) -> bool: ...

    def local_channels(self) -> list[str]: ...

    def delivered_revision(self, channel: str) -> int | None: ...

    def deliver_local(self, channel: str, message: Message) -> None: ...

    def note_delivered(self, channel: str, revision: int) -> None:
        """This instance's subscribers have (or will catch up to) `revision`."""
        ...


class Backfill:
    def __init__(
        self,
        hub: Filled,
        read: ReadBacklog,
        *,
        degraded_every: float = DEGRADED_EVERY_S,
        healthy_every: float = HEALTHY_EVERY_S,
    ) -> None:
        self.hub = hub
        self.read = read
        self.degraded_every = degraded_every
        self.healthy_every = healthy_every
        # Per channel: the revision the change log had at the previous look, if the
        # hub had not delivered it by then.
        self._behind: dict[str, int] = {}
        self._logged_at = float("-inf")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.degraded_every if self.hub.degraded else self.healthy_every)
            channels = self.hub.local_channels()
            for gone in self._behind.keys() - set(channels):
                del self._behind[gone]
            for channel in channels:
                try:
                    await self.check(channel)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # The database is away too: nothing to fill from; try again next time.
                    self._log(f"backfill of {channel} failed: {exc!r}")

    async def check(self, channel: str) -> None:
        """One look at `channel`'s change log; deliver what this instance has missed."""
        degraded = self.hub.degraded
        after = self.hub.delivered_revision(channel)
        backlog = await self.read(channel, after, LIMIT)
        if backlog is None:
            return
        if after is None:
            # Nothing delivered here yet: count from now on. While degraded, what
            # happened before is unknown, so the subscribers look for themselves.
            if degraded:
                self.hub.deliver_local(channel, RESYNC)
            self.hub.note_delivered(channel, backlog.revision)
            return
        previous = self._behind.pop(channel, None)
        if backlog.revision <= after:
            return
        if not degraded and (previous is None or previous <= after):
            self._behind[channel] = backlog.revision  # maybe still on its way
            return
        self._fill(channel, after, backlog)

    def _fill(self, channel: str, after: int, backlog: Backlog) -> None:
        messages = [m for m in backlog.messages if _revision(m) > after]
        contiguous = [_revision(m) for m in messages] == list(
            range(after + 1, after + 1 + len(messages))
        )
        if not messages or not contiguous or len(backlog.messages) >= LIMIT:
            self.hub.deliver_local(channel, RESYNC)
            self.hub.note_delivered(channel, backlog.revision)
            return
        for message in messages:
            self.hub.deliver_local(channel, message)
        FILLED.inc(len(messages))

    def _log(self, text: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.warning("redis hub: %s", text)


def _revision(message: Message) -> int:
    revision = message.get("revision")
    return revision if isinstance(revision, int) else -1
