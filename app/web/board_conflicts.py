"""The conflicts panel's and the counters' words, for the page and for a change.

A page lists the window's conflicts (`conflict_items`); a move's answer and a
live update re-send only the changed tasks' (`conflicts_changed`), which
board.js puts in place by `data-order` (`conflict_order`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from app.domain.conflicts import Conflict
from app.services.board_changes import BLOCKED, BoardChanges
from app.services.running_late import RunningLate
from app.services.window_conflicts import involves

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


def conflict_order(conflict: Conflict) -> str:
    """`validation.ordered`'s key as a string that sorts the same way in JavaScript
    (board.js puts a live change's items in place by it): the type, then the task
    ids (fixed width, "," between, so a shorter run of the same ids sorts first),
    then the message, a space between (types are lowercase words and `_`)."""
    ids = ",".join(f"{task_id:010d}" for task_id in conflict.task_ids)
    return f"{conflict.type.value} {ids} {conflict.message}"


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
