"""The wall's HTML: the page, and its sections as `hx-swap-oob` fragments.

One template (templates/wall/page.html) gives both: the page renders it whole,
the live feed renders its section blocks. Every section has a fixed size and a
bounded number of elements whatever the plant (charts cap their rows, lists
show the top 10 and "and N more"), so swapping a fresh section in never grows
the page. `BUILD` fingerprints the wall's own templates and assets: a wall
that sees another build in the stream reloads itself (a deploy, days later).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2_fragments import render_blocks
from markupsafe import Markup

from app.domain.conflicts import Severity
from app.domain.kpis import Dashboard, EquipmentDown, LateJob
from app.realtime.wall_feed import WallHtml
from app.services.wall import WallFigures
from app.web import charts
from app.web.templates import ENV

__all__ = ["BUILD", "LIST_ROWS", "SECTIONS", "WallHtml", "page_context", "render_wall"]

TEMPLATE = "wall/page.html"
# The blocks a live update replaces, each one element with a fixed id.
SECTIONS = [
    *("frame", "clock", "tiles", "machines", "operators"),
    *("down", "throughput", "conflicts", "late"),
]
STATUS = ["frame", "clock"]
LIST_ROWS = 10
_ROOT = Path(__file__).resolve().parents[2]


def _build() -> str:
    parts = [_ROOT / "static" / name for name in ("wall.css", "wall.js", "live.js")]
    parts += sorted((_ROOT / "templates" / "wall").glob("*.html"))
    digest = hashlib.sha256()
    for path in parts:
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:12]


BUILD = _build()


def render_wall(figures: WallFigures, now: datetime) -> WallHtml:
    context = page_context(figures, now) | {"oob": True}
    return WallHtml(
        sections=render_blocks(ENV, TEMPLATE, SECTIONS, **context),
        status=render_blocks(ENV, TEMPLATE, STATUS, **context),
    )


def page_context(figures: WallFigures, now: datetime) -> dict[str, Any]:
    board = figures.dashboard
    zone = ZoneInfo(board.timezone)
    conflicts = sum(count.count for count in board.open_conflicts)
    errors = sum(c.count for c in board.open_conflicts if c.severity is Severity.ERROR)
    return {
        "figures": figures,
        "board": board,
        "build": BUILD,
        "clock": now.astimezone(zone),
        "as_of": board.now.astimezone(zone),
        "tiles": _tiles(board, conflicts, errors),
        "down": [_down_row(row, zone, board.now) for row in board.equipment_down[:LIST_ROWS]],
        "down_more": max(len(board.equipment_down) - LIST_ROWS, 0),
        "late": [_late_row(row, zone, board.now) for row in board.late_jobs[:LIST_ROWS]],
        "late_more": max(len(board.late_jobs) - LIST_ROWS, 0),
        "charts": {
            "machines": charts.utilization_chart(
                "wall-machines-chart", "Machines · load today", board.equipment_utilization
            ),
            "operators": charts.utilization_chart(
                "wall-operators-chart", "Operators · load today", board.operator_utilization
            ),
            "throughput": charts.throughput_chart(
                "wall-throughput-chart", "Tasks completed per hour", board.throughput
            ),
            "conflicts": charts.conflicts_chart(
                "wall-conflicts-chart", "Open conflicts by type", board.open_conflicts
            ),
        },
        "oob": False,
    }


@dataclass(frozen=True, slots=True)
class Tile:
    id: str
    label: str
    value: str
    detail: str
    # "alert" (something to act on), "good", or "" (neutral).
    tone: str = ""
    chart: Markup | None = None
    # Small text after the value: "of 35".
    suffix: str = ""


def _tiles(board: Dashboard, conflicts: int, errors: int) -> list[Tile]:
    on_time, today = board.on_time, board.today
    rate = on_time.rate
    this_hour = board.throughput[-1].completed if board.throughput else 0
    waiting = sum(row.affected_tasks for row in board.equipment_down)
    overdue = sum(1 for job in board.late_jobs if job.overdue)
    return [
        Tile(
            "on-time",
            "On time · 7 days",
            "—" if rate is None else f"{round(rate * 100)} %",
            "no job finished"
            if rate is None
            else f"{on_time.on_time_jobs} of {on_time.finished_jobs} jobs",
            "" if rate is None else ("good" if rate >= 0.9 else "alert" if rate < 0.75 else ""),
        ),
        Tile(
            "done-today",
            "Done today",
            f"{today.done_tasks}",
            f"{_number(today.done_minutes)} of {_number(today.planned_minutes)} min",
            suffix=f"of {today.planned_tasks}",
            chart=_progress(today.done_tasks, today.planned_tasks),
        ),
        Tile(
            "down",
            "Machines down",
            str(len(board.equipment_down)),
            f"{waiting} task{'s' if waiting != 1 else ''} waiting"
            if board.equipment_down
            else "all machines running",
            "alert" if board.equipment_down else "good",
        ),
        Tile(
            "conflicts",
            "Open conflicts",
            str(conflicts),
            f"{errors} error{'s' if errors != 1 else ''} · {conflicts - errors} warning"
            f"{'s' if conflicts - errors != 1 else ''}",
            "alert" if errors else ("good" if not conflicts else ""),
        ),
        Tile(
            "late",
            "Late jobs",
            str(len(board.late_jobs)),
            f"{overdue} past due" if board.late_jobs else "every job on track",
            "alert" if overdue else ("good" if not board.late_jobs else ""),
        ),
        Tile(
            "throughput",
            "Completed this hour",
            str(this_hour),
            f"{sum(hour.completed for hour in board.throughput)} in {len(board.throughput)} h",
        ),
    ]


def _progress(done: int, planned: int) -> Markup:
    share = min(done / planned, 1.0) if planned else 0.0
    return Markup(
        f'<span class="progress" aria-hidden="true"><span style="width:{share * 100:.1f}%">'
        "</span></span>"
    )


def _down_row(row: EquipmentDown, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    status = "planned downtime" if row.planned else str(row.status)
    back = "back: not known"
    if row.expected_back is not None:
        back = "back " + _when(row.expected_back, zone, now)
    return {
        "name": row.name,
        "status": status,
        "tone": "maintenance" if row.planned or str(row.status) == "maintenance" else "down",
        "back": back,
        "waiting": row.affected_tasks,
    }


def _late_row(row: LateJob, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    unscheduled = row.unscheduled_tasks
    return {
        "name": f"{row.reference} · {row.name}" if row.reference else row.name,
        "due": "due " + _when(row.due, zone, now),
        "lateness": "+" + duration_label(row.lateness),
        "overdue": row.overdue,
        "note": f"{unscheduled} not scheduled" if unscheduled else "",
    }


def _when(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """Short enough for a list column: "14:00" today, "Wed 14:00" this week, else "25 Nov"."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    days = abs((local.date() - today).days)
    if days == 0:
        return local.strftime("%H:%M")
    return local.strftime("%a %H:%M") if days < 7 else local.strftime("%d %b")


def duration_label(delta: timedelta) -> str:
    """ "45 min", "3 h 20 min", "2 d 4 h": coarse enough to read at a glance."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _number(value: int) -> str:
    return f"{value:,}"
