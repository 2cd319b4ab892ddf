"""The one write path. Every change to the plant goes through `change()`.

    async with change(ctx, actor, "assignment.moved") as tx:
        task = await tx.claim(tables.Task, task_id, expected_version)   # 412 if stale
        ...mutate rows through tx.session; a task's slot through tx.place()/tx.unplace()...
        tx.audit("task", task_id, before=..., after=...)
    # committed here; then published

Inside one transaction `change()`:
1. lets the caller check versions (`claim` bumps a row's version only if it
   still has the version the client saw) and write its rows;
2. takes the schedule's next revision (the UPDATE also serialises writers, so
   the audit hash chain stays linear);
3. writes one change-log row for the revision and the audit entries, each
   hash-chained to the one before;
4. commits, and only then publishes the change on the hub.

`record_access()` audits a look at a sensitive report the same way, without
a change: no revision, no change-log row, nothing published.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock, tracing
from app.db import tables
from app.db.batches import chunks
from app.domain.conflicts import Conflict
from app.services import placing
from app.services.context import Actor, Services
from app.services.errors import NotFound, PreconditionRequired, VersionMismatch

Row = TypeVar("Row", bound=tables.Base)

# Bulk inserts go to the Core tables: no ORM bookkeeping per row.
AUDIT_ENTRIES = cast(Table, tables.AuditEntry.__table__)

GENESIS_HASH = "0" * 64


@dataclass
class Transaction:
    session: AsyncSession
    actor: Actor
    kind: str
    schedule_id: int
    touched: dict[str, set[int]] = field(default_factory=dict)
    audits: list[dict[str, Any]] = field(default_factory=list)
    revision: int | None = None
    # What validation found for a changed task in this transaction: published with the
    # change, so no instance has to validate the task again to show it (`found`).
    conflicts: dict[int, list[Conflict]] = field(default_factory=dict)

    def found(self, task_id: int, conflicts: list[Conflict]) -> None:
        """`conflicts_in` of `task_id` as this transaction leaves it."""
        self.conflicts[task_id] = list(conflicts)

    async def claim(self, table: type[Row], row_id: int, expected_version: int | None) -> Row:
        """Load a versioned row for change and bump its version.

        With `expected_version` the bump happens only if the row still has it
        (one conditional UPDATE, so two writers can never both win).
        """
        version_col = table.version  # type: ignore[attr-defined]
        stmt = update(table).where(table.id == row_id)  # type: ignore[attr-defined]
        if expected_version is not None:
            stmt = stmt.where(version_col == expected_version)
        result = await self.session.execute(
            stmt.values(version=version_col + 1).execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            current = await self.session.get(table, row_id)
            if current is None:
                raise NotFound(table.__tablename__, row_id)
            raise VersionMismatch(
                entity=table.__tablename__,
                entity_id=row_id,
                current_version=current.version,  # type: ignore[attr-defined]
                changed_by=await _last_actor(self.session, table.__tablename__, row_id),
            )
        row = await self.session.get(table, row_id, populate_existing=True)
        assert row is not None
        return row

    async def claim_all(
        self, table: type[Row], expected: Mapping[int, int]
    ) -> dict[int, int | None]:
        """Bump the versions of many rows at once; those not at the expected version.

        One `UPDATE ... WHERE id IN (...) RETURNING id, version` per chunk: a row
        whose new version is not its expected one + 1 was changed by someone
        else (its current version is returned; None: the row is gone). The
        caller raises, which rolls every bump back. On PostgreSQL the UPDATE
        holds the rows' locks until commit, as `claim` does.
        """
        version_col = table.version  # type: ignore[attr-defined]
        id_col = table.id  # type: ignore[attr-defined]
        bumped: dict[int, int] = {}
        for ids in chunks(sorted(expected)):
            result = await self.session.execute(
                update(table)
                .where(id_col.in_(ids))
                .values(version=version_col + 1)
                .returning(id_col, version_col)
                .execution_options(synchronize_session=False)
            )
            bumped.update((int(row_id), int(version)) for row_id, version in result)
        return {
            row_id: None if row_id not in bumped else bumped[row_id] - 1
            for row_id, version in expected.items()
            if bumped.get(row_id) != version + 1
        }

    async def place(
        self,
        task: tables.Task,
        placement: placing.Placement,
        *,
        slot: tables.Assignment | None = None,
    ) -> tables.Assignment:
        """Book a claimed task into `placement` (`placing.place`)."""
        return await placing.place(self, task, placement, slot=slot)

    async def unplace(self, task: tables.Task, *, slot: tables.Assignment | None = None) -> None:
        """Put a claimed task back in the tray (`placing.unplace`)."""
        await placing.unplace(self, task, slot=slot)

    async def place_all(
        self, task_ids: Sequence[int], proposed: Mapping[int, placing.Placement]
    ) -> None:
        """Give claimed tasks their proposed slots, or the tray, set-wise (`placing.place_all`)."""
        await placing.place_all(self, task_ids, proposed)

    def touch(self, entity: str, *ids: int) -> None:
        self.touched.setdefault(entity, set()).update(ids)

    def audit(
        self,
        entity: str,
        entity_id: int | None,
        *,
        before: Mapping[str, object] | None,
        after: Mapping[str, object] | None,
        action: str | None = None,
    ) -> None:
        """Record an audit entry (ids and plan facts only, never personal data)."""
        if entity_id is not None:
            self.touch(entity, entity_id)
        self.audits.append(
            {
                "action": action or self.kind,
                "entity": entity,
                "entity_id": entity_id,
                "before": before,
                "after": after,
            }
        )


@asynccontextmanager
async def change(
    services: Services, actor: Actor, kind: str, *, schedule_id: int | None = None
) -> AsyncIterator[Transaction]:
    schedule = schedule_id if schedule_id is not None else await services.live_schedule_id()
    async with services.db.write() as session:
        tx = Transaction(session=session, actor=actor, kind=kind, schedule_id=schedule)
        yield tx
        await session.flush()
        await _record(tx)
    # Committed by now: when, for measuring commit → a client's receipt (epoch ms).
    committed_at = round(time.time() * 1000, 1)
    message: dict[str, Any] = {
        "schedule_id": tx.schedule_id,
        "revision": tx.revision,
        "kind": tx.kind,
        "entities": {name: sorted(ids) for name, ids in tx.touched.items()},
        "actor_id": actor.user_id,
        "committed_at": committed_at,
    }
    if tx.conflicts:
        message["conflicts"] = {
            str(task_id): [c.as_message() for c in found] for task_id, found in tx.conflicts.items()
        }
    channel = schedule_channel(tx.schedule_id)
    with tracing.span(f"publish {channel}", kind=tracing.SpanKind.PRODUCER):
        # The trace goes along: the push on every instance belongs to this request's trace.
        tracing.inject(message)
        await services.hub.publish(channel, message)


def require_version(expected_version: int | None) -> None:
    """Edits of existing entities must say which version they change (If-Match)."""
    if expected_version is None:
        raise PreconditionRequired("this change needs If-Match with the entity's ETag")


def schedule_channel(schedule_id: int) -> str:
    return f"schedule:{schedule_id}"


def schedule_of_channel(channel: str) -> int | None:
    """The schedule whose changes `channel` carries (None: another kind of channel)."""
    prefix, _, number = channel.partition(":")
    return int(number) if prefix == "schedule" and number.isascii() and number.isdigit() else None


async def _record(tx: Transaction) -> None:
    now = clock.now()
    revision = (
        await tx.session.execute(
            update(tables.Schedule)
            .where(tables.Schedule.id == tx.schedule_id)
            .values(revision=tables.Schedule.revision + 1)
            .returning(tables.Schedule.revision)
        )
    ).scalar_one()
    tx.revision = revision
    tx.session.add(
        tables.ChangeLogEntry(
            schedule_id=tx.schedule_id,
            revision=revision,
            kind=tx.kind,
            entity=_main_entity(tx),
            entity_ids={name: sorted(ids) for name, ids in tx.touched.items()},
            actor_id=tx.actor.user_id,
            created_at=now,
        )
    )
    await _append_audits(tx.session, tx.audits, actor=tx.actor, revision=revision, at=now)


async def record_access(
    services: Services, actor: Actor, action: str, entity: str, *, details: dict[str, Any]
) -> None:
    """Audit a look at something sensitive (a report): an entry, but no change and no revision.

    It queues behind writers on the schedule's row, as `change()` does, so the
    hash chain stays linear; nothing is published.
    """
    schedule_id = await services.live_schedule_id()
    async with services.db.write() as session:
        seen = (
            await session.execute(
                select(tables.Schedule.revision)
                .where(tables.Schedule.id == schedule_id)
                .with_for_update()
            )
        ).scalar_one()
        entry = {
            "action": action,
            "entity": entity,
            "entity_id": None,
            "before": None,
            "after": {**details, "schedule_revision": seen},
        }
        await _append_audits(session, [entry], actor=actor, revision=None, at=clock.now())


@dataclass
class Upkeep:
    """An `upkeep()` block's session, and what its audit entry says it did."""

    session: AsyncSession
    done: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def upkeep(services: Services, actor: Actor, action: str) -> AsyncIterator[Upkeep]:
    """Housekeeping that changes no plan (retention, archiving): the schedule's row lock
    first, as `change()` takes it, so two of them (or one and a writer) never interleave;
    one audit entry with `done` (none when it did nothing); no revision, nothing published."""
    schedule_id = await services.live_schedule_id()
    async with services.db.write() as session:
        await session.execute(
            select(tables.Schedule.revision)
            .where(tables.Schedule.id == schedule_id)
            .with_for_update()
        )
        work = Upkeep(session)
        yield work
        if not work.done:
            return  # nothing to do this time: nothing to say
        entry = {
            "action": action,
            "entity": "plant",
            "entity_id": None,
            "before": None,
            "after": work.done,
        }
        await _append_audits(session, [entry], actor=actor, revision=None, at=clock.now())


