"""The board's rows in blocks: what a board fetches as it scrolls.

The page carries the bars of its first `ROW_PAGE` rows only (a week of the
large plant is ~4,800 bars on 100 machines, 320 operators); board.js asks
for the next blocks of rows as they come into sight, and for the block
holding a task it is asked to show (a conflict's "go to").
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db import board_queries as q, tables as t
from app.db.plan_queries import schedule_revision, schedule_timezone
from app.domain.conflicts import Conflict
from app.services.access import require
from app.services.board import BoardScope, bars_on, conflicts_on, rows_of
from app.services.context import Actor, Services

# At most this many rows in one block (a few screens).
MOST_ROWS = 100


@dataclass(frozen=True, slots=True)
class RowBlock:
    revision: int
    timezone: str
    # Every row of the view (a bar's row index counts in these).
    resources: list[q.Resource]
    first: int
    last: int  # exclusive
    bars: list[q.PlacedTask]
    conflicts: list[Conflict]


async def row_block(
    *, services: Services, actor: Actor, scope: BoardScope, first: int, count: int
) -> RowBlock:
    """The bars of rows `first` to `first + count` (clamped to the view's rows)."""
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        resources = await rows_of(session, scope)
        first = max(0, min(first, len(resources)))
        last = min(len(resources), first + max(0, min(count, MOST_ROWS)))
        shown = {resource.id for resource in resources[first:last]}
        bars = await bars_on(session, schedule_id, scope, shown)
        ids = {bar.task_id for bar in bars}
        conflicts = await conflicts_on(services, session, schedule_id, revision, scope, ids)
        timezone = await schedule_timezone(session, schedule_id)
    return RowBlock(revision, timezone, resources, first, last, bars, conflicts)


async def row_of_task(
    *, services: Services, actor: Actor, scope: BoardScope, task_id: int
) -> int | None:
    """The index of the row the task's bar sits on in this view; None when not on the plan
    or not on one of the view's rows."""
    require(actor, "plan.read")
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        placed = await session.get(t.Assignment, {"schedule_id": schedule_id, "task_id": task_id})
        if placed is None:
            return None
        resources = await rows_of(session, scope)
    wanted = placed.equipment_id if scope.rows == "equipment" else placed.operator_id
    return next((index for index, r in enumerate(resources) if r.id == wanted), None)
