"""Which workers are alive: each running worker beats, and anyone can count the beats.

A run's row says which worker runs it and beats while it runs, but a queue
whose only worker was killed has no row to say so: its runs simply wait.
So every process that takes runs also announces itself:

    with Redis   SET {queue}:worker:{id} <info> EX TTL_S    every BEAT_S
                 SADD {queue}:workers {id}                  (the index to read)
    embedded     this process, when it takes runs (it starts its worker on demand)

`alive()` reads the index and the keys that have not expired (a killed
worker's key is gone TTL_S after its last beat) and forgets the rest. Redis
keeps the time, so the machines' clocks need not agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import ConnectionPool, Redis

log = logging.getLogger(__name__)

BEAT_S = 3.0
# A worker missing about three beats in a row counts as gone.
TTL_S = 10


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    started_at: datetime
    concurrency: int
    running: int

    def as_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "started_at": self.started_at.isoformat(),
                "concurrency": self.concurrency,
                "running": self.running,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> WorkerInfo:
        found: dict[str, Any] = json.loads(raw)
        return cls(
            id=str(found["id"]),
            started_at=datetime.fromisoformat(found["started_at"]),
            concurrency=int(found["concurrency"]),
            running=int(found["running"]),
        )


class Workers(Protocol):
    async def beat(self, info: WorkerInfo) -> None: ...

    async def leave(self, worker_id: str) -> None: ...

    async def alive(self) -> list[WorkerInfo]: ...


class LocalWorkers:
    """Embedded: the only worker is this process's own, if it runs one."""

    def __init__(self, me: WorkerInfo | None) -> None:
        self._me = me

    async def beat(self, info: WorkerInfo) -> None:
        self._me = info

    async def leave(self, worker_id: str) -> None:
        return None  # it runs again with the next run

    async def alive(self) -> list[WorkerInfo]:
        return [self._me] if self._me is not None else []


class RedisWorkers:
    """Every worker process of one queue (the app's too, with TAKT_QUEUE_WORKER=true)."""

    def __init__(self, pool: ConnectionPool, queue_name: str) -> None:
        self.pool = pool
        self.index = f"{queue_name}:workers"
        self.prefix = f"{queue_name}:worker:"

    async def beat(self, info: WorkerInfo) -> None:
        async with Redis(connection_pool=self.pool) as redis:
            await redis.set(self.prefix + info.id, info.as_json(), ex=TTL_S)
            await redis.sadd(self.index, info.id)

    async def leave(self, worker_id: str) -> None:
        async with Redis(connection_pool=self.pool) as redis:
            await redis.delete(self.prefix + worker_id)
            await redis.srem(self.index, worker_id)

    async def alive(self) -> list[WorkerInfo]:
        async with Redis(connection_pool=self.pool) as redis:
            ids = sorted(_text(found) for found in await redis.smembers(self.index))
            if not ids:
                return []
            infos = await redis.mget([self.prefix + worker_id for worker_id in ids])
            gone = [worker_id for worker_id, info in zip(ids, infos, strict=True) if info is None]
            if gone:
                await redis.srem(self.index, *gone)
        return [WorkerInfo.from_json(info) for info in infos if info is not None]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def beat_until(workers: Workers, me: Callable[[], WorkerInfo], finish: asyncio.Event) -> None:
    """Beat every BEAT_S until `finish`, then leave. Ends by itself on `finish` (a
    cancellation that redis-py swallows would not end it)."""
    failing = False
    while not finish.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finish.wait(), BEAT_S)
        if finish.is_set():
            break
        try:
            await workers.beat(me())
            failing = False
        except Exception as exc:  # Redis is away: the queue is too; say so once
            if not failing:
                log.warning("job queue: could not announce this worker: %s", exc)
            failing = True
    with contextlib.suppress(Exception):
        await workers.leave(me().id)


# How long a listener that ended by surprise waits before it listens again.
RELISTEN_S = 0.5


async def listen_until(listen: Callable[[], Awaitable[None]], finish: asyncio.Event) -> None:
    """Run `listen` (taskiq's receiver) until `finish`, starting it again whenever it
    ends before then: one Redis error it did not survive must not leave a worker that
    beats but takes no run (the beats say it is alive, so nothing else would notice)."""
    while not finish.is_set():
        try:
            await listen()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.warning("job queue: the listener was cancelled from inside; listening again")
        except Exception:
            log.exception("job queue: the listener failed; listening again")
        if not finish.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finish.wait(), RELISTEN_S)
