"""What a change's hub message says to a board: the tasks and rows it touched.

    {"revision": R, "kind": ..., "entities": {"tasks": [...], "equipment": [...], ...},
     "committed_at": epoch ms, "conflicts": {...}, "traceparent": ...}

`read()` is what a board's feed (feed.py) takes from one: the tasks to
re-render (or None: re-render the whole view), the rows whose load strips
changed, when it was committed and the trace it belongs to.
"""

from __future__ import annotations

from typing import Any

from app import tracing
from app.realtime.hub import Message

# Changes to these without any task mean rows, names or calendars changed:
# the board cannot patch that bar by bar, so the whole view is re-rendered.
STRUCTURAL = frozenset({"equipment", "operators", "jobs", "schedules"})
# A change touching more tasks than this (a draft applied, a bulk operation) is
# re-rendered as the whole view: one render, bars, tray and counters all fresh
# (with the versions a drag needs), instead of thousands of fragments.
BULK_TASKS = 200
# A row a change touched: ("equipment" or "operators", the resource's id).
Row = tuple[str, int]
ROW_KINDS = ("equipment", "operators")


def touched_tasks(entities: Any) -> set[int] | None:
    """The task ids a change touched; None when it changed the board's structure
    or too many tasks to patch bar by bar (`BULK_TASKS`): re-render the view."""
    if not isinstance(entities, dict):
        return None
    tasks = entities.get("tasks") or []
    if not tasks and STRUCTURAL & set(entities):
        return None
    if len(tasks) > BULK_TASKS:
        return None
    return {task_id for task_id in tasks if isinstance(task_id, int)}


def touched_rows(entities: Any) -> set[Row]:
    """The machines and operators a change touched (a moved task's old and new ones)."""
    if not isinstance(entities, dict):
        return set()
    return {
        (kind, row_id)
        for kind in ROW_KINDS
        for row_id in entities.get(kind) or []
        if isinstance(row_id, int)
    }


# What a message says, as `note` reads it: (tasks, rows, committed at, trace). Every board
# of an instance hears the same message object in turn (feeds.Listeners), so it is read
# once, not once per board.
Read = tuple[frozenset[int] | None, frozenset[Row], float | None, dict[str, str]]
_last_read: tuple[Message, Read] | None = None


def read(message: Message) -> Read:
    global _last_read
    if _last_read is not None and _last_read[0] is message:
        return _last_read[1]
    entities = message.get("entities")
    ids = touched_tasks(entities)
    committed_at = message.get("committed_at")
    said: Read = (
        None if ids is None else frozenset(ids),
        frozenset(touched_rows(entities)),
        float(committed_at) if isinstance(committed_at, int | float) else None,
        tracing.carried(message),
    )
    _last_read = (message, said)
    return said
