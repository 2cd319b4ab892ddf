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
runs next. Either answers which runs it holds, waiting or delayed, and at
what priority (`queued`), so the sweep can tell a run whose message was lost.
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
from redis.exceptions import RedisError
from taskiq import InMemoryBroker
from taskiq.message import BrokerMessage
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

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
        self._heap: list[tuple[int, int, BrokerMessage]] = []
        self._order = itertools.count()
        self._ready = asyncio.Event()
        self._timers: dict[int, tuple[BrokerMessage, asyncio.TimerHandle]] = {}

    async def kick(self, message: BrokerMessage) -> None:
        delay = delay_of(message.labels)
        if delay <= 0:
            self._push(message)
            return
        key = next(self._order)
        loop = asyncio.get_running_loop()
        self._timers[key] = (message, loop.call_later(delay, self._due, key, message))

    def _due(self, key: int, message: BrokerMessage) -> None:
        self._timers.pop(key, None)
        self._push(message)

    def _push(self, message: BrokerMessage) -> None:
        heapq.heappush(self._heap, (-priority_of(message.labels), next(self._order), message))
        self._ready.set()

    async def listen(self) -> AsyncGenerator[bytes, None]:
        while True:
            while not self._heap:
                self._ready.clear()
                await self._ready.wait()
            yield heapq.heappop(self._heap)[2].message

    def waiting(self) -> int:
        return len(self._heap) + len(self._timers)

    async def queued(self) -> dict[str, int]:
        """The priority of each run with a message here (its id), waiting or delayed."""
        messages = [entry[2] for entry in self._heap] + [m for m, _ in self._timers.values()]
        return {message.task_id: priority_of(message.labels) for message in messages}

    async def shutdown(self) -> None:
        for _, timer in self._timers.values():
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
            if _cancel_lost():
                raise asyncio.CancelledError
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    await self._queue_due(redis)
                    found = await redis.brpop(lists, timeout=REDIS_POLL_S)
                    if found is not None and _cancel_lost():
                        # Back to the end BRPOP took it from: the next worker's first.
                        await redis.rpush(found[0], found[1])
                        raise asyncio.CancelledError
            except RedisError as exc:  # away, timed out, loading: wait and ask again
                log.warning("job queue: Redis error while waiting for jobs: %s", exc)
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

    async def queued(self) -> dict[str, int]:
        """The priority of each run with a message here (its id), waiting or delayed.

        Reads every message: the sweep's, once a minute, not for a request.
        """
        async with Redis(connection_pool=self.connection_pool) as redis:
            found: list[Any] = []
            for priority in PRIORITIES:
                found += await redis.lrange(self._list(priority), 0, -1)
            found += await redis.zrange(self._delayed, 0, -1)
        messages = [self.formatter.loads(_raw(raw)) for raw in found]
        return {message.task_id: priority_of(message.labels) for message in messages}


def _cancel_lost() -> bool:
    """Was this task cancelled, and carried on? A cancellation that lands as a redis-py
    command completes can be lost (seen with redis-py 8 on Python 3.11): the task counts
    it, the code goes on, and a stopping worker would wait for a message forever."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def make_broker(
    redis_url: str | None, queue_name: str
) -> LocalPriorityBroker | RedisPriorityBroker:
    """In-process without Redis; else Redis lists under `queue_name` (results kept a day)."""
    if redis_url is None:
        return LocalPriorityBroker()
    backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(redis_url, result_ex_time=86400)
    broker = RedisPriorityBroker(redis_url, queue_name=queue_name)
    return broker.with_result_backend(backend)
