"""RedisHub against a real redis-server: two hubs stand for two app instances."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from itertools import count
from typing import Any

import pytest
from servers import RedisServer

from app.realtime.hub import RESYNC, MemoryHub, Message, Subscription, make_hub
from app.realtime.redis_hub import RedisHub, backoff_delay
from app.settings import Settings

pytestmark = pytest.mark.redis

WAIT_S = 10.0
_channels = count()


def fresh_channel() -> str:
    """The session's Redis is shared by every test: each test gets its own channel."""
    return f"schedule:test-{next(_channels)}"


@asynccontextmanager
async def running(url: str, **options: Any) -> AsyncIterator[RedisHub]:
    hub = RedisHub(url, **options)
    await hub.start()
    try:
        await until(lambda: hub.healthy)
        yield hub
    finally:
        await hub.stop()


async def until(condition: Callable[[], bool]) -> None:
    """Poll a hub's state (`healthy` is a plain property, there is no event to await)."""
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def next_message(subscription: Subscription) -> Message:
    async with asyncio.timeout(WAIT_S):
        return await subscription.get()


async def next_change(subscription: Subscription) -> Message:
    """The next message that is not a resync marker."""
    while (message := await next_message(subscription)) is RESYNC:
        pass
    return message


def change(revision: int) -> Message:
    return {"schedule_id": 1, "revision": revision, "kind": "assignment.moved"}


async def test_two_instances_see_each_others_publishes_in_one_order(redis_url: str) -> None:
    channel = fresh_channel()
    async with running(redis_url) as a, running(redis_url) as b, AsyncExitStack() as stack:
        on_a = await stack.enter_async_context(a.subscribe(channel))
        on_b = await stack.enter_async_context(b.subscribe(channel))
        on_b_too = await stack.enter_async_context(b.subscribe(channel))

        for revision in range(1, 21):
            await (a if revision % 2 else b).publish(channel, change(revision))

        for subscription in (on_a, on_b, on_b_too):
            received = [(await next_message(subscription))["revision"] for _ in range(20)]
            assert received == list(range(1, 21))


async def test_a_subscriber_hears_only_its_channel(redis_url: str) -> None:
    mine, other = fresh_channel(), fresh_channel()
    async with running(redis_url) as a, running(redis_url) as b, b.subscribe(mine) as subscription:
        await a.publish(other, change(1))
        await a.publish(mine, change(2))
        assert (await next_message(subscription))["revision"] == 2


async def test_a_full_queue_turns_into_one_resync_and_then_flows_again(redis_url: str) -> None:
    channel = fresh_channel()
    async with (
        running(redis_url, queue_size=4) as hub,
        hub.subscribe(channel) as subscription,
        hub.subscribe(channel) as reader,
    ):
        for revision in range(1, 11):  # nobody reads `subscription`: its 4 slots overflow
            await hub.publish(channel, change(revision))
            # Once `reader` has a revision, so has `subscription` (one fan-out, one order).
            assert (await next_message(reader))["revision"] == revision

        assert await next_message(subscription) is RESYNC
        await hub.publish(channel, change(11))
        assert (await next_message(subscription))["revision"] == 11


async def test_resubscribing_a_channel_after_leaving_it_receives_again(redis_url: str) -> None:
    channel = fresh_channel()
    async with running(redis_url) as a, running(redis_url) as b:
        for revision in range(1, 4):
            async with b.subscribe(channel) as subscription:
                await a.publish(channel, change(revision))
                assert (await next_message(subscription))["revision"] == revision


async def test_redis_killed_and_restarted_resyncs_subscribers_and_recovers(
    restartable_redis: RedisServer,
) -> None:
    redis, channel = restartable_redis, fresh_channel()
    fast = {"backoff_cap": 0.5}
    async with (
        running(redis.url, **fast) as a,
        running(redis.url, **fast) as b,
        a.subscribe(channel) as on_a,
        b.subscribe(channel) as on_b,
    ):
        await a.publish(channel, change(1))
        assert (await next_message(on_b))["revision"] == 1
        assert (await next_message(on_a))["revision"] == 1

        redis.kill()
        await until(lambda: not a.healthy and not b.healthy)
        # Writes go on while Redis is away: publish must not raise, and the
        # instance's own subscribers still hear their instance's changes.
        await a.publish(channel, change(2))
        assert (await next_message(on_a))["revision"] == 2

        redis.restart()
        await until(lambda: a.healthy and b.healthy)
        # After the gap every subscriber is told to catch up from the change log.
        assert await next_message(on_b) is RESYNC
        assert RESYNC in await drain(on_a)

        # And fan-out works again without anyone restarting anything.
        await b.publish(channel, change(3))
        assert (await next_change(on_a))["revision"] == 3
        assert (await next_change(on_b))["revision"] == 3


