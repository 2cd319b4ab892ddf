"""`Database.glance()`: the one-statement reads every request makes, outside a transaction.

The Bearer-token and page-session checks run on every API call, page, socket and
stream; on PostgreSQL a read session wraps each in BEGIN … ROLLBACK, two round
trips more than the statement itself. A glance answers like a read and leaves the
connection out of any transaction; writes still see their own transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text

from app.db import tables
from app.db.session import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def db(postgres_database_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def in_transaction(session: object) -> bool:
    connection = await session.connection()  # type: ignore[attr-defined]
    raw = await connection.get_raw_connection()
    return bool(raw.driver_connection.is_in_transaction())


async def test_a_glance_answers_like_a_read_outside_any_transaction(db: Database) -> None:
    count = select(func.count()).select_from(tables.User)
    async with db.read() as session:
        expected = await session.scalar(count)
        assert await in_transaction(session)  # a read session: BEGIN … ROLLBACK
    async with db.glance() as session:
        assert await session.scalar(count) == expected
        assert not await in_transaction(session)


async def test_a_connection_lent_to_a_glance_comes_back_transactional(db: Database) -> None:
    """The pool's connections are shared: after a glance, reads and writes on the same
    connection begin their transactions as before."""
    for _ in range(3):
        async with db.glance() as session:
            await session.scalar(text("SELECT 1"))
    async with db.write() as session:
        await session.execute(text("SELECT 1"))
        assert await in_transaction(session)
    async with db.read() as session:
        await session.scalar(text("SELECT 1"))
        assert await in_transaction(session)
