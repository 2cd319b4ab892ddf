"""What every service call gets: the running services and who is acting."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.background.queue import RunQueue
from app.db import tables
from app.db.session import Database
from app.realtime.hub import Hub
from app.settings import Settings

ROLES = ("operator", "scheduler", "manager", "admin")


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated principal a change is made by (ids only)."""

    user_id: int | None
    role: str
    operator_id: int | None = None
    # For service keys: the key id; for people: None.
    service_key: str | None = None

    @property
    def principal(self) -> str:
        return f"key:{self.service_key}" if self.service_key else f"user:{self.user_id}"


SYSTEM = Actor(user_id=None, role="admin")


@dataclass
class Services:
    settings: Settings
    db: Database
    hub: Hub
    # The run queue for heavy work (`app.services.background.attach_queue`).
    queue: RunQueue | None = None
    _live_schedule_id: int | None = field(default=None, init=False)
    # What this process has derived from the plan, keyed by what it derives from
    # (a schedule revision among it), so a newer plan never finds an older answer.
    memo: dict[Hashable, Any] = field(default_factory=dict, init=False)

    async def live_schedule_id(self) -> int:
        if self._live_schedule_id is None:
            async with self.db.read() as session:
                found = (
                    await session.execute(
                        select(tables.Schedule.id).where(tables.Schedule.kind == "live")
                    )
                ).scalar_one_or_none()
            if found is None:
                raise LookupError("no live schedule: run `takt migrate` first")
            self._live_schedule_id = found
        return self._live_schedule_id
