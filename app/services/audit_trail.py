"""Reading the audit trail: newest first, filtered, a page at a time.

    page = await read_trail(services=s, actor=a, query=TrailQuery(entity="task"))

The trail grows by every change the plant makes (millions of entries over a
year), so a page is found by id (`before`: the smallest id of the page shown)
and never counted. Entries name their actor by id only (the trail holds no
personal data); the page looks the usernames up beside it, and an erased or
deleted account shows as its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from app.db import tables as t
from app.services.access import require
from app.services.context import Actor, Services

PAGE_SIZE = 50

# The distinct kinds by hopping along the (entity, entity_id) index from one kind to the
# next: a few index probes, where SELECT DISTINCT would read the whole trail.
_KINDS = text(
    "WITH RECURSIVE kinds(entity) AS ("
    " SELECT MIN(entity) FROM audit_entries"
    " UNION ALL"
    " SELECT (SELECT MIN(entity) FROM audit_entries WHERE entity > kinds.entity)"
    " FROM kinds WHERE kinds.entity IS NOT NULL)"
    " SELECT entity FROM kinds WHERE entity IS NOT NULL"
)


@dataclass(frozen=True, slots=True)
class TrailQuery:
    entity: str = ""
    entity_id: int | None = None
    actor_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Show entries older than this id (the next page); None: the newest.
    before: int | None = None


@dataclass(frozen=True, slots=True)
class TrailEntry:
    id: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    entity: str
    entity_id: int | None
    revision: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash: str


@dataclass(frozen=True, slots=True)
class TrailPage:
    entries: list[TrailEntry]
    # The id to pass as `before` for the next (older) page; None: no older entries.
    next_before: int | None


async def read_trail(*, services: Services, actor: Actor, query: TrailQuery) -> TrailPage:
    require(actor, "audit.read")
    audit = t.AuditEntry
    statement = select(audit).order_by(audit.id.desc()).limit(PAGE_SIZE + 1)
    if query.entity:
        statement = statement.where(audit.entity == query.entity)
    if query.entity_id is not None:
        statement = statement.where(audit.entity_id == query.entity_id)
    if query.actor_id is not None:
        statement = statement.where(audit.actor_id == query.actor_id)
    if query.since is not None:
        statement = statement.where(audit.at >= query.since)
    if query.until is not None:
        statement = statement.where(audit.at < query.until)
    if query.before is not None:
        statement = statement.where(audit.id < query.before)
    async with services.db.read() as session:
        found = list((await session.execute(statement)).scalars())
        names = await _usernames(session, {e.actor_id for e in found if e.actor_id is not None})
    shown = found[:PAGE_SIZE]
    entries = [_entry(entry, names) for entry in shown]
    more = len(found) > PAGE_SIZE
    return TrailPage(entries, shown[-1].id if more else None)


async def entity_kinds(*, services: Services, actor: Actor) -> list[str]:
    """The kinds of entity the trail speaks of (the choices of the entity filter)."""
    require(actor, "audit.read")
    async with services.db.read() as session:
        found = await session.execute(_KINDS)
        return [str(kind) for (kind,) in found]


async def actor_named(*, services: Services, actor: Actor, username: str) -> int | None:
    """The id of the account called `username` (for the actor filter), if there is one."""
    require(actor, "audit.read")
    async with services.db.read() as session:
        return await session.scalar(
            select(t.User.id).where(t.User.username == username.strip().lower())
        )


async def _usernames(session: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(t.User.id, t.User.username).where(t.User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


def _entry(entry: t.AuditEntry, names: dict[int, str]) -> TrailEntry:
    if entry.actor_id is None:
        who = "system"
    else:
        who = names.get(entry.actor_id, f"user #{entry.actor_id}")
    return TrailEntry(
        id=entry.id,
        at=entry.at,
        actor_id=entry.actor_id,
        actor=who,
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        revision=entry.revision,
        before=entry.before,
        after=entry.after,
        hash=entry.hash,
    )
