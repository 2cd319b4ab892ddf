"""Retention: the audit trail moves to archive files after a year and still verifies across
the cut; the change log and finished background runs go after their ages; the commands.

The world is built on clocks set relative to now: entries written 500 and 10 days ago, and now.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select

from app import clock
from app.clock import FixedClock
from app.db import tables as t
from app.db.session import Database
from app.domain.plants.jssp import parse_jssp, to_plant_data
from app.realtime.hub import MemoryHub
from app.services import retention
from app.services.audit import verify_archives, verify_chain
from app.services.context import SYSTEM, Actor, Services
from app.services.plant_loading import load_plant
from app.services.schedule import changes_since
from app.services.tasks import update_task
from app.settings import Settings

MANAGER = Actor(user_id=None, role="manager")
SCHEDULER = Actor(user_id=None, role="scheduler")
SHOP = """\
2 2
0 3  1 2
1 2  0 1
"""


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(
        database_url=database_url, var_dir=tmp_path / "var", redis_url=None, change_feed_window=3
    )
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    yield services
    await services.db.dispose()


class History:
    """A plant whose tasks were renamed long ago, lately and now."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.versions: dict[int, int] = {}
        self.task_ids: list[int] = []

    async def load(self, days_ago: float) -> None:
        with clock.use(FixedClock(clock.now() - timedelta(days=days_ago))):
            start = clock.now() + timedelta(hours=1)
            plant = to_plant_data(parse_jssp(SHOP, name="s"), start=start)
            loaded = await load_plant(services=self.services, actor=SYSTEM, plant=plant)
        self.task_ids = sorted(loaded.tasks.values())

    async def renames(self, count: int, days_ago: float) -> None:
        with clock.use(FixedClock(clock.now() - timedelta(days=days_ago))):
            for number in range(count):
                task_id = self.task_ids[number % len(self.task_ids)]
                view = await update_task(
                    services=self.services,
                    actor=MANAGER,
                    task_id=task_id,
                    expected_version=self.versions.get(task_id, 1),
                    changes={"name": f"Renamed {days_ago:.0f} {number}"},
                )
                self.versions[task_id] = int(view["version"])


async def count(services: Services, table: type[t.Base]) -> int:
    async with services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def history(services: Services) -> History:
    past = History(services)
    await past.load(days_ago=500)
    await past.renames(5, days_ago=500)
    await past.renames(3, days_ago=10)
    await past.renames(2, days_ago=0)
    return past


async def test_old_audit_entries_move_to_files_and_the_chain_verifies_across_the_cut(
    services: Services, tmp_path: Path
) -> None:
    await history(services)
    total = await count(services, t.AuditEntry)
    async with services.db.read() as session:
        old = await session.scalar(
            select(func.count())
            .select_from(t.AuditEntry)
            .where(t.AuditEntry.at < clock.now() - timedelta(days=400))
        )
    assert old and old < total

    folder = tmp_path / "archive"
    moved, files = await retention.archive_audit(
        services=services, actor=SYSTEM, before=clock.now() - timedelta(days=400), into=folder
    )

    assert moved == old and len(files) == 1 and (folder / files[0]).is_file()
    # What stays: the newer entries, and one saying what was archived.
    assert await count(services, t.AuditEntry) == total - old + 1
    chain = await verify_chain(services)
    assert chain.intact and (chain.archived, chain.archive_files) == (old, 1)
    assert (await verify_archives(services, folder)).intact
    # Nothing more to move: no file, no entry.
    assert await retention.archive_audit(
        services=services, actor=SYSTEM, before=clock.now() - timedelta(days=400), into=folder
    ) == (0, [])
    assert await count(services, t.AuditEntry) == total - old + 1


async def test_a_changed_or_missing_archive_file_and_a_deleted_entry_are_found(
    services: Services, tmp_path: Path
) -> None:
    await history(services)
    folder = tmp_path / "archive"
    _, files = await retention.archive_audit(
        services=services, actor=SYSTEM, before=clock.now() - timedelta(days=400), into=folder
    )
    path = folder / files[0]
    with gzip.open(path, "rt") as packed:
        lines = [json.loads(line) for line in packed]
    lines[1]["after"] = {"name": "Forged"}
    with gzip.open(path, "wt") as forged:
        forged.writelines(json.dumps(line) + "\n" for line in lines)
    problem = (await verify_archives(services, folder)).archive_problem
    assert problem is not None and "changed after it was written" in problem
    path.unlink()
    problem = (await verify_archives(services, folder)).archive_problem
    assert problem is not None and "missing" in problem

    # The first entry left in the database no longer continues the archive once deleted.
    async with services.db.write() as session:
        first = await session.scalar(select(func.min(t.AuditEntry.id)))
        await session.execute(delete(t.AuditEntry).where(t.AuditEntry.id == first))
    assert not (await verify_chain(services)).intact


