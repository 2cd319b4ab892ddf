"""An empty plant on a throwaway SQLite file: schema, one live schedule, no Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest

from app import clock
from app.db.session import Database
from app.db.tables import Base, Operator, Schedule
from app.realtime.hub import MemoryHub
from app.services.context import SYSTEM, Services
from app.services.users import create_user
from app.settings import Settings


class Account(NamedTuple):
    user_id: int
    username: str
    password: str


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'takt.db'}",
        redis_url=None,
        var_dir=tmp_path,
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    db = Database(settings.database_url)
    async with db.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with db.write() as session:
        session.add(Schedule(name="Live plan", kind="live", created_at=clock.now()))
    yield Services(settings=settings, db=db, hub=MemoryHub())
    await db.dispose()


@pytest.fixture
async def operator_id(services: Services) -> int:
    async with services.db.write() as session:
        operator = Operator(name="Ada Operator")
        session.add(operator)
        await session.flush()
        return operator.id


@pytest.fixture
async def scheduler_account(services: Services) -> Account:
    password = "correct horse battery staple"
    user = await create_user(
        services=services, actor=SYSTEM, username="sam", password=password, role="scheduler"
    )
    return Account(user.id, "sam", password)
