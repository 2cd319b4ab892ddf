"""Who is alive: workers beat under a key with a time to live; the index forgets the gone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import ConnectionPool, Redis

from app.background.workers import TTL_S, LocalWorkers, RedisWorkers, WorkerInfo

pytestmark = pytest.mark.redis

STARTED = datetime(2030, 1, 1, tzinfo=UTC)


def worker(name: str, running: int = 0) -> WorkerInfo:
    return WorkerInfo(id=name, started_at=STARTED, concurrency=2, running=running)


async def test_beating_workers_are_alive_and_the_gone_are_forgotten(redis_url: str) -> None:
    pool = ConnectionPool.from_url(redis_url)
    workers = RedisWorkers(pool, f"takt-test:{uuid.uuid4().hex}")
    try:
        assert await workers.alive() == []
        await workers.beat(worker("a"))
        await workers.beat(worker("b"))
        await workers.beat(worker("a", running=1))  # a beat replaces the last
        assert await workers.alive() == [worker("a", running=1), worker("b")]

        async with Redis(connection_pool=pool) as redis:
            assert 0 < await redis.ttl(workers.prefix + "a") <= TTL_S
            await redis.delete(workers.prefix + "b")  # as if its time to live ran out
        assert await workers.alive() == [worker("a", running=1)]
        async with Redis(connection_pool=pool) as redis:
            assert await redis.smembers(workers.index) == {b"a"}

        await workers.leave("a")
        assert await workers.alive() == []
    finally:
        await pool.disconnect()


async def test_embedded_the_app_is_its_own_worker() -> None:
    assert await LocalWorkers(worker("app")).alive() == [worker("app")]
    assert await LocalWorkers(None).alive() == []
