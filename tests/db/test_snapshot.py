"""`Database.snapshot()`: a read whose statements all see one committed state.

The board reads a schedule's revision first and its bars, conflicts and counts
after it; a move committed in between must not show up half-way, or what is
kept as "the window's conflicts at revision R" would hold a later plan (and on
PostgreSQL's default READ COMMITTED each statement sees its own moment).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from app import clock
from app.db import tables
from app.db.session import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        async with database.write() as session:
            session.add(
                tables.Schedule(name="probe", kind="draft", revision=7, created_at=clock.now())
            )
        yield database
    finally:
        await database.dispose()


def revision_of(name: str) -> object:
    return select(tables.Schedule.revision).where(tables.Schedule.name == name)


async def test_a_snapshot_does_not_see_a_change_committed_while_it_reads(db: Database) -> None:
    async with db.snapshot() as session:
        assert await session.scalar(revision_of("probe")) == 7  # type: ignore[call-overload]
        async with db.write() as writer:
            await writer.execute(
                update(tables.Schedule).where(tables.Schedule.name == "probe").values(revision=8)
            )
        assert await session.scalar(revision_of("probe")) == 7  # type: ignore[call-overload]
    async with db.read() as session:
        assert await session.scalar(revision_of("probe")) == 8  # type: ignore[call-overload]


async def test_a_read_sees_each_statements_own_moment_where_the_snapshot_does_not(
    db: Database,
) -> None:
    """What the snapshot is for: on PostgreSQL a plain read transaction sees the change
    half-way (SQLite's reads are snapshots either way)."""
    async with db.read() as session, session.begin():
        assert await session.scalar(revision_of("probe")) == 7  # type: ignore[call-overload]
        async with db.write() as writer:
            await writer.execute(
                update(tables.Schedule).where(tables.Schedule.name == "probe").values(revision=8)
            )
        seen = await session.scalar(revision_of("probe"))  # type: ignore[call-overload]
    assert seen == (7 if db.is_sqlite else 8)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_snapshot_refuses_writes_and_leaves_its_connection_as_it_was(
    db: Database,
) -> None:
    with pytest.raises(DBAPIError, match="read-only"):
        async with db.snapshot() as session:
            await session.execute(text("UPDATE schedules SET revision = 9 WHERE name = 'probe'"))
    # The pool's connections are shared: reads after a snapshot are READ COMMITTED
    # again, and writes work.
    for _ in range(3):
        async with db.snapshot() as session:
            await session.scalar(text("SELECT 1"))
    async with db.read() as session:
        level = await session.scalar(text("SHOW transaction_isolation"))
        assert level == "read committed"
    async with db.write() as session:
        await session.execute(text("UPDATE schedules SET revision = 9 WHERE name = 'probe'"))
    async with db.read() as session:
        assert await session.scalar(revision_of("probe")) == 9  # type: ignore[call-overload]
