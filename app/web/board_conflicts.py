"""The conflicts panel's and the counters' words, for the page and for a change.

A page lists a first page of the window's conflicts (`conflicts_panel`: the
out-of-service group whole, then `board_conflicts_page` others with "Show
more") and carries every listed conflict's mark (`marks`: its `data-order`,
severity and job, from which board.js marks bars whose item is not shown yet);
a move's answer and a live update re-send only the changed tasks' conflicts
(`conflicts_changed`), which board.js puts in place by `data-order`
(`conflict_order`) if they fall within the page it shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from app.domain.conflicts import Conflict
from app.services.board_changes import BLOCKED, BoardChanges
from app.services.conflict_list import WindowPage, conflict_order, window_page
from app.services.running_late import RunningLate
from app.services.window_conflicts import involves

__all__ = [
    "conflict_items",
    "conflict_order",
    "conflicts_changed",
    "conflicts_panel",
    "counters",
    "more_conflicts",
    "running_late_items",
]

Context = dict[str, Any]


def conflict_items(
    conflicts: list[Conflict], refs: Mapping[int, str] | None = None
) -> list[Context]:
    refs = refs or {}
    return [
        {
            "type": str(c.type),
            "label": str(c.type).replace("_", " "),
            "severity": str(c.severity),
            "message": c.message,
            "task_ids": " ".join(str(task_id) for task_id in c.task_ids),
            "first": c.task_ids[0] if c.task_ids else None,
            "ref": refs.get(c.task_ids[0], "") if c.task_ids else "",
            "equipment_id": c.equipment_id,
            "equipment_name": c.equipment_name,
            "operator_id": c.operator_id,
            "job_id": c.job_id,
            "order": conflict_order(c),
        }
        for c in conflicts
    ]


def conflicts_panel(conflicts: list[Conflict], refs: Mapping[int, str], size: int) -> Context:
    """The panel of a page: the out-of-service group, the first `size` others, and
    every other's mark (see `marks`)."""
    page = window_page(conflicts, "", size, refs)
    listed = sorted((c for c in conflicts if c.type is not BLOCKED), key=conflict_order)
    return {
        "count": len(conflicts),
        "page": size,
        "blocked": conflict_items([c for c in conflicts if c.type is BLOCKED], refs),
        "items": conflict_items(page.items, page.refs),
        "more": more_conflicts(page, size),
        "marks": marks(listed),
    }


def more_conflicts(page: WindowPage, size: int) -> Context:
    """The "Show more" under a page: how many are left, and the `data-order` of the
    page's last item, from which the next page goes on (board.js shows no live item
    past it: what it shows stays the first items of the list)."""
    return {
        "left": page.left,
        "next": min(size, page.left),
        "through": conflict_order(page.items[-1]) if page.left and page.items else "",
    }


def marks(conflicts: list[Conflict]) -> list[tuple[str, str, int | None]]:
    """Each conflict as board.js marks bars from it: its `data-order` (which holds the
    task ids and the message), severity and job (a `late` conflict's)."""
    return [(conflict_order(c), str(c.severity), c.job_id) for c in conflicts]


def conflicts_changed(changes: BoardChanges) -> Context:
    """What of the conflicts panel a change re-sends (see `conflict_changes` in
    board/parts.html): the changed tasks' conflicts, the out-of-service group whole."""
    involved = [
        c
        for c in changes.conflicts
        if c.type is not BLOCKED and involves(c, changes.changed, changes.jobs)
    ]
    blocked = [c for c in changes.conflicts if c.type is BLOCKED]
    return {
        "tasks": " ".join(str(task_id) for task_id in sorted(changes.changed)),
        "jobs": " ".join(str(job_id) for job_id in sorted(changes.jobs)),
        "items": conflict_items(involved, changes.refs),
        "blocked": conflict_items(blocked, changes.refs),
        "count": len(changes.conflicts),
    }


def counters(scheduled: int, unscheduled: int, conflicts: list[Conflict]) -> Context:
    errors = sum(1 for c in conflicts if str(c.severity) == "error")
    return {
        "scheduled": scheduled,
        "unscheduled": unscheduled,
        "errors": errors,
        "warnings": len(conflicts) - errors,
    }


def running_late_items(late: list[RunningLate], zone: ZoneInfo) -> list[Context]:
    """The panel's "Running late" rows: each task and when it was booked to end."""
    return [
        {
            "task_id": r.task_id,
            "name": r.name,
            "job": r.job,
            "booked_end": r.booked_end.astimezone(zone).strftime("%a %H:%M"),
        }
        for r in late
    ]
