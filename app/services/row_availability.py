"""What each row of the board shows behind its bars: when its resource cannot work
(outside shifts and in time off for operators, downtime and out-of-service time
for machines: the time `outside_shift` and `equipment_unavailable` refuse), and
how full it is (the booked share of its available time in the window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.db import board_queries as q
from app.db.plan_queries import load_equipment, load_operators
from app.domain.calendar import equipment_off_time, merge, operator_off_time
from app.domain.plan import Interval

ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class RowAvailability:
    off: list[Interval]
    # Booked share of the resource's available time in the window (None: none available).
    load: float | None


async def row_availability(
    session: AsyncSession,
    schedule_id: int,
    *,
    rows: str,
    window: Interval,
    resources: list[q.Resource],
    timezone: str,
) -> dict[int, RowAvailability]:
    """Per row (by resource id): its unavailable time in the window, and its utilization."""
    ids = [resource.id for resource in resources]
    now = clock.now()
    if rows == "operator":
        operators = await load_operators(session, ids)
        off = {i: operator_off_time(o, timezone, window) for i, o in operators.items()}
    else:
        machines = await load_equipment(session, ids)
        off = {i: equipment_off_time(m, window, now) for i, m in machines.items()}
    booked = await q.booked_in_window(
        session, schedule_id, start=window.start, end=window.end, rows=rows, row_ids=ids
    )
    found: dict[int, RowAvailability] = {}
    for row_id in ids:
        away = off.get(row_id, [])
        open_time = (window.end - window.start) - sum((b.end - b.start for b in away), ZERO)
        slots = merge(Interval(start, end) for start, end in booked.get(row_id, []))
        busy = sum((min(s.end, window.end) - max(s.start, window.start) for s in slots), ZERO)
        found[row_id] = RowAvailability(away, None if open_time <= ZERO else busy / open_time)
    return found
