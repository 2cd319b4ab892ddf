"""The board's renderer: the page for a view, and what the live feed sends.

For the live feed (WebSocket, SSE, polling), per hub message and connected board:

    html = await render_changes(services, actor, view, task_ids, revision)

returns `hx-swap-oob` fragments for those tasks as `view` shows them now:

- `<div hx-swap-oob="beforeend:#bars">` holding each task's bar `#bar-{id}`
  (added, or replacing the old one, which board.js removes first) or an
  `<i id="bar-{id}" data-gone>` marker when the task left the view (moved out
  of the window or the filter, unscheduled); board.js's `htmx:oobBeforeSwap`
  handler does the upsert, so OOB swaps never miss a target;
- of the conflicts panel only what the change touched: the changed tasks'
  conflicts (`beforeend:#conflict-list`; board.js first removes the items of
  those tasks, and `late` of their jobs, from the list and from its marks of
  every listed conflict, then puts these in order, in the list only those
  within the page it shows), the out-of-service group whole (a few items), the
  count; board.js re-marks bars from the panel's marks. Then `#counters`;
- `#tray` when a task came back to the tray, else tray removal markers
  (`beforeend:#tray-list`) and `#tray-total`;
- `<meta id="board-revision" data-revision="N" hx-swap-oob="true">`.

Bars are absolutely placed in `#bars` by CSS variables (`--row`, `--x`,
`--w`), so a replaced bar can land in any row. The output depends only on
(view, whether the actor may edit, task_ids, the plan at `revision`): clients
with the same view may share one rendering of a message.

`render_full_refresh(...)` re-renders the whole `#board-main` (plus the
revision) for changes that touch everything (a resource renamed, a resync);
`render_message(...)` picks between the two from a hub message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Set as AbstractSet
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2_fragments import render_blocks
from markupsafe import Markup

from app import clock
from app.db.board_queries import BoardFilter, PlacedTask, Resource
from app.domain.conflicts import Conflict
from app.domain.plan import Interval, TaskStatus
from app.realtime.change_messages import touched_rows
from app.services import board as board_service
from app.services.access import allowed
from app.services.board_changes import BoardChanges, board_changes
from app.services.board_view import ZOOM_SPAN, BoardView, Zoom, parse_time, window_start
from app.services.context import Actor, Services
from app.web.board_conflicts import (
    conflicts_changed,
    conflicts_panel,
    counters,
    running_late_items,
)
from app.web.board_shading import row_loads, row_shading, shading_styles
from app.web.templates import ENV

Context = dict[str, Any]
EN_DASH = "\u2013"


# --- views -----------------------------------------------------------------------------------


def scope_of(view: BoardView) -> board_service.BoardScope:
    filters = BoardFilter(view.job_id, view.skill, view.equipment_type)
    return board_service.BoardScope(Interval(view.start, view.end), view.rows, filters)


def default_start(zoom: str, zone: ZoneInfo, now: datetime | None = None) -> datetime:
    """Where "today" begins at each zoom, in plant time (`board_view.window_start`):
    the hour before now, the current shift (06/14/22), midnight, yesterday's midnight.
    """
    return window_start(zoom, zone, now or clock.now())


def view_from_query(params: Mapping[str, str], zone: ZoneInfo) -> BoardView:
    """The view a request asks for; `focus` (a moment, e.g. the focused bar's start)
    moves the window onto the one of its zoom that holds it (board.js sends it when
    the zoom changes while a bar is focused)."""
    zoom = params.get("zoom", "day")
    view = BoardView.from_query(params, default_start=default_start(zoom, zone), zone=zone)
    focus = parse_time(params.get("focus"))
    if focus is not None:
        view = replace(view, start=window_start(view.zoom, zone, focus))
    return view


def rezoomed(view: BoardView, zoom: Zoom, now: datetime | None = None) -> BoardView:
    """The view at another zoom, on the window that holds now when this window does
    (Week -> Day lands on today), else the one that holds this window's middle."""
    now = now or clock.now()
    anchor = now if view.holds(now) else view.start + (view.end - view.start) / 2
    return replace(view, zoom=zoom, start=window_start(zoom, view.zone, anchor))


def query_string(view: BoardView, **changes: Any) -> str:
    return urlencode(replace(view, **changes).to_query() if changes else view.to_query())


def _utc(local: datetime) -> datetime:
    # Local arithmetic is wall-clock arithmetic (zoneinfo), so 06:00 stays 06:00 across DST.
    return local.astimezone(UTC)


# --- geometry --------------------------------------------------------------------------------


def job_hue(job_id: int) -> int:
    """A stable colour per job: golden-angle steps spread neighbouring ids apart."""
    return round(job_id * 137.508) % 360


def _percent(delta: timedelta, span: timedelta) -> float:
    return round(delta / span * 100, 4)


def time_label(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def span_label(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if local_start.date() == local_end.date():
        return f"{local_start:%a %d %b %H:%M}{EN_DASH}{local_end:%H:%M}"
    return f"{local_start:%a %d %b %H:%M} {EN_DASH} {local_end:%a %d %b %H:%M}"


_STATUS_ICONS: dict[str, Markup] = {
    TaskStatus.DONE: Markup('<span class="bar-icon" aria-hidden="true">✓</span>'),
    TaskStatus.IN_PROGRESS: Markup('<span class="bar-icon" aria-hidden="true">▶</span>'),
    TaskStatus.PAUSED: Markup('<span class="bar-icon" aria-hidden="true">⏸</span>'),
}


def bar_model(
    placed: PlacedTask,
    view: BoardView,
    zone: ZoneInfo,
    row: int,
    marks: list[Conflict],
    can_edit: bool,
) -> Context:
    """Everything one bar shows, as ready strings (the template only fills them in)."""
    span = view.end - view.start
    shown_start, shown_end = max(placed.start, view.start), min(placed.end, view.end)
    classes = ["bar", f"status-{placed.status}"]
    if marks:
        errors = any(str(c.severity) == "error" for c in marks)
        classes.append("has-error" if errors else "has-warning")
    if placed.start < view.start:
        classes.append("clipped-start")
    if placed.end > view.end:
        classes.append("clipped-end")
    if can_edit and placed.status != TaskStatus.DONE:
        classes.append("movable")
    x = _percent(shown_start - view.start, span)
    w = max(_percent(shown_end - shown_start, span), 0.05)
    status = placed.status.replace("_", " ")
    conflicts = f", {len(marks)} conflict{'s' if len(marks) != 1 else ''}" if marks else ""
    when = span_label(placed.start, placed.end, zone)
    return {
        "p": placed,
        "row": row,
        "cls": " ".join(classes),
        "style": f"--row:{row};--x:{x}%;--w:{w}%;--hue:{job_hue(placed.job_id)}",
        "label": f"{placed.name}, {_job_words(placed)}, {when}, {status}{conflicts}",
        "messages": [c.message for c in marks],
        "start": placed.start.isoformat(),
        "end": placed.end.isoformat(),
        "icon": _STATUS_ICONS.get(placed.status, ""),
    }


def _job_words(placed: PlacedTask) -> str:
    """The job as a screen reader and the tooltip say it: reference, job, customer."""
    parts = [placed.reference, f"job {placed.job_name}", placed.customer]
    return ", ".join(part for part in parts if part)


def marks_by_task(conflicts: Iterable[Conflict]) -> dict[int, list[Conflict]]:
    marks: dict[int, list[Conflict]] = defaultdict(list)
    for conflict in conflicts:
        for task_id in conflict.task_ids:
            marks[task_id].append(conflict)
    return marks


def bars_of(
    placed: Iterable[PlacedTask],
    view: BoardView,
    zone: ZoneInfo,
    resources: list[Resource],
    conflicts: list[Conflict],
    can_edit: bool,
) -> list[Context]:
    rows = {resource.id: index for index, resource in enumerate(resources)}
    marks = marks_by_task(conflicts)
    on_equipment = view.rows == "equipment"
    return [
        bar_model(p, view, zone, rows[row_id], marks.get(p.task_id, []), can_edit)
        for p in placed
        if (row_id := p.equipment_id if on_equipment else p.operator_id) in rows
    ]


def axis(view: BoardView, zone: ZoneInfo) -> Context:
    """Tick marks of the time axis (plant time) and the days across the top."""
    step, label_every = {
        "hour": (timedelta(minutes=15), 2),
        "shift": (timedelta(minutes=30), 2),
        "day": (timedelta(hours=1), 2),
        "week": (timedelta(hours=6), 4),
    }[view.zoom]
    span = view.end - view.start
    ticks: list[Context] = []
    local = view.start.astimezone(zone)
    for moment in _tick_moments(view, zone, step):
        local_moment = moment.astimezone(zone)
        minutes = local_moment.hour * 60 + local_moment.minute
        major = minutes % (step * label_every // timedelta(minutes=1)) == 0
        label = local_moment.strftime("%a %d" if view.zoom == "week" else "%H:%M")
        if view.zoom == "week" and local_moment.hour != 0:
            label = local_moment.strftime("%H")
        ticks.append({"x": _percent(moment - view.start, span), "label": label, "major": major})
    days: list[Context] = []
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    while _utc(day) < view.end:
        begin, finish = max(_utc(day), view.start), min(_utc(day + timedelta(days=1)), view.end)
        days.append(
            {
                "x": _percent(begin - view.start, span),
                "w": _percent(finish - begin, span),
                "label": day.strftime("%A %d %B %Y"),
            }
        )
        day += timedelta(days=1)
    now = clock.now()
    now_x = _percent(now - view.start, span) if view.start <= now < view.end else None
    return {"ticks": ticks, "days": days, "now_x": now_x}


def _tick_moments(view: BoardView, zone: ZoneInfo, step: timedelta) -> list[datetime]:
    """The ticks' instants in the window: every `step` of plant time from a local hour
    (the week's 6-hour ticks by the wall clock, so they stay at 00/06/12/18 across DST).
    """
    first = view.start.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    moments: list[datetime] = []
    by_wall_clock = view.zoom == "week"
    index = 0
    while True:
        moment = _utc(first + step * index) if by_wall_clock else _utc(first) + step * index
        if moment >= view.end:
            return moments
        if moment >= view.start and (not moments or moment > moments[-1]):
            moments.append(moment)
        index += 1


# --- whole pages -----------------------------------------------------------------------------


def board_context(
    board: board_service.Board, view: BoardView, actor: Actor, zone: ZoneInfo
) -> Context:
    can_edit = allowed(actor, "assignment.write")
    return {
        "view": view,
        "zone": zone,
        "query": query_string(view),
        "nav": {
            "prev": query_string(view.shifted(-1)),
            "next": query_string(view.shifted(1)),
            "today": query_string(view, start=default_start(view.zoom, zone)),
            "zooms": {z: query_string(rezoomed(view, z)) for z in ZOOM_SPAN},  # type: ignore[arg-type]
            "rows": {r: query_string(view, rows=r) for r in ("equipment", "operator")},
        },
        "axis": axis(view, zone),
        "range_label": span_label(view.start, view.end, zone),
        "board": board,
        "resources": board.resources,
        "bars": bars_of(board.bars, view, zone, board.resources, board.conflicts, can_edit),
        "conflicts": conflicts_panel(board.conflicts, board.refs, board.conflicts_page),
        "running_late": running_late_items(board.running_late, zone),
        "machine_names": machine_names(board.resources, view),
        "counters": counters(board.scheduled, board.unscheduled, board.conflicts),
        "tray": board.tray,
        "tray_query": urlencode(_filter_query(view)),
        "job_label": board.job_label,
        "can_edit": can_edit,
        "can_set_status": view.rows == "equipment" and allowed(actor, "equipment.status"),
        "can_optimize": allowed(actor, "plan.optimize"),
        "can_see_wall": allowed(actor, "reports.read"),
        "can_manage_plant": allowed(actor, "resources.manage"),
        "revision": board.revision,
        "hue": job_hue,
        "row_page": 0 if board.whole else board_service.ROW_PAGE,
        "shading": (shading := row_shading(board.resources, board.availability, view)),
        "shading_styles": shading_styles(shading),
    }


def machine_names(resources: list[Resource], view: BoardView) -> dict[int, str]:
    """Names for the panel's "out of service" groups (rows are machines only by equipment)."""
    return {r.id: r.name for r in resources} if view.rows == "equipment" else {}


def _filter_query(view: BoardView) -> dict[str, str]:
    return {k: v for k, v in view.to_query().items() if k in ("job", "skill", "type")}


# --- the live feed ---------------------------------------------------------------------------


async def render_changes(
    services: Services,
    actor: Actor,
    view: BoardView,
    task_ids: AbstractSet[int],
    revision: int,
    rows: frozenset[tuple[str, int]] = frozenset(),
) -> str:
    """OOB fragments bringing a board of `view` up to date for `task_ids`, and the load
    strips of the `rows` (("equipment" | "operators", id)) the changes touched."""
    kind = "equipment" if view.rows == "equipment" else "operators"
    return changes_html(
        await board_changes(
            services=services,
            actor=actor,
            scope=scope_of(view),
            task_ids=set(task_ids),
            rows={row_id for row_kind, row_id in rows if row_kind == kind},
        ),
        view,
        actor,
        revision=revision,
    )


def changes_html(
    changes: BoardChanges, view: BoardView, actor: Actor, *, revision: int | None
) -> str:
    """The fragments for `changes`; `revision=None` leaves `#board-revision` alone.

    A board's own edit responses leave it alone: only the live feed, which
    applies changes in order, may say which revision the page is at.
    """
    zone = ZoneInfo(changes.timezone)
    can_edit = allowed(actor, "assignment.write")
    context = {
        "bars": bars_of(changes.bars, view, zone, changes.resources, changes.conflicts, can_edit),
        "gone": sorted(changes.gone),
        "conflicts": conflicts_changed(changes),
        "running_late": running_late_items(changes.running_late, zone),
        "machine_names": machine_names(changes.resources, view),
        "counters": counters(changes.scheduled, changes.unscheduled, changes.conflicts),
        "loads": row_loads(changes.resources, changes.availability),
        "tray": changes.tray,
        "tray_total": changes.tray_total,
        "tray_query": urlencode(_filter_query(view)),
        "revision": revision,
        "can_edit": can_edit,
        "hue": job_hue,
    }
    return ENV.get_template("board/changes.html").render(context)


async def render_full_refresh(
    services: Services, actor: Actor, view: BoardView, revision: int | None = None
) -> str:
    """The whole board — `#board-main`, the panels, `#board-revision` — as OOB fragments."""
    zone = ZoneInfo(await board_service.plant_timezone(services=services))
    board = await board_service.load_board(services=services, actor=actor, scope=scope_of(view))
    context = board_context(board, view, actor, zone) | {"oob": True, "main_oob": True}
    html: str = render_blocks(ENV, "board.html", ["main", "conflicts", "tray", "revision"], context)
    return html


async def render_message(
    services: Services, actor: Actor, view: BoardView, message: Mapping[str, Any]
) -> str:
    """What one hub message means for a board: the changed tasks, or everything."""
    entities = message.get("entities") or {}
    task_ids = {int(task_id) for task_id in entities.get("tasks", ())}
    revision = int(message.get("revision") or 0)
    if message.get("kind") == "resync":
        return await render_full_refresh(services, actor, view, revision or None)
    if task_ids:
        rows = frozenset(touched_rows(entities))
        return await render_changes(services, actor, view, task_ids, revision, rows)
    if entities.keys() & {"operators", "equipment", "jobs"}:
        # Rows, names, calendars or availability changed: every bar may look different.
        return await render_full_refresh(services, actor, view, revision or None)
    # Nothing the board shows (a user account, say): just move the revision on.
    only_revision = {"revision": revision, "only_revision": True}
    return ENV.get_template("board/changes.html").render(only_revision)
