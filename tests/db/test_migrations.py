"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from app import clock
from app.db import tables
from app.db.migrate import downgrade, upgrade
from app.db.session import Database


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, tables.Base.metadata))


async def inspect_database(url: str) -> tuple[list[Any], list[str], list[tuple[Any, ...]]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(schema_differences)
            names = await connection.run_sync(lambda c: sorted(inspect(c).get_table_names()))
            live = (
                await connection.execute(
                    select(
                        tables.Schedule.id,
                        tables.Schedule.name,
                        tables.Schedule.revision,
                        tables.Schedule.timezone,
                    ).where(tables.Schedule.kind == "live")
                )
                if "schedules" in names
                else None
            )
            rows = [tuple(row) for row in live] if live is not None else []
    finally:
        await engine.dispose()
    return differences, names, rows


async def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    upgrade(empty_database_url)

    differences, _, live = await inspect_database(empty_database_url)

    assert differences == []
    assert live == [(1, "Live plan", 0, "UTC")]


async def test_downgrade_to_base_and_upgrade_again(empty_database_url: str) -> None:
    upgrade(empty_database_url)

    downgrade(empty_database_url, "base")
    _, names, _ = await inspect_database(empty_database_url)
    assert names == ["alembic_version"]

    upgrade(empty_database_url)
    differences, _, live = await inspect_database(empty_database_url)
    assert differences == []
    assert len(live) == 1


async def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    upgrade(database_url)

    differences, _, live = await inspect_database(database_url)
    assert differences == []
    assert len(live) == 1


async def test_a_draft_after_the_live_schedule_gets_a_new_id(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.write() as session:
            draft = tables.Schedule(
                name="Draft", kind="draft", base_revision=0, created_at=clock.now()
            )
            session.add(draft)
        assert draft.id == 2
    finally:
        await db.dispose()
