"""Two taskiq brokers that hand out the highest priority first and honour `delay`.

taskiq's own `InMemoryBroker` runs a task the moment it is kicked (nothing
waits, so there is nothing to order, and nothing bounds how many run), and
its `ListQueueBroker` keeps one Redis list in arrival order. Neither reads
the `delay` label that taskiq's retry middleware puts on a retry, so a
retry would come back at once instead of after its backoff. These subclass
them and change only where a message waits:

- `LocalPriorityBroker` (embedded): an in-process heap, newest-last within
  a priority; a delayed message joins it when its delay is up.
- `RedisPriorityBroker` (with Redis): one list per priority, popped with one
  BRPOP over the lists from the highest priority down (Redis pops the first
  non-empty one); a delayed message waits in a sorted set scored by when it
  is due, and whichever worker moves it first (ZREM answers 1) queues it.

Either is read by taskiq's own `Receiver`, which takes a message only when
an execution slot is free (`max_prefetch=0`), so the priority decides what
runs next.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from taskiq import InMemoryBroker
from taskiq.message import BrokerMessage
from taskiq_redis import ListQueueBroker

PRIORITIES = range(10)
DEFAULT_PRIORITY = 5
# How often a Redis worker looks for delayed messages that are due.
REDIS_POLL_S = 0.5

log = logging.getLogger(__name__)


def priority_of(labels: Mapping[str, Any]) -> int:
    try:
        found = int(labels.get("priority", DEFAULT_PRIORITY))
    except (TypeError, ValueError):
        return DEFAULT_PRIORITY
    return min(max(found, PRIORITIES.start), PRIORITIES.stop - 1)


def delay_of(labels: Mapping[str, Any]) -> float:
    try:
        return max(0.0, float(labels.get("delay") or 0))
    except (TypeError, ValueError):
        return 0.0


class LocalPriorityBroker(InMemoryBroker):
    """taskiq's in-memory broker, but queued: a `Receiver` takes the highest priority first."""

    def __init__(self) -> None:
        super().__init__(max_stored_results=1000)
        self._heap: list[tuple[int, int, bytes]] = []
        self._order = itertools.count()
        self._ready = asyncio.Event()
        self._timers: dict[int, asyncio.TimerHandle] = {}

    async def kick(self, message: BrokerMessage) -> None:
        delay = delay_of(message.labels)
        if delay <= 0:
            self._push(message)
            return
        key = next(self._order)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._due, key, message)

    def _due(self, key: int, message: BrokerMessage) -> None:
        self._timers.pop(key, None)
        self._push(message)

    def _push(self, message: BrokerMessage) -> None:
        entry = (-priority_of(message.labels), next(self._order), message.message)
        heapq.heappush(self._heap, entry)
        self._ready.set()

    async def listen(self) -> AsyncGenerator[bytes, None]:
        while True:
            while not self._heap:
                self._ready.clear()
                await self._ready.wait()
            yield heapq.heappop(self._heap)[2]

    def waiting(self) -> int:
        return len(self._heap) + len(self._timers)

    async def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        await super().shutdown()


class RedisPriorityBroker(ListQueueBroker):
    """taskiq-redis's list broker with one list per priority and delayed retries."""

    def _list(self, priority: int) -> str:
        return f"{self.queue_name}:p{priority}"

    @property
    def _delayed(self) -> str:
        return f"{self.queue_name}:delayed"

    async def kick(self, message: BrokerMessage) -> None:
        delay = delay_of(message.labels)
        async with Redis(connection_pool=self.connection_pool) as redis:
            if delay > 0:
                await redis.zadd(self._delayed, {message.message: time.time() + delay})
            else:
                await redis.lpush(self._list(priority_of(message.labels)), message.message)

    async def listen(self) -> AsyncGenerator[bytes, None]:
        lists = [self._list(p) for p in reversed(PRIORITIES)]
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    await self._queue_due(redis)
                    found = await redis.brpop(lists, timeout=REDIS_POLL_S)
            except RedisConnectionError as exc:
                log.warning("job queue: Redis connection error: %s", exc)
                await asyncio.sleep(REDIS_POLL_S)
                continue
            if found is not None:
                yield _raw(found[1])

    async def _queue_due(self, redis: Redis) -> None:
        due = await redis.zrangebyscore(self._delayed, "-inf", time.time())
        for raw in map(_raw, due):
            if await redis.zrem(self._delayed, raw):
                labels = self.formatter.loads(raw).labels
                await redis.lpush(self._list(priority_of(labels)), raw)

    async def waiting(self) -> int:
        async with Redis(connection_pool=self.connection_pool) as redis:
            counts = [await redis.llen(self._list(p)) for p in PRIORITIES]
            return sum(counts) + int(await redis.zcard(self._delayed))


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
