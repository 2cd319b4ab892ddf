"""The dashboard wall's figures: one `Dashboard` per plan revision and plant-local hour.

    cache.current()
      one small read: the live schedule's revision and time zone
      same (revision, hour) as last time → the figures computed then
      else → load the plan, validate it, compute every KPI; callers that
              arrive meanwhile wait for that one computation

However many walls are open, a change costs one computation per process.
The hour is part of the key because time moves when the plan does not:
throughput buckets, "today", lateness and what is down now depend on `now`.
Looking at the wall is an access to a sensitive report, so `open_wall`
audits it (an audit entry, no plan revision).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app import clock
from app.db import tables as t
from app.db.plan_queries import load_plan, schedule_revision
from app.domain.kpis import Dashboard, dashboard
from app.domain.plan import Plan
from app.domain.validation import validate_plan
from app.services.access import require
from app.services.context import Actor, Services
from app.services.offload import offload
from app.services.write_path import record_access

__all__ = ["DashboardCache", "WallFigures", "open_wall"]


@dataclass(frozen=True, slots=True)
class WallFigures:
    revision: int
    # The plant-local clock hour the figures were computed in (its start, in UTC).
    hour: datetime
    dashboard: Dashboard
    # How long loading, validating and computing took (milliseconds).
    compute_ms: float

    @property
    def key(self) -> str:
        """Changes exactly when the figures do: a new revision or a new hour."""
        return f"{self.revision}@{int(self.hour.timestamp())}"


class DashboardCache:
    """The latest figures of this process, shared by every wall it serves."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.computations = 0
        self._figures: WallFigures | None = None
        self._lock = asyncio.Lock()

    @property
    def latest(self) -> WallFigures | None:
        return self._figures

    async def current(self, *, now: datetime | None = None) -> WallFigures:
        """The figures for the plan as it is now (computed only if the key moved)."""
        now = now or clock.now()
        revision, timezone = await self._revision_and_zone()
        hour = plant_hour(now, timezone)
        cached = self._figures
        if cached is not None and (cached.revision, cached.hour) == (revision, hour):
            return cached
        async with self._lock:
            cached = self._figures
            if cached is not None and (cached.revision, cached.hour) == (revision, hour):
                return cached  # computed while we waited
            self._figures = await self._compute(now)
            return self._figures

    async def _revision_and_zone(self) -> tuple[int, str]:
        schedule_id = await self.services.live_schedule_id()
        query = select(t.Schedule.revision, t.Schedule.timezone).where(t.Schedule.id == schedule_id)
        async with self.services.db.read() as session:
            row = (await session.execute(query)).one()
        return int(row.revision or 0), row.timezone or "UTC"

    async def _compute(self, now: datetime) -> WallFigures:
        began = time.perf_counter()
        schedule_id = await self.services.live_schedule_id()
        # One transaction: the revision is the one the plan was read at.
        async with self.services.db.read() as session, session.begin():
            revision = await schedule_revision(session, schedule_id)
            plan = await load_plan(session, schedule_id)
        figures = await offload(_figures, plan, now)
        self.computations += 1
        return WallFigures(
            revision=revision,
            hour=plant_hour(now, plan.timezone),
            dashboard=figures,
            compute_ms=(time.perf_counter() - began) * 1000,
        )


def _figures(plan: Plan, now: datetime) -> Dashboard:
    """Validation and KPIs of the whole plan: pure and heavy, so run off the loop."""
    return dashboard(plan, validate_plan(plan, now=now), now=now, timezone=plan.timezone)


def plant_hour(now: datetime, timezone: str) -> datetime:
    """The start of the plant-local clock hour holding `now`, in UTC."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


async def open_wall(*, services: Services, actor: Actor, cache: DashboardCache) -> WallFigures:
    """The wall for someone opening it: allowed for reports.read, and audited."""
    require(actor, "reports.read")
    figures = await cache.current()
    await record_access(services, actor, "report.viewed", "report", details={"report": "wall"})
    return figures
