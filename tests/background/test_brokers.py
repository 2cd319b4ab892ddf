"""The priority brokers, where the queue tests do not reach."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from app.background.brokers import RedisPriorityBroker


@pytest.mark.redis
async def test_a_redis_listener_that_lost_its_cancellation_still_stops(redis_url: str) -> None:
    broker = RedisPriorityBroker(redis_url, queue_name=f"takt-test:{uuid.uuid4().hex}")

    async def next_message_after_a_lost_cancel() -> bytes:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        # Lost here, as redis-py can lose one that lands as a command completes.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)
        return await anext(broker.listen())

    listening = asyncio.create_task(next_message_after_a_lost_cancel())
    try:
        # An empty queue: without noticing the cancellation it would wait forever.
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await listening
    finally:
        await broker.shutdown()
