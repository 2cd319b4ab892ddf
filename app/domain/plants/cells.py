"""One cell of a plant data file: how each kind of value is written and read.

    time          2026-12-07 06:00+01:00   (plant time; without an offset: plant time;
                                           an Excel date cell: plant time)
    list          milling; drilling
    skills        milling:5; testing:3     (level 1-5)
    shifts        Mon 06:00-14:00; Tue 22:00-06:00   (ending before it starts: overnight)
    windows       START/END (reason); START/END
    routings      CNC mill 07: 45; CNC mill 08: 50   (equipment name: minutes)

Every reader raises `ValueError` with a message a manager understands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, time
from zoneinfo import ZoneInfo

from app.domain.bounds import horizon_error
from app.domain.plan import WeeklyShift
from app.domain.plants.layout import Cell

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SHIFT = re.compile(r"^(\w{3})\w*\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$")
_WINDOW = re.compile(r"^(?P<start>[^/]+)/(?P<end>[^(]+?)\s*(?:\((?P<reason>[^)]*)\))?$")


def text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


def whole_number(value: Cell, *, low: int, high: int) -> int:
    raw = text(value)
    try:
        number = int(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"{number} is not between {low} and {high}")
    return number


def plant_time(value: Cell, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        found = value
    else:
        raw = text(value).replace("Z", "+00:00")
        try:
            found = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(
                f"{raw!r} is not a date and time like 2026-12-07 06:00 or 2026-12-07 06:00+01:00"
            ) from None
    aware = found if found.tzinfo is not None else found.replace(tzinfo=zone)
    problem = horizon_error(aware)
    if problem is not None:
        raise ValueError(problem)
    return aware


def time_cell(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return local.isoformat(sep=" ", timespec="seconds" if local.second else "minutes")


def items(value: Cell) -> list[str]:
    return [part.strip() for part in text(value).split(";") if part.strip()]


def joined(values: Iterable[str]) -> str:
    return "; ".join(values)


def skills(value: Cell) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items(value):
        skill, colon, level = item.rpartition(":")
        if not colon or not skill.strip():
            raise ValueError(f"{item!r} is not a skill with its level, like milling:3")
        if skill.strip() in found:
            raise ValueError(f"skill {skill.strip()!r} is listed twice")
        found[skill.strip()] = whole_number(level.strip(), low=1, high=5)
    return found


def skills_cell(levels: Mapping[str, int]) -> str:
    return joined(f"{skill}:{level}" for skill, level in sorted(levels.items()))


def shifts(value: Cell) -> tuple[WeeklyShift, ...]:
    found = []
    for item in items(value):
        match = _SHIFT.match(item)
        day = match.group(1).title() if match else ""
        if match is None or day not in WEEKDAYS:
            raise ValueError(f"{item!r} is not a shift like Mon 06:00-14:00")
        start, end = _clock(match.group(2)), _clock(match.group(3))
        if start == end:
            raise ValueError(f"the shift {item!r} starts when it ends")
        found.append(WeeklyShift(WEEKDAYS.index(day), start, end))
    return tuple(found)


def shifts_cell(weekly: Iterable[WeeklyShift]) -> str:
    return joined(
        f"{WEEKDAYS[s.weekday]} {s.start:%H:%M}-{s.end:%H:%M}"
        for s in sorted(weekly, key=lambda s: (s.weekday, s.start))
    )


def _clock(raw: str) -> time:
    hours, minutes = (int(part) for part in raw.split(":"))
    if hours > 23 or minutes > 59:
        raise ValueError(f"{raw} is not a time of day")
    return time(hours, minutes)


def windows(value: Cell, zone: ZoneInfo) -> list[tuple[datetime, datetime, str]]:
    found = []
    for item in items(value):
        match = _WINDOW.match(item)
        if match is None:
            raise ValueError(f"{item!r} is not a period like START/END (reason)")
        start = plant_time(match["start"].strip(), zone)
        end = plant_time(match["end"].strip(), zone)
        if end <= start:
            raise ValueError(f"the period {item!r} does not end after it starts")
        found.append((start, end, (match["reason"] or "").strip()))
    return found


def windows_cell(periods: Iterable[tuple[datetime, datetime, str]], zone: ZoneInfo) -> str:
    parts = []
    for start, end, reason in sorted(periods):
        clean = reason.replace(";", ",").replace("(", "[").replace(")", "]").strip()
        part = f"{time_cell(start, zone)}/{time_cell(end, zone)}"
        parts.append(f"{part} ({clean})" if clean else part)
    return joined(parts)


def routings(value: Cell) -> list[tuple[str, int]]:
    found = []
    for item in items(value):
        name, colon, minutes = item.rpartition(":")
        if not colon or not name.strip():
            raise ValueError(f"{item!r} is not equipment with minutes, like CNC mill 07: 45")
        found.append((name.strip(), whole_number(minutes.strip(), low=1, high=100_000)))
    return found


def routings_cell(alternatives: Iterable[tuple[str, int]]) -> str:
    return joined(f"{name}: {minutes}" for name, minutes in alternatives)
