"""What one open board looks at, and the contract between the board and the live feed.

A `BoardView` is a window of time, a zoom, a choice of rows and filters. The
page is rendered for a view; the live feed (WebSocket, SSE or polling)
re-renders, for that same view, just what a committed change touched, as
`hx-swap-oob` fragments. The element ids every fragment targets:

    #board-revision   <meta> carrying data-revision: the last revision applied
    #bars             the layer holding every bar of the visible window
    #bar-{task_id}    one bar (absolutely placed: row index and time offset)
    #tray             unscheduled tasks
    #conflicts        the conflict side panel
    #counters         counts in the header (scheduled, unscheduled, conflicts)
    #presence         who else is on the board
    #notice           one-off notices (stale edit refused, reload needed)

Windows are in plant time (the view's `zone`): a day window runs from one
local midnight to the next (23 or 25 hours on the nights the clocks change),
a shift window from 06:00, 14:00 or 22:00 to the next of them, a week is
seven local days; only the hour zoom counts plain hours. `window_start(zoom,
zone, at)` is where the window holding `at` begins:

    hour   the hour before `at` (so `at` is in sight, an hour of history)
    shift  the shift holding `at`: 06-14, 14-22, 22-06 (after midnight too)
    day    the local midnight before `at`
    week   the local midnight of the day before `at`: seven days from
           yesterday, so "now" sits early in the window on any weekday (a
           Monday-to-Sunday week would open on six empty past days on a Sunday)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from app.domain.bounds import horizon_error
from app.routing import ID_DIGITS

Zoom = Literal["hour", "shift", "day", "week"]
Rows = Literal["equipment", "operator"]

UTC_ZONE = ZoneInfo("UTC")
SHIFT_STARTS = (6, 14, 22)

# How much time one screen of the board shows at each zoom.
ZOOM_SPAN: dict[str, timedelta] = {
    "hour": timedelta(hours=4),
    "shift": timedelta(hours=8),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}
# How far a keyboard arrow or a drag snaps at each zoom.
ZOOM_SNAP: dict[str, timedelta] = {
    "hour": timedelta(minutes=5),
    "shift": timedelta(minutes=15),
    "day": timedelta(minutes=15),
    "week": timedelta(hours=1),
}


@dataclass(frozen=True, slots=True)
class BoardView:
    start: datetime
    zoom: Zoom = "day"
    rows: Rows = "equipment"
    job_id: int | None = None
    skill: str | None = None
    equipment_type: str | None = None
    # Plant time: the zone the windows are counted in (not part of the query).
    zone: ZoneInfo = UTC_ZONE

    @property
    def end(self) -> datetime:
        return self._later(1)

    @property
    def snap(self) -> timedelta:
        return ZOOM_SNAP[self.zoom]

    def shifted(self, screens: int) -> BoardView:
        return replace(self, start=self._later(screens))

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def _later(self, screens: int) -> datetime:
        span = ZOOM_SPAN[self.zoom] * screens
        if self.zoom == "hour":
            return self.start + span
        # Wall-clock arithmetic (zoneinfo): 06:00 stays 06:00 and midnight midnight across DST.
        return (self.start.astimezone(self.zone) + span).astimezone(UTC)

    def to_query(self) -> dict[str, str]:
        query = {"start": self.start.isoformat(), "zoom": self.zoom, "rows": self.rows}
        if self.job_id is not None:
            query["job"] = str(self.job_id)
        if self.skill:
            query["skill"] = self.skill
        if self.equipment_type:
            query["type"] = self.equipment_type
        return query

    @classmethod
    def from_query(
        cls, params: Mapping[str, str], *, default_start: datetime, zone: ZoneInfo = UTC_ZONE
    ) -> BoardView:
        """Read a view from query parameters; anything unreadable falls back to a default."""
        zoom = params.get("zoom", "day")
        rows = params.get("rows", "equipment")
        return cls(
            zone=zone,
            start=parse_time(params.get("start")) or default_start,
            zoom=zoom if zoom in ZOOM_SPAN else "day",  # type: ignore[arg-type]
            rows=rows if rows in ("equipment", "operator") else "equipment",  # type: ignore[arg-type]
            job_id=_parse_id(params.get("job")),
            skill=_parse_text(params.get("skill")),
            equipment_type=_parse_text(params.get("type")),
        )


def window_start(zoom: str, zone: ZoneInfo, at: datetime) -> datetime:
    """Where the window of `zoom` that holds `at` begins, in plant time (see the top)."""
    local = at.astimezone(zone)
    if zoom == "hour":
        hour = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return hour - timedelta(hours=1)
    if zoom == "shift":
        begun = [hour for hour in SHIFT_STARTS if hour <= local.hour]
        if not begun:  # before 06:00: the night shift that began yesterday at 22:00
            return _wall(local.date() - timedelta(days=1), SHIFT_STARTS[-1], zone)
        return _wall(local.date(), begun[-1], zone)
    if zoom == "week":
        return _wall(local.date() - timedelta(days=1), 0, zone)
    return _wall(local.date(), 0, zone)


def _wall(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """`hour`:00 plant time on `day`, as aware UTC."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)


def parse_time(raw: str | None) -> datetime | None:
    """A moment from the query (naive: UTC); None when unreadable or outside the
    plant's horizon (`app.domain.bounds`), so no window leaves datetime's range."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if horizon_error(value) is not None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_id(raw: str | None) -> int | None:
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > ID_DIGITS:
        return None
    return int(raw)


def _parse_text(raw: str | None) -> str | None:
    # A filter is a name of at most 100 characters; no database keeps NUL.
    if not raw or len(raw) > 100 or "\x00" in raw:
        return None
    return raw
