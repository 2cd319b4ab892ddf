"""The change log read back as the hub's messages, for what Redis did not deliver.

`change()` publishes each commit once, at most once (Redis pub/sub); the
change log keeps it for good. While the hub cannot deliver, an instance feeds
its subscribers from here (app/realtime/backfill.py).
"""

from __future__ import annotations

from sqlalchemy import select

from app.db import tables as t
from app.db.plan_queries import schedule_revision
from app.realtime.backfill import Backlog, ReadBacklog
from app.services.context import Services
from app.services.write_path import schedule_of_channel


def backlog_reader(services: Services) -> ReadBacklog:
    async def read(channel: str, after: int | None, limit: int) -> Backlog | None:
        return await backlog(services=services, channel=channel, after=after, limit=limit)

    return read


async def backlog(
    *, services: Services, channel: str, after: int | None, limit: int
) -> Backlog | None:
    """The changes on `channel` after revision `after`; None for a channel of no schedule.

    The revision alone when nothing is newer (one indexed lookup: the common case).
    """
    schedule_id = schedule_of_channel(channel)
    if schedule_id is None:
        return None
    c = t.ChangeLogEntry
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        if after is None or revision <= after:
            return Backlog(revision, [])
        rows = (
            await session.execute(
                select(c.revision, c.kind, c.entity_ids, c.actor_id)
                .where(c.schedule_id == schedule_id, c.revision > after)
                .order_by(c.revision)
                .limit(limit)
            )
        ).all()
    # The shape `change()` publishes (without `committed_at`: it measures live pushes).
    messages = [
        {
            "schedule_id": schedule_id,
            "revision": row.revision,
            "kind": row.kind,
            "entities": row.entity_ids,
            "actor_id": row.actor_id,
        }
        for row in rows
    ]
    return Backlog(revision, messages)
