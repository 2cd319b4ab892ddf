"""Engines and sessions for SQLite (embedded) and PostgreSQL (production).

Writes and reads are opened separately: on SQLite a write transaction starts
with `BEGIN IMMEDIATE` so two writers queue on the lock (busy timeout) instead
of failing half-way with "database is locked"; reads never take that lock.
On PostgreSQL both use the same pooled engine.

A read that must be of one revision (the board, its live changes, its
conflicts) opens a `snapshot()`: on PostgreSQL a REPEATABLE READ, read-only
transaction, since READ COMMITTED sees each statement's own moment and a
change committed half-way through would mix two revisions; on SQLite every
read transaction already sees one snapshot from its first read on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long a client is asked to wait when the database is away (a restart takes seconds).
RETRY_AFTER_S = 5


class Database:
    def __init__(self, url: str, *, pool_size: int = 20, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=False, echo=echo)
            self.write_engine = _sqlite_engine(url, immediate=True, echo=echo)
        else:
            self.engine = _create_engine(
                url, pool_size=pool_size, max_overflow=pool_size // 2, pool_pre_ping=True, echo=echo
            )
            self.write_engine = self.engine
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._snapshot = (
            self._reader
            if self.is_sqlite
            else async_sessionmaker(
                self.engine.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                ),
                expire_on_commit=False,
            )
        )
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction whose statements all see the same committed state."""
        async with self._snapshot() as session, session.begin():
            yield session

    @asynccontextmanager
    async def glance(self) -> AsyncIterator[AsyncSession]:
        """A session for one statement that needs no snapshot: the checks every request
        makes (a Bearer token's login, a page session). On PostgreSQL it runs outside a
        transaction, which spares the BEGIN and ROLLBACK round trips a read session
        costs (under the seeds' load, starting transactions was ~10 % of an instance's
        CPU); on SQLite those are in-process and cheap, so it is a plain read."""
        if self.is_sqlite:
            async with self.read() as session:
                yield session
            return
        async with self.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(bind=connection, expire_on_commit=False) as session:
                yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._writer() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


def _sqlite_engine(url: str, *, immediate: bool, echo: bool) -> AsyncEngine:
    engine = _create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot be reached right now.

    A restart, a crash, a refused or reset connection, an exhausted pool, SQLite
    locked past its busy timeout: nothing wrong with the request, so the answer is
    503 with Retry-After (app/api/errors.py), not 500. Looks through the chain of
    causes, since SQLAlchemy and the drivers wrap each other's errors.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _unavailable_itself(current):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def _unavailable_itself(error: BaseException) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(
        error,
        exc.OperationalError | exc.InterfaceError | exc.TimeoutError | exc.DisconnectionError,
    ):
        return True
    if isinstance(error, ConnectionError | TimeoutError):
        return True  # refused, reset, aborted, broken pipe; a connect that timed out
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # pragma: no cover - asyncpg is installed with Takt
        return False
    return isinstance(
        error,
        pg.PostgresConnectionError  # connection lost, refused, failed
        | pg.OperatorInterventionError  # admin or crash shutdown, starting up
        | pg.TooManyConnectionsError
        | pg.InterfaceError,  # "connection is closed" and the like
    )


def _create_engine(url: str, **options: Any) -> AsyncEngine:
    # Looked up when called: tracing (app/tracing.py) wraps the factory once it is on.
    return sqlalchemy_asyncio.create_async_engine(url, **options)
