"""What the board needs to undo an edit: a record of it, sent with the edit's answer.

Each edit made from the board (a drop, the detail form, "Back to tray")
answers with `#last-edit` as an out-of-band fragment: the task, the version
the edit left it at, where it was before (or that it was in the tray), and
a line saying what it did. static/board_tools.js keeps these records per tab
and undoes one by sending the "before" as an ordinary edit with that version:
through the one write path, refused (412) if anyone changed the task since.
The form field `intent` (undo | redo) only changes what a refusal says.
"""

from __future__ import annotations

import json

from markupsafe import Markup, escape

from app.db.tables import StoredSlot
from app.services.views import AssignmentView

INTENTS = ("undo", "redo")


def placement_of(assignment: AssignmentView | None) -> StoredSlot | None:
    if assignment is None:
        return None
    return {
        "operator_id": assignment["operator_id"],
        "equipment_id": assignment["equipment_id"],
        "start": assignment["start"].isoformat(),
        "end": assignment["end"].isoformat(),
    }


def last_edit_html(
    *, task_id: int, version: int, before: StoredSlot | None, after_start: str | None, what: str
) -> Markup:
    """`#last-edit`: the record board_tools.js pushes on its undo (or redo) stack."""
    return Markup(
        '<div id="last-edit" hidden hx-swap-oob="true" data-task-id="{}" data-version="{}" '
        'data-before=\'{}\' data-after-start="{}" data-what="{}"></div>'
    ).format(task_id, version, escape(json.dumps(before)), escape(after_start or ""), escape(what))


def refusal(intent: str | None, who: str | None) -> str | None:
    """What a refused undo or redo says (None: the edit's usual message)."""
    if intent not in INTENTS:
        return None
    return (
        f"Not {'undone' if intent == 'undo' else 'redone'}: {who or 'someone else'} changed "
        "this task after your change. The board shows their version."
    )
