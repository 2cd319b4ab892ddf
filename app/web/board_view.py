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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from app.domain.bounds import horizon_error
from app.routing import ID_DIGITS

Zoom = Literal["hour", "shift", "day", "week"]
Rows = Literal["equipment", "operator"]

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

    @property
    def end(self) -> datetime:
        return self.start + ZOOM_SPAN[self.zoom]

    @property
    def snap(self) -> timedelta:
        return ZOOM_SNAP[self.zoom]

    def shifted(self, screens: int) -> BoardView:
        return replace(self, start=self.start + ZOOM_SPAN[self.zoom] * screens)

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
    def from_query(cls, params: Mapping[str, str], *, default_start: datetime) -> BoardView:
        """Read a view from query parameters; anything unreadable falls back to a default."""
        zoom = params.get("zoom", "day")
        rows = params.get("rows", "equipment")
        return cls(
            start=_parse_time(params.get("start")) or default_start,
            zoom=zoom if zoom in ZOOM_SPAN else "day",  # type: ignore[arg-type]
            rows=rows if rows in ("equipment", "operator") else "equipment",  # type: ignore[arg-type]
            job_id=_parse_id(params.get("job")),
            skill=_parse_text(params.get("skill")),
            equipment_type=_parse_text(params.get("type")),
        )


def _parse_time(raw: str | None) -> datetime | None:
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