async def test_archiving_in_stretches_keeps_the_newest_entry_and_new_changes_chain_on(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = await history(services)
    monkeypatch.setattr(retention, "AUDIT_STRETCH", 4)
    folder = tmp_path / "archive"
    moved, files = await retention.archive_audit(
        services=services, actor=SYSTEM, before=clock.now() + timedelta(days=1), into=folder
    )
    assert len(files) >= 3 and moved > 8
    # Every stretch says what it did, and the newest entry of the trail before it stays.
    await past.renames(1, days_ago=0)
    check = await verify_archives(services, folder)
    assert check.intact and check.archived == moved and check.archive_files == len(files)


async def test_the_change_log_keeps_its_age_and_the_feed_window(services: Services) -> None:
    await history(services)
    async with services.db.read() as session:
        revision = await session.scalar(select(func.max(t.ChangeLogEntry.revision)))
    assert revision is not None

    gone = await retention.compact_change_log(
        services=services, actor=SYSTEM, before=clock.now() - timedelta(days=30)
    )

    # The changes of 500 days ago went; those of 10 days ago and now are younger (or in
    # the feed's window of 3 revisions) and stay.
    assert gone == 6
    async with services.db.read() as session:
        left = sorted((await session.execute(select(t.ChangeLogEntry.revision))).scalars())
    assert left == list(range(revision - 4, revision + 1))
    # A board that was away since before the cut reloads; one a revision behind resumes.
    assert (await changes_since(services=services, actor=SCHEDULER, since=1)).reload
    recent = await changes_since(services=services, actor=SCHEDULER, since=revision - 1)
    assert not recent.reload and len(recent.changes) == 1


async def test_finished_background_runs_go_after_their_age_and_running_ones_stay(
    services: Services,
) -> None:
    now = clock.now()
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    rows = [
        ("old-done", "done", old, old),
        ("old-failed", "failed", old, old),
        ("old-active", "active", old, None),
        ("recent-done", "done", recent, recent),
    ]
    async with services.db.write() as session:
        await session.execute(
            insert(t.BackgroundRun),
            [
                {
                    "id": run_id,
                    "kind": "plan.optimize",
                    "payload": {},
                    "status": status,
                    "timeout_s": 60.0,
                    "created_at": created,
                    "due_at": created,
                    "finished_at": finished,
                    "attempt_log": [],
                }
                for run_id, status, created, finished in rows
            ],
        )

    gone = await retention.purge_finished_runs(
        services=services, actor=SYSTEM, before=now - timedelta(days=30)
    )

    assert gone == 2
    async with services.db.read() as session:
        left = set((await session.execute(select(t.BackgroundRun.id))).scalars())
    assert left == {"old-active", "recent-done"}


async def test_the_sweeps_chore_runs_at_once_then_not_again_until_it_is_due(
    services: Services,
) -> None:
    await history(services)
    chore = retention.when_due(services)
    done = await chore()
    assert done is not None and done.archived_entries > 0
    assert await chore() is None


# --- the commands --------------------------------------------------------------------------------


def test_takt_retention_run_then_audit_verify_with_the_archives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'takt.db'}")
    monkeypatch.setenv("TAKT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["migrate"]) == 0
    with clock.use(FixedClock(clock.now() - timedelta(days=500))):
        assert main(["demo"]) == 0
    assert main(["api-key", "create", "--name", "MES bridge", "--role", "scheduler"]) == 0
    capsys.readouterr()

    assert main(["retention", "run"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("Archived ") and "older than 400 days to 1 file in" in said
    assert main(["audit", "verify", "--archives"]) == 0
    said = capsys.readouterr().out
    assert "The audit chain is intact" in said and "opened and recomputed" in said

    (archived,) = (tmp_path / "var" / "archive").glob("audit-*.jsonl.gz")
    archived.write_bytes(archived.read_bytes()[:-8])
    assert main(["audit", "verify"]) == 0  # the database's own chain still links up
    capsys.readouterr()
    assert main(["audit", "verify", "--archives"]) == 1
    assert "an audit archive does not verify" in capsys.readouterr().err


async def test_sessions_and_refresh_tokens_that_ended_long_ago_go_and_live_ones_stay(
    services: Services,
) -> None:
    now = clock.now()
    long_ago, lately = now - timedelta(days=40), now - timedelta(days=5)
    async with services.db.write() as session:
        user = t.User(username="vera", role="scheduler", created_at=long_ago)
        session.add(user)
        await session.flush()

        def record(
            name: str, *, ended: object = None, expires: object = None
        ) -> t.PageSessionRecord:
            return t.PageSessionRecord(
                id=name,
                user_id=user.id,
                role="scheduler",
                started_at=long_ago,
                expires_at=expires or now + timedelta(hours=8),
                ended_at=ended,
            )

        def token(name: str, *, revoked: object = None, expires: object = None) -> t.RefreshToken:
            return t.RefreshToken(
                jti=name,
                family="f",
                user_id=user.id,
                issued_at=long_ago,
                expires_at=expires or now + timedelta(days=5),
                revoked_at=revoked,
            )

        session.add_all(
            [
                record("ended-long-ago", ended=long_ago),
                record("expired-long-ago", expires=long_ago),
                record("ended-lately", ended=lately),
                record("live"),
                token("revoked-long-ago", revoked=long_ago),
                token("expired-long-ago", expires=long_ago),
                token("revoked-lately", revoked=lately),
                token("live"),
            ]
        )

    gone = await retention.purge_ended_sessions(
        services=services, actor=SYSTEM, before=now - timedelta(days=30)
    )

    assert gone == 2
    async with services.db.read() as session:
        left = set((await session.execute(select(t.PageSessionRecord.id))).scalars())
        tokens = set((await session.execute(select(t.RefreshToken.jti))).scalars())
    assert left == {"ended-lately", "live"}
    assert tokens == {"revoked-lately", "live"}
