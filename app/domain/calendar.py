"""When an operator can work: a weekly pattern in the plant's local time,
plus extra shifts, minus time off, as sorted and merged UTC intervals.

Weekly shifts are wall-clock times in the plant's IANA zone, so a 06:00-14:00
shift starts at 06:00 local on both sides of a DST change (its UTC length
changes on the night of the change). A wall-clock time that does not exist
(spring forward) is read with the offset in force before the change, as
`zoneinfo` does, which moves it forward by the gap; an ambiguous one (fall
back) means its first occurrence.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from app.domain.plan import Equipment, EquipmentStatus, Interval, Operator, WeeklyShift

_DAY = timedelta(days=1)


def availability(operator: Operator, timezone: str, horizon: Interval) -> list[Interval]:
    """The operator's working time within `horizon`, sorted and merged, in UTC.

    Touching intervals are merged, so back-to-back shifts cover a slot that
    spans the handover. Results are cached per calendar and horizon.
    """
    return list(
        _expand(
            operator.weekly_shifts,
            operator.extra_shifts,
            operator.time_off,
            timezone,
            horizon,
        )
    )


def covers(available: Sequence[Interval], interval: Interval) -> bool:
    """Whether `interval` lies wholly inside one interval of merged `available`."""
    index = bisect_right(available, interval.start, key=_start) - 1
    return index >= 0 and available[index].end >= interval.end


def week_horizon(start: datetime, end: datetime) -> Interval:
    """The whole UTC weeks (Monday 00:00) around [start, end].

    Callers that ask for availability over week-aligned horizons share cache
    entries, e.g. every drag within the same week.
    """
    first = start.astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    monday = first - timedelta(days=first.weekday())
    next_monday = last + timedelta(days=7 - last.weekday())
    return Interval(_utc_midnight(monday), _utc_midnight(next_monday))


@lru_cache(maxsize=4096)
def _expand(
    weekly: tuple[WeeklyShift, ...],
    extra: tuple[Interval, ...],
    time_off: tuple[Interval, ...],
    timezone: str,
    horizon: Interval,
) -> tuple[Interval, ...]:
    shifts = [*_weekly_intervals(weekly, ZoneInfo(timezone), horizon), *extra]
    working = _subtract(merge(shifts), merge(time_off))
    return tuple(_clip(working, horizon))


def _weekly_intervals(
    weekly: tuple[WeeklyShift, ...], zone: ZoneInfo, horizon: Interval
) -> Iterable[Interval]:
    if not weekly or horizon.end <= horizon.start:
        return
    # One local day of margin on each side: a night shift that starts the day
    # before the horizon can still reach into it.
    day = horizon.start.astimezone(zone).date() - _DAY
    last = horizon.end.astimezone(zone).date() + _DAY
    while day <= last:
        for shift in weekly:
            if shift.weekday == day.weekday():
                yield _shift_on(shift, day, zone)
        day += _DAY


def _shift_on(shift: WeeklyShift, day: date, zone: ZoneInfo) -> Interval:
    end_day = day if shift.end > shift.start else day + _DAY
    start = datetime.combine(day, shift.start, tzinfo=zone)
    end = datetime.combine(end_day, shift.end, tzinfo=zone)
    return Interval(start.astimezone(UTC), end.astimezone(UTC))


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and merge overlapping or touching intervals; drop empty ones."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1].end:
            if end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, end)
        else:
            merged.append(Interval(start, end))
    return merged


def _subtract(working: list[Interval], away: list[Interval]) -> list[Interval]:
    """`working` minus `away`; both sorted and merged."""
    result: list[Interval] = []
    index = 0
    for start, end in working:
        while index < len(away) and away[index].end <= start:
            index += 1
        cursor = start
        probe = index
        while probe < len(away) and away[probe].start < end:
            if away[probe].start > cursor:
                result.append(Interval(cursor, away[probe].start))
            cursor = max(cursor, away[probe].end)
            probe += 1
        if cursor < end:
            result.append(Interval(cursor, end))
    return result


def _clip(intervals: list[Interval], horizon: Interval) -> Iterable[Interval]:
    for start, end in intervals:
        start, end = max(start, horizon.start), min(end, horizon.end)
        if start < end:
            yield Interval(start, end)


def _start(interval: Interval) -> datetime:
    return interval.start


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def operator_off_time(operator: Operator, timezone: str, window: Interval) -> list[Interval]:
    """The parts of `window` the operator does not work: outside their shifts or in time
    off (what `outside_shift` refuses), sorted and merged."""
    working = availability(operator, timezone, week_horizon(window.start, window.end))
    return _subtract([window], working)


def equipment_off_time(equipment: Equipment, window: Interval, now: datetime) -> list[Interval]:
    """The parts of `window` the machine cannot be used (what `equipment_unavailable`
    refuses): its downtime windows, and from now until it is expected back while it is
    down or in maintenance."""
    off = list(equipment.downtime)
    if equipment.status is not EquipmentStatus.AVAILABLE:
        off.append(Interval(max(now, window.start), equipment.expected_back or window.end))
    return list(_clip(merge(off), window))
