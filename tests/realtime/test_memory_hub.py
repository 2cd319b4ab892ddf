"""MemoryHub: the in-process hub of the embedded default."""

from __future__ import annotations

import asyncio

from app.realtime.hub import RESYNC, MemoryHub, Message, Subscription


async def next_message(subscription: Subscription) -> Message:
    async with asyncio.timeout(5):
        return await subscription.get()


async def test_every_subscriber_of_a_channel_gets_each_message_in_order() -> None:
    hub = MemoryHub()
    async with hub.subscribe("schedule:1") as first, hub.subscribe("schedule:1") as second:
        for revision in (1, 2, 3):
            await hub.publish("schedule:1", {"revision": revision})
        for subscription in (first, second):
            assert [(await next_message(subscription))["revision"] for _ in range(3)] == [1, 2, 3]


async def test_other_channels_are_not_heard() -> None:
    hub = MemoryHub()
    async with hub.subscribe("schedule:1") as subscription:
        await hub.publish("schedule:2", {"revision": 1})
        await hub.publish("schedule:1", {"revision": 2})
        assert (await next_message(subscription))["revision"] == 2


async def test_overflow_drops_the_queue_for_one_resync_then_flows_again() -> None:
    hub = MemoryHub(queue_size=3)
    async with hub.subscribe("schedule:1") as subscription:
        for revision in range(1, 10):
            await hub.publish("schedule:1", {"revision": revision})
        assert await next_message(subscription) is RESYNC
        await hub.publish("schedule:1", {"revision": 10})
        assert (await next_message(subscription))["revision"] == 10


async def test_leaving_removes_the_subscriber() -> None:
    hub = MemoryHub()
    async with hub.subscribe("schedule:1"):
        pass
    assert hub._subscribers == {}
    await hub.publish("schedule:1", {"revision": 1})  # nobody listens: nothing happens
