"""The one write path: version check, audit chain, change log, publish after commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.audit import verify_chain
from app.services.context import SYSTEM, Actor, Services
from app.services.errors import VersionMismatch
from app.services.write_path import change, schedule_channel
from app.settings import Settings

ANNA = Actor(user_id=7, role="scheduler")


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(database_url=database_url, var_dir=tmp_path)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    yield services
    await services.db.dispose()


async def add_lathe(services: Services) -> int:
    async with change(services, SYSTEM, "equipment.created") as tx:
        lathe = t.Equipment(name="Lathe", type="lathe", capabilities=["turning"])
        tx.session.add(lathe)
        await tx.session.flush()
        tx.audit("equipment", lathe.id, before=None, after={"name": "Lathe"})
    return lathe.id


async def test_a_change_gets_the_next_revision_and_is_published_after_commit(
    services: Services,
) -> None:
    channel = schedule_channel(await services.live_schedule_id())
    async with services.hub.subscribe(channel) as subscription:
        lathe = await add_lathe(services)
        message = await subscription.get()
    assert message["revision"] == 1
    assert message["entities"] == {"equipment": [lathe]}
    async with services.db.read() as session:
        assert await session.scalar(select(t.Schedule.revision)) == 1
        entry = (await session.execute(select(t.ChangeLogEntry))).scalar_one()
    assert (entry.revision, entry.kind, entry.entity_ids) == (
        1,
        "equipment.created",
        {"equipment": [lathe]},
    )


async def test_a_failed_change_writes_and_publishes_nothing(services: Services) -> None:
    lathe = await add_lathe(services)
    channel = schedule_channel(await services.live_schedule_id())
    async with services.hub.subscribe(channel) as subscription:
        with pytest.raises(VersionMismatch) as stale:
            async with change(services, ANNA, "equipment.updated") as tx:
                await tx.claim(t.Equipment, lathe, expected_version=5)
        with pytest.raises(RuntimeError):
            async with change(services, ANNA, "equipment.updated") as tx:
                row = await tx.claim(t.Equipment, lathe, expected_version=1)
                row.name = "Renamed"
                raise RuntimeError("boom")
        assert subscription._queue.empty()
    assert stale.value.current_version == 1
    assert stale.value.changed_by is None  # created by the system actor
    async with services.db.read() as session:
        row = await session.get(t.Equipment, lathe)
        assert row is not None and (row.name, row.version) == ("Lathe", 1)
        assert await session.scalar(select(t.Schedule.revision)) == 1


async def test_the_audit_chain_detects_tampering(services: Services) -> None:
    lathe = await add_lathe(services)
    async with change(services, ANNA, "equipment.status_changed") as tx:
        await tx.claim(t.Equipment, lathe, expected_version=1)
        tx.audit("equipment", lathe, before={"status": "available"}, after={"status": "down"})
    check = await verify_chain(services)
    assert check.intact and check.entries == 2

    async with services.db.write() as session:
        await session.execute(
            update(t.AuditEntry)
            .where(t.AuditEntry.action == "equipment.status_changed")
            .values(actor_id=99)
        )
    tampered = await verify_chain(services)
    assert not tampered.intact and tampered.broken_at is not None


async def test_many_rows_are_claimed_at_once_and_the_stale_ones_named(services: Services) -> None:
    """`claim_all` over more rows than one statement takes (CHUNK); a bump that is not
    the expected version + 1 is reported, and the caller's raise undoes every bump."""
    async with change(services, SYSTEM, "equipment.created") as tx:
        machines = [t.Equipment(name=f"M{n}", type="mill", capabilities=[]) for n in range(1005)]
        tx.session.add_all(machines)
    ids = sorted(m.id for m in machines)
    async with change(services, ANNA, "equipment.renamed") as tx:
        await tx.claim(t.Equipment, ids[3], 1)  # someone else's edit: version 2
    expected = {row_id: 1 for row_id in ids} | {999_999: 1}
    with pytest.raises(VersionMismatch):
        async with change(services, ANNA, "bulk") as tx:
            stale = await tx.claim_all(t.Equipment, expected)
            assert stale == {ids[3]: 2, 999_999: None}
            raise VersionMismatch(
                entity="equipment", entity_id=ids[3], current_version=2, changed_by=None
            )
    async with services.db.read() as session:
        versions = dict((await session.execute(select(t.Equipment.id, t.Equipment.version))).all())
    assert versions[ids[3]] == 2 and {versions[i] for i in ids if i != ids[3]} == {1}
    async with change(services, ANNA, "bulk") as tx:
        assert await tx.claim_all(t.Equipment, {i: 1 for i in ids if i != ids[3]}) == {}
        for row_id in ids:
            tx.audit("equipment", row_id, before=None, after={"bulk": True})
    check = await verify_chain(services)
    assert check.intact and check.entries == len(ids)
