"""Alembic environment for SQLite (embedded) and PostgreSQL (production).

The URL comes from `config.attributes["url"]` (set by `app.db.migrate`) or
else from `Settings().database_url` (DATABASE_URL). Async drivers (aiosqlite,
asyncpg) are driven on a private event loop, so this works from plain sync
code such as the CLI. A caller that already holds a sync connection can pass
it as `config.attributes["connection"]` (Alembic's cookbook recipe for
`AsyncConnection.run_sync`).
"""

from __future__ import annotations

import asyncio
import logging.config
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.tables import Base
from app.settings import Settings

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("url")
    return str(url) if url else Settings().database_url


def configure_options(connection_or_url: Connection | str) -> dict[str, Any]:
    is_sqlite = (
        connection_or_url.dialect.name == "sqlite"
        if isinstance(connection_or_url, Connection)
        else make_url(connection_or_url).get_backend_name() == "sqlite"
    )
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        "render_as_batch": is_sqlite,
    }


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **configure_options(url)
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **configure_options(connection))
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_coroutine_blocking(url: str) -> None:
    """Run the async migration to completion without touching any caller's loop."""

    def run_on_fresh_loop() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(run_async_migrations(url))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run_on_fresh_loop()
        return
    # Called from inside a running loop (a test, say): block on another thread.
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(run_on_fresh_loop).result()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = database_url()
    if make_url(url).get_dialect().is_async:
        run_coroutine_blocking(url)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as sync_connection:
            do_run_migrations(sync_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
