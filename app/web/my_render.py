"""The "My tasks" screen's renderer: the page's context, and the fragments the live channel sends.

Times are the plant's (the schedule's time zone), never the phone's: an
operator's 08:00 is the 08:00 on the board. The list's HTML depends only on
the operator's own tasks and their machines, so an unchanged list renders
to the same string (the live channel sends only what changed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2_fragments import render_blocks

from app.domain.plan import TaskStatus
from app.realtime.operator_feed import OwnList
from app.services import my_tasks
from app.services.context import Actor, Services
from app.web.templates import ENV

TEMPLATE = "my/page.html"
# Which buttons each task status offers, in order (the first is the main one).
ACTIONS: dict[str, list[tuple[str, str]]] = {
    TaskStatus.SCHEDULED: [("start", "Start")],
    TaskStatus.PENDING: [("start", "Start")],
    TaskStatus.IN_PROGRESS: [("complete", "Complete"), ("pause", "Pause")],
    TaskStatus.PAUSED: [("start", "Resume"), ("complete", "Complete")],
    TaskStatus.DONE: [],
}
STATUS_WORDS: dict[str, str] = {
    TaskStatus.PENDING: "Not scheduled",
    TaskStatus.SCHEDULED: "Planned",
    TaskStatus.IN_PROGRESS: "Running",
    TaskStatus.PAUSED: "Paused",
    TaskStatus.DONE: "Done",
}


def work_context(work: my_tasks.MyWork) -> dict[str, Any]:
    zone = ZoneInfo(work.timezone)

    def clock(moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(zone).strftime("%H:%M")

    def day(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%a %d %b")

    def card(task: my_tasks.MyTask) -> dict[str, Any]:
        return {
            "t": task,
            "when": f"{clock(task.start)}\u2013{clock(task.end)}",
            "day": day(task.start),
            "status_word": STATUS_WORDS.get(task.status, task.status),
            "actions": ACTIONS.get(task.status, []),
            "started": clock(task.actual_start),
            "finished": clock(task.actual_end),
            "back": f"{day(task.equipment_back)} {clock(task.equipment_back)}"
            if task.equipment_back
            else "",
            "can_report": task.status != TaskStatus.DONE and task.equipment_status == "available",
        }

    next_day = day(work.next_shift[0].start) if work.next_shift else ""
    return {
        "today": [card(task) for task in work.today],
        "next_shift": [card(task) for task in work.next_shift],
        "today_label": day(work.now),
        "next_label": next_day,
        "timezone": work.timezone,
        "revision": work.revision,
        "has_operator": work.operator_id != 0,
    }


async def render_own_list(services: Services, actor: Actor) -> OwnList:
    """The live channel's fragments: `#my-work` and `#my-revision` (both out of band)."""
    work = await my_tasks.my_work(services=services, actor=actor)
    context = work_context(work) | {"oob": True}
    key: str = render_blocks(ENV, TEMPLATE, ["work"], context)
    revision: str = render_blocks(ENV, TEMPLATE, ["revision"], context)
    return OwnList(
        html=key + revision,
        key=key,
        revision=work.revision,
        task_ids=work.task_ids,
        equipment_ids=work.equipment_ids,
        job_ids=work.job_ids,
    )
