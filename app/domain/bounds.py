"""What a plant's numbers and times may be: the bounds every edge checks input against.

- Ids are positive and at most `MAX_ID` (18 digits): every id column is a
  64-bit integer, and 18 digits keep a path's `{id}` a plain digit pattern.
- Versions and other counters stored in 32-bit columns stay within `MAX_INT32`.
- Every time lies in the plant horizon `[HORIZON_START, HORIZON_END)` (UTC):
  production plans, history and due dates all fall in this century, and the
  margin to `datetime`'s own limits keeps every conversion (local time, UTC,
  a week either side) from overflowing.
- A slot (one task on the plan) lasts at most `MAX_SLOT`: a task takes at most
  30 days of work, so a longer slot is a mistake, and it bounds the shift
  calendar a validation has to unfold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "HORIZON_END",
    "HORIZON_START",
    "MAX_ID",
    "MAX_INT32",
    "MAX_SLOT",
    "horizon_error",
    "slot_error",
]

MAX_ID = 10**18 - 1
MAX_INT32 = 2**31 - 1
HORIZON_START = datetime(2000, 1, 1, tzinfo=UTC)
HORIZON_END = datetime(2100, 1, 1, tzinfo=UTC)
MAX_SLOT = timedelta(days=31)


def horizon_error(moment: datetime) -> str | None:
    """Why `moment` (aware, or naive in any zone) is outside the horizon; None when inside.

    Looks at the year before converting anything, so a value at the edge of
    `datetime` (year 1 or 9999 with an offset) is refused, not an overflow.
    """
    if not HORIZON_START.year - 1 <= moment.year <= HORIZON_END.year:
        return _outside()
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not HORIZON_START <= aware.astimezone(UTC) < HORIZON_END:
        return _outside()
    return None


def slot_error(start: datetime, end: datetime) -> str | None:
    """Why [start, end) cannot be a slot on the plan; None when it can."""
    if end <= start:
        return "end must be after start"
    if end - start > MAX_SLOT:
        return f"a slot lasts at most {MAX_SLOT.days} days"
    return horizon_error(start) or horizon_error(end)


def _outside() -> str:
    return (
        f"times must lie in the plant horizon, from {HORIZON_START:%Y-%m-%d} "
        f"to before {HORIZON_END:%Y-%m-%d} (UTC)"
    )
