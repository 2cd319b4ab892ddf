"""Worlds for the real-time tests: a Redis of the test's own that it may kill and restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import RedisServer, start_redis


@pytest.fixture
def restartable_redis(redis_url: str) -> Iterator[RedisServer]:
    """A throwaway Redis for one test, to kill and restart (the session's must survive).

    Asking for `redis_url` first makes a missing redis-server skip, or fail under CI.
    """
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
