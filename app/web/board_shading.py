"""What each row shows behind its bars: unavailable time as shading, and a load strip.

One element per row, whatever its calendar: the shading is a CSS gradient of
the row's unavailable intervals (320 operators by a week of shifts would
otherwise be thousands of elements), placed like a bar (`--row`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.db.board_queries import Resource
from app.services.board_view import BoardView
from app.services.row_availability import RowAvailability

OFF = "var(--off-shade)"


def shading_styles(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(class, gradient) for each distinct gradient: operators on one shift pattern share
    one (320 rows, a handful of patterns), so the page says each pattern once."""
    return sorted({(row["off_class"], row["gradient"]) for row in rows if row["gradient"]})


def row_shading(
    resources: list[Resource], availability: Mapping[int, RowAvailability], view: BoardView
) -> list[dict[str, Any]]:
    """Per row of the view, in order: its shading gradient (and the class naming it)
    and its load."""
    classes: dict[str, str] = {}
    span = view.end - view.start
    rows: list[dict[str, Any]] = []
    for index, resource in enumerate(resources):
        found = availability.get(resource.id)
        if found is None:
            continue
        stops: list[str] = []
        cursor = 0.0
        for interval in found.off:
            left = round((interval.start - view.start) / span * 100, 2)
            right = round((interval.end - view.start) / span * 100, 2)
            stops += [f"transparent {cursor}% {left}%", f"{OFF} {left}% {right}%"]
            cursor = right
        gradient = (
            f"linear-gradient(90deg,{','.join(stops)},transparent {cursor}% 100%)" if stops else ""
        )
        rows.append(
            {
                "row": index,
                "resource_id": resource.id,
                "gradient": gradient,
                "off_class": classes.setdefault(gradient, f"off-{len(classes)}"),
            }
            | row_load(resource, found)
        )
    return rows


def row_load(resource: Resource, found: RowAvailability) -> dict[str, Any]:
    """A row's load strip: the booked share in percent (None: no available time), its words."""
    load = None if found.load is None else round(found.load * 100)
    label = "not available in this window" if load is None else f"{load}% of available time booked"
    return {"resource_id": resource.id, "name": resource.name, "load": load, "load_label": label}


def row_loads(
    resources: list[Resource], availability: Mapping[int, RowAvailability]
) -> list[dict[str, Any]]:
    """The load strips of the rows in `availability` (the rows a live change touched)."""
    return [row_load(r, availability[r.id]) for r in resources if r.id in availability]
