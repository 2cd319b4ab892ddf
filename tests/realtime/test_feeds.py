"""feeds.follow: the one resubscribe loop of the operator's and the wall's feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.realtime.feeds import follow
from app.realtime.hub import RESYNC, MemoryHub, Message, Subscription


class HubThatFailsFirst(MemoryHub):
    """Refuses the first `failures` subscriptions, as a hub in trouble would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("hub unavailable")
        async with super().subscribe(channel) as subscription:
            yield subscription


class Noted:
    """What the feed was handed, in order (a feed's `note`)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    async def at_least(self, count: int) -> list[Message]:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages


@pytest.fixture(autouse=True)
def quick_resubscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.realtime.feeds.RESUBSCRIBE_DELAYS_S", (0.01,))


async def test_messages_reach_the_feed_and_a_first_subscription_is_no_resync() -> None:
    hub, noted, subscribed = MemoryHub(), Noted(), asyncio.Event()
    following = asyncio.create_task(
        follow(hub, "schedule:1", noted, who="test", subscribed=subscribed)
    )
    try:
        async with asyncio.timeout(5):
            await subscribed.wait()
        await hub.publish("schedule:1", {"revision": 1})
        await hub.publish("schedule:1", {"revision": 2})
        assert await noted.at_least(2) == [{"revision": 1}, {"revision": 2}]
    finally:
        following.cancel()
        await asyncio.wait([following])


async def test_after_the_hub_fails_the_feed_goes_on_and_hears_a_resync_first() -> None:
    hub, noted, subscribed = HubThatFailsFirst(failures=2), Noted(), asyncio.Event()
    following = asyncio.create_task(
        follow(hub, "schedule:1", noted, who="test", subscribed=subscribed)
    )
    try:
        # Not held up by the failure: the feed works without pushes meanwhile.
        async with asyncio.timeout(5):
            await subscribed.wait()
        assert await noted.at_least(1) == [RESYNC]
        await hub.publish("schedule:1", {"revision": 7})
        assert await noted.at_least(2) == [RESYNC, {"revision": 7}]
        assert hub.failures == 0
    finally:
        following.cancel()
        await asyncio.wait([following])
    assert following.cancelled()
