"""A run queue on a migrated database, without Redis (in-process) and with it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from app.background.queue import RunQueue
from app.db.session import Database

BROKERS = [pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest) -> str | None:
    """None: the embedded in-process broker; else a Redis URL (each test its own queue)."""
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def db(sqlite_database_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def one_at_a_time(db: Database, broker_url: str | None) -> AsyncIterator[RunQueue]:
    """A queue whose worker runs one run at a time, so the waiting ones line up."""
    queue = RunQueue(
        db=db,
        redis_url=broker_url,
        concurrency=1,
        queue_name=f"takt-test:{uuid.uuid4().hex}",
    )
    try:
        yield queue
    finally:
        await queue.stop()