async def _append_audits(
    session: AsyncSession,
    entries: list[dict[str, Any]],
    *,
    actor: Actor,
    revision: int | None,
    at: datetime,
) -> None:
    """Chain `entries` onto the audit trail (the caller holds the schedule's row lock).

    The hashes are chained here and the entries inserted in one executemany, in
    chain order, so ids ascend along the chain (a draft of 7,000 tasks is one
    statement, not 7,000 round trips).
    """
    if not entries:
        return
    prev_hash = (
        await session.execute(
            select(tables.AuditEntry.hash).order_by(tables.AuditEntry.id.desc()).limit(1)
        )
    ).scalar_one_or_none() or GENESIS_HASH
    rows = []
    for entry in entries:
        body = {**entry, "at": at.isoformat(), "actor_id": actor.user_id, "revision": revision}
        digest = audit_hash(prev_hash, body)
        rows.append(
            {
                "at": at,
                "actor_id": actor.user_id,
                "revision": revision,
                "prev_hash": prev_hash,
                "hash": digest,
                **entry,
            }
        )
        prev_hash = digest
    for chunk in chunks(rows):
        await session.execute(insert(AUDIT_ENTRIES), chunk)


def audit_hash(prev_hash: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _main_entity(tx: Transaction) -> str:
    if len(tx.touched) == 1:
        return next(iter(tx.touched))
    return "plan" if tx.touched else "none"


async def last_actors(
    session: AsyncSession, entity: str, entity_ids: Iterable[int]
) -> dict[int, int | None]:
    """Who last changed each of these entities (one query per chunk, not per entity)."""
    found: dict[int, int | None] = {}
    for ids in chunks(sorted(set(entity_ids))):
        rows = await session.execute(
            select(tables.AuditEntry.entity_id, tables.AuditEntry.actor_id)
            .where(tables.AuditEntry.entity == entity, tables.AuditEntry.entity_id.in_(ids))
            .order_by(tables.AuditEntry.id)
        )
        found.update((entity_id, actor_id) for entity_id, actor_id in rows if entity_id is not None)
    return found


async def _last_actor(session: AsyncSession, entity: str, entity_id: int) -> int | None:
    """Who last changed this entity, from the audit trail (for the stale-edit notice)."""
    return (
        await session.execute(
            select(tables.AuditEntry.actor_id)
            .where(tables.AuditEntry.entity == entity, tables.AuditEntry.entity_id == entity_id)
            .order_by(tables.AuditEntry.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
