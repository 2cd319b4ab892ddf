"""Reading the audit trail back, and proving it has not been tampered with."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.db import tables as t
from app.services.context import Services
from app.services.write_path import GENESIS_HASH, audit_hash


@dataclass(frozen=True, slots=True)
class ChainCheck:
    entries: int
    # The id of the first entry whose hash or link does not match, if any.
    broken_at: int | None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


async def verify_chain(services: Services) -> ChainCheck:
    """Recompute every entry's hash from its content and the entry before it."""
    prev_hash = GENESIS_HASH
    count = 0
    async with services.db.read() as session:
        rows = await session.stream_scalars(select(t.AuditEntry).order_by(t.AuditEntry.id))
        async for entry in rows:
            count += 1
            body = {
                "action": entry.action,
                "entity": entry.entity,
                "entity_id": entry.entity_id,
                "before": entry.before,
                "after": entry.after,
                "at": entry.at.isoformat(),
                "actor_id": entry.actor_id,
                "revision": entry.revision,
            }
            if entry.prev_hash != prev_hash or entry.hash != audit_hash(prev_hash, body):
                return ChainCheck(count, entry.id)
            prev_hash = entry.hash
    return ChainCheck(count, None)
