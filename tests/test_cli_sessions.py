"""`takt sessions list|end`: an admin sees who is signed in where and signs them out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli import main
from app.db import tables
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services import sessions
from app.services.context import Services
from app.settings import Settings


@pytest.fixture
def migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'takt.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TAKT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["migrate"]) == 0
    password = tmp_path / "password"
    password.write_text("correct horse battery\n")
    for name in ("anna", "ben"):
        args = ["create-user", name, "--role", "scheduler", "--password-file", str(password)]
        assert main(args) == 0
    capsys.readouterr()
    return url


def sign_in(database_url: str, username: str) -> str:
    """A session as the login page opens it; its id."""

    async def run() -> str:
        services = Services(settings=Settings(), db=Database(database_url), hub=MemoryHub())
        try:
            async with services.db.read() as db:
                user = await db.scalar(select(tables.User).where(tables.User.username == username))
            assert user is not None
            return (await sessions.open_session(services=services, user=user)).id
        finally:
            await services.db.dispose()

    return asyncio.run(run())


def is_live(database_url: str, session_id: str) -> bool:
    async def run() -> bool:
        services = Services(settings=Settings(), db=Database(database_url), hub=MemoryHub())
        try:
            return await sessions.live_session(services=services, session_id=session_id) is not None
        finally:
            await services.db.dispose()

    return asyncio.run(run())


def test_list_and_end_sessions(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    desk, tablet, other = (sign_in(migrated, name) for name in ("anna", "anna", "ben"))
    assert main(["sessions", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(found in listing for found in (desk, tablet, other))
    assert main(["sessions", "list", "--user", "ben"]) == 0
    assert desk not in capsys.readouterr().out

    assert main(["sessions", "end", tablet]) == 0
    assert "Ended 1 session" in capsys.readouterr().out
    assert not is_live(migrated, tablet) and is_live(migrated, desk)
    assert main(["sessions", "end", tablet]) == 1
    assert "no live session" in capsys.readouterr().err

    assert main(["sessions", "end", "--user", "anna"]) == 0
    assert "Ended 1 session" in capsys.readouterr().out
    assert not is_live(migrated, desk) and is_live(migrated, other)
    assert main(["sessions", "list", "--all"]) == 0
    assert "ended" in capsys.readouterr().out
    assert main(["sessions", "end"]) == 1
    assert main(["sessions", "end", "--user", "nobody"]) == 1
