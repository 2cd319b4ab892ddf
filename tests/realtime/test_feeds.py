"""feeds.follow, the one resubscribe loop, and Listeners, one subscription per channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.realtime.feeds import Listeners, follow
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


async def test_every_feed_of_a_channel_hears_it_through_one_subscription() -> None:
    hub = MemoryHub()
    listeners = Listeners(hub, who="test")
    first, second, elsewhere = Noted(), Noted(), Noted()
    async with (
        listeners.listening("schedule:1", first),
        listeners.listening("schedule:1", second),
        listeners.listening("schedule:2", elsewhere),
    ):
        assert len(hub._subscribers["schedule:1"]) == 1
        assert listeners.listeners("schedule:1") == 2
        await hub.publish("schedule:1", {"revision": 1})
        assert await first.at_least(1) == [{"revision": 1}]
        assert await second.at_least(1) == [{"revision": 1}]
        assert elsewhere.messages == []
        async with listeners.listening("schedule:1", first):  # the same feed twice: heard twice
            await hub.publish("schedule:1", {"revision": 2})
            assert await first.at_least(3) == [{"revision": 1}, {"revision": 2}, {"revision": 2}]
    # The last one out unsubscribes.
    assert hub._subscribers == {}
    assert listeners.listeners("schedule:1") == 0


async def test_a_feed_that_leaves_hears_no_more_and_the_others_go_on() -> None:
    hub = MemoryHub()
    listeners = Listeners(hub, who="test")
    staying, leaving = Noted(), Noted()
    async with listeners.listening("schedule:1", staying):
        async with listeners.listening("schedule:1", leaving):
            await hub.publish("schedule:1", {"revision": 1})
            await leaving.at_least(1)
        await hub.publish("schedule:1", {"revision": 2})
        assert await staying.at_least(2) == [{"revision": 1}, {"revision": 2}]
        assert leaving.messages == [{"revision": 1}]
        assert len(hub._subscribers["schedule:1"]) == 1


async def test_a_feed_that_fails_to_note_costs_the_others_nothing() -> None:
    hub = MemoryHub()
    listeners = Listeners(hub, who="test")
    noted = Noted()

    def broken(message: Message) -> None:
        raise ValueError("a bug in one feed")

    async with listeners.listening("schedule:1", broken), listeners.listening("schedule:1", noted):
        await hub.publish("schedule:1", {"revision": 1})
        await hub.publish("schedule:1", {"revision": 2})
        assert await noted.at_least(2) == [{"revision": 1}, {"revision": 2}]


async def test_after_the_hub_fails_every_listening_feed_hears_a_resync() -> None:
    hub = HubThatFailsFirst(failures=1)
    listeners = Listeners(hub, who="test")
    first, second = Noted(), Noted()
    async with listeners.listening("schedule:1", first), listeners.listening("schedule:1", second):
        assert await first.at_least(1) == [RESYNC]
        assert await second.at_least(1) == [RESYNC]
        await hub.publish("schedule:1", {"revision": 3})
        assert await second.at_least(2) == [RESYNC, {"revision": 3}]


async def test_the_instance_hears_each_message_once_before_its_feeds() -> None:
    hub, order, noted = MemoryHub(), [], Noted()
    listeners = Listeners(hub, who="test", first=lambda m: order.append(("first", m["revision"])))

    def feed(message: Message) -> None:
        order.append(("feed", message["revision"]))
        noted(message)

    async with listeners.listening("schedule:1", feed), listeners.listening("schedule:1", feed):
        await hub.publish("schedule:1", {"revision": 1})
        await noted.at_least(2)
    assert order == [("first", 1), ("feed", 1), ("feed", 1)]
