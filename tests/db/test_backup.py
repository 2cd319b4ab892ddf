"""A backup taken while schedulers write holds every write acknowledged before it began,
restores into an empty database whole (never half a write), and its audit chain verifies.

Once on SQLite (the online backup API) and once on PostgreSQL (pg_dump / pg_restore on a
throwaway server), through `takt backup` / `takt restore` and the functions under them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from servers import PostgresServer, postgres_bindir
from sqlalchemy import func, select

from app import clock
from app.cli import main
from app.db import tables as t
from app.db.backup import BackupFailed, backup, restore, tables_in
from app.db.session import Database
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.realtime.hub import MemoryHub
from app.services.audit import verify_chain
from app.services.context import SYSTEM, Actor, Services
from app.services.plant_loading import load_plant
from app.services.tasks import update_task
from app.settings import Settings

MANAGER = Actor(user_id=None, role="manager")
SHOP = """\
3 3
0 3  1 2  2 2
0 2  2 1  1 4
1 4  2 3  0 1
"""


@dataclass(frozen=True)
class Pair:
    """A migrated database to back up, an empty one to restore into, and the tools' directory."""

    source: str
    target: str
    pg_bindir: Path | None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    if request.param == "sqlite":
        source = str(request.getfixturevalue("sqlite_database_url"))
        yield Pair(source, f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}", None)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    source = str(request.getfixturevalue("postgres_database_url"))
    empty = server.create_database(prefix="restored")
    yield Pair(source, server.url(empty), postgres_bindir())
    server.drop_database(empty)


def services_on(url: str, tmp_path: Path) -> Services:
    settings = Settings(database_url=url, var_dir=tmp_path / "var", redis_url=None)
    return Services(settings=settings, db=Database(url), hub=MemoryHub())


async def live_revision(services: Services) -> int:
    async with services.db.read() as session:
        query = select(t.Schedule.revision).where(t.Schedule.kind == "live")
        return int((await session.execute(query)).scalar_one())


async def task_names(services: Services) -> dict[int, str]:
    async with services.db.read() as session:
        rows = await session.execute(select(t.Task.id, t.Task.name))
        return {task_id: name for task_id, name in rows}


class Writer:
    """One scheduler renaming tasks in turn; each acknowledged write is one revision."""

    def __init__(self, services: Services, task_ids: list[int], revision: int) -> None:
        self.services = services
        self.task_ids = task_ids
        self.start_revision = revision
        self.versions: dict[int, int] = {}
        self.acknowledged: list[tuple[int, str]] = []  # (task, new name), in revision order

    async def write(self) -> None:
        task_id = self.task_ids[len(self.acknowledged) % len(self.task_ids)]
        name = f"Step {len(self.acknowledged) + 1}"
        view = await update_task(
            services=self.services,
            actor=MANAGER,
            task_id=task_id,
            expected_version=self.versions.get(task_id, 1),
            changes={"name": name},
        )
        self.versions[task_id] = int(view["version"])
        self.acknowledged.append((task_id, name))

    def names_at(self, revision: int, first: dict[int, str]) -> dict[int, str]:
        """Every task's name once the writes up to `revision` had landed."""
        names = dict(first)
        for task_id, name in self.acknowledged[: revision - self.start_revision]:
            names[task_id] = name
        return names


async def test_a_backup_taken_during_writes_restores_every_write_acknowledged_before_it(
    pair: Pair, tmp_path: Path
) -> None:
    source = services_on(pair.source, tmp_path)
    start = (clock.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    await load_plant(
        services=source, actor=SYSTEM, plant=to_plant_data(parse_jssp(SHOP, name="s"), start=start)
    )
    first = await task_names(source)
    writer = Writer(source, sorted(first), await live_revision(source))
    for _ in range(12):
        await writer.write()
    before_backup = len(writer.acknowledged)

    copying = asyncio.create_task(
        asyncio.to_thread(backup, pair.source, tmp_path / "plant.backup", pg_bindir=pair.pg_bindir)
    )
    while not copying.done():  # writes go on while the copy is taken
        await writer.write()
    await copying
    await source.db.dispose()

    restore(pair.target, tmp_path / "plant.backup", pg_bindir=pair.pg_bindir)
    restored = services_on(pair.target, tmp_path)
    try:
        revision = await live_revision(restored)
        # Every write acknowledged before the backup began is in it ...
        assert revision >= writer.start_revision + before_backup
        # ... and the copy is the plant exactly as one revision left it: no half write.
        assert await task_names(restored) == writer.names_at(revision, first)
        async with restored.db.read() as session:
            logged = await session.scalar(select(func.max(t.ChangeLogEntry.revision)))
        assert logged == revision
        chain = await verify_chain(restored)
        assert chain.intact and chain.entries > before_backup
    finally:
        await restored.db.dispose()


def test_a_restore_refuses_a_database_that_is_not_empty(pair: Pair, tmp_path: Path) -> None:
    backup(pair.source, tmp_path / "plant.backup", pg_bindir=pair.pg_bindir)
    with pytest.raises(BackupFailed, match="not empty"):
        restore(pair.source, tmp_path / "plant.backup", pg_bindir=pair.pg_bindir)
    assert tables_in(pair.target, pg_bindir=pair.pg_bindir) == set()


def test_a_backup_never_overwrites_a_file(pair: Pair, tmp_path: Path) -> None:
    there = tmp_path / "there.backup"
    there.write_bytes(b"yesterday's backup")
    with pytest.raises(BackupFailed, match="exists already"):
        backup(pair.source, there, pg_bindir=pair.pg_bindir)
    assert there.read_bytes() == b"yesterday's backup"


# --- the commands --------------------------------------------------------------------------------


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TAKT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TAKT_PLANT_TIMEZONE", "Europe/Berlin")
    monkeypatch.delenv("REDIS_URL", raising=False)
    return tmp_path


def test_takt_backup_then_restore_brings_the_plant_back(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plant = f"sqlite+aiosqlite:///{environment / 'takt.db'}"
    monkeypatch.setenv("DATABASE_URL", plant)
    assert main(["migrate"]) == 0
    assert main(["demo"]) == 0
    capsys.readouterr()

    assert main(["backup"]) == 0
    said = capsys.readouterr().out
    made = list((environment / "var" / "backups").glob("takt-*.sqlite3"))
    assert len(made) == 1 and f"to {made[0]}" in said

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{environment / 'restored.db'}")
    assert main(["restore", str(made[0])]) == 0
    said = capsys.readouterr().out
    assert "Restored" in said and "the audit chain is intact" in said
    assert "150 tasks" in said

    assert main(["restore", str(made[0])]) == 1  # now it holds a plant
    assert "not empty" in capsys.readouterr().err


def test_takt_restore_explains_a_file_that_is_no_backup(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{environment / 'restored.db'}")
    junk = environment / "junk.sqlite3"
    junk.write_bytes(b"not a database at all, just some bytes " * 100)
    assert main(["restore", str(junk)]) == 1
    assert "is not a SQLite backup" in capsys.readouterr().err
    assert main(["restore", str(environment / "missing.sqlite3")]) == 1
    assert "no such backup file" in capsys.readouterr().err
    assert (
        not (environment / "restored.db").exists()
        or tables_in(f"sqlite+aiosqlite:///{environment / 'restored.db'}") == set()
    )