async def drain(subscription: Subscription, settle: float = 0.2) -> list[Message]:
    """Everything queued now, waiting `settle` s for stragglers (no assertion on time)."""
    messages: list[Message] = []
    while True:
        try:
            async with asyncio.timeout(settle):
                messages.append(await subscription.get())
        except TimeoutError:
            return messages


async def test_publish_while_redis_is_down_does_not_raise(
    restartable_redis: RedisServer,
) -> None:
    channel = fresh_channel()
    async with (
        running(restartable_redis.url, backoff_cap=0.5) as hub,
        hub.subscribe(channel) as subscription,
    ):
        restartable_redis.kill()
        await until(lambda: not hub.healthy)
        for revision in range(1, 4):
            await hub.publish(channel, change(revision))
        assert [m["revision"] for m in await drain(subscription)] == [1, 2, 3]


async def test_a_hub_started_while_redis_is_down_connects_when_it_comes_up(
    restartable_redis: RedisServer,
) -> None:
    channel = fresh_channel()
    restartable_redis.kill()
    hub = RedisHub(restartable_redis.url, backoff_cap=0.5)
    await hub.start()
    try:
        async with hub.subscribe(channel) as subscription:  # does not wait for Redis
            assert not hub.healthy
            restartable_redis.restart()
            await until(lambda: hub.healthy)
            assert await next_message(subscription) is RESYNC
            await hub.publish(channel, change(1))
            assert (await next_message(subscription))["revision"] == 1
    finally:
        await hub.stop()


async def test_a_publish_redis_refused_makes_the_other_instances_resync(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Instance B stayed connected but never got A's message: A announces a resync."""
    channel = fresh_channel()
    async with (
        running(redis_url) as a,
        running(redis_url) as b,
        a.subscribe(channel) as on_a,
        b.subscribe(channel) as on_b,
    ):
        assert a._publisher is not None
        real_publish = a._publisher.publish

        async def refused(*args: Any, **kwargs: Any) -> int:
            raise ConnectionError("Redis refused")

        monkeypatch.setattr(a._publisher, "publish", refused)
        await a.publish(channel, change(1))  # delivered on A only
        assert (await next_message(on_a))["revision"] == 1

        monkeypatch.setattr(a._publisher, "publish", real_publish)
        await a.publish(channel, change(2))
        received = await drain(on_b)
        assert received[0] is RESYNC  # catch up first: revision 1 is in the change log
        assert received[1:] == [change(2)]


async def test_stop_ends_even_when_the_reader_lost_its_cancellation(redis_url: str) -> None:
    hub = RedisHub(redis_url)
    reading = asyncio.Event()

    async def session_that_loses_a_cancellation() -> None:
        reading.set()
        # Lost here, as redis-py can lose one that lands as a command completes.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    hub._session = session_that_loses_a_cancellation  # type: ignore[method-assign]
    await hub.start()
    await reading.wait()
    async with asyncio.timeout(WAIT_S):
        await hub.stop()


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    delays = [backoff_delay(attempt, base=0.1, cap=5.0) for attempt in range(12)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(2.5 <= delay <= 5.0 for delay in delays[7:])
    assert len({round(d, 6) for d in delays[7:]}) > 1  # jittered, not in step
    assert backoff_delay(10_000) <= 5.0


def test_make_hub_picks_redis_only_when_redis_url_is_set(tmp_path: Any) -> None:
    assert isinstance(make_hub(Settings(redis_url=None, var_dir=tmp_path)), MemoryHub)
    hub = make_hub(Settings(redis_url="redis://127.0.0.1:1/0", var_dir=tmp_path))
    assert isinstance(hub, RedisHub)
