"""The optimizer panel's words: a run's progress and a draft's diff, ready to fill in.

The drafts service speaks in ids, grid units and minutes; the panel speaks
the plant's words: task and job names, "Mill 2 · Olga Petrova", "Mon 23 Nov
08:00", "2 h 10 min", an arrow and whether that is better or worse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.db.tables import StoredSlot
from app.services.drafts import DraftChange, DraftDiff
from app.web.board_render import job_hue, span_label

Context = dict[str, Any]
EN_DASH, MINUS = "\u2013", "\u2212"

# What each list of the diff is called on the panel, in the order it shows them.
GROUPS = (
    ("moved", "Moved", "moved"),
    ("reassigned", "Reassigned", "reassigned"),
    ("scheduled", "Newly scheduled", "newly scheduled"),
    ("unscheduled", "Unscheduled", "unscheduled"),
)
# How many tasks of one list the panel names; the rest are counted.
LISTED = 50

PHASES = {
    "queued": "Waiting for a free solver…",
    "starting": "Reading the plan, making a first one…",
    "placement": "Fitting in as many tasks as possible…",
    "lateness": "Cutting weighted lateness…",
    "makespan": "Shortening the makespan…",
    "first plan": "First plan in place; improving it…",
    "improving": "Improving the plan, a neighbourhood at a time…",
}


@dataclass(frozen=True, slots=True)
class Names:
    """Names of what the diff refers to by id."""

    operators: Mapping[int, str]
    equipment: Mapping[int, str]


def duration_label(minutes: float) -> str:
    """Minutes as a scheduler says them: "45 min", "2 h 10 min", "3 d 4 h"."""
    whole = round(abs(minutes))
    days, rest = divmod(whole, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def figure(value: float | None) -> str:
    if value is None:
        return EN_DASH
    return f"{value:,.0f}".replace(",", "\u202f")


# --- a run in progress -----------------------------------------------------------------------


def progress_model(run_id: str, status: str, progress: Mapping[str, Any], limit_s: int) -> Context:
    """The running panel: time used against the limit, objective and bound as they improve."""
    elapsed = float(progress.get("elapsed") or progress.get("elapsed_s") or 0.0)
    objective = _number(progress.get("objective"))
    bound = _number(progress.get("best_bound"))
    gap = None
    if objective is not None and bound is not None:
        gap = min(100.0, abs(objective - bound) / max(1.0, abs(objective)) * 100)
    phase = str(progress.get("phase") or ("queued" if status == "queued" else "starting"))
    return {
        "id": run_id,
        "phase": PHASES.get(phase, "Searching…"),
        "elapsed_s": round(elapsed, 1),
        "elapsed_label": f"{elapsed:.0f} s",
        "limit_s": limit_s,
        "time_pct": round(min(100.0, elapsed / max(1, limit_s) * 100), 1),
        "objective": figure(objective),
        "bound": figure(bound),
        "gap": EN_DASH if gap is None else f"{gap:.0f} %",
        "gap_pct": None if gap is None else round(gap, 1),
        "solutions": int(progress.get("solutions") or 0),
        "since_first": since_first_plan(
            progress.get("first_weighted_lateness_minutes"),
            progress.get("weighted_lateness_minutes"),
            progress.get("improvements"),
        ),
    }


def since_first_plan(first: Any, now: Any, improvements: Any) -> str:
    """ "Weighted lateness -38 h since the first plan, 14 improvements", or ""
    when the run did not start from a first plan (a small plant's one model)."""
    first, now = _number(first), _number(now)
    if first is None or now is None:
        return ""
    n = int(improvements or 0)
    count = f"{figure(n)} improvement{'s' if n != 1 else ''}"
    delta = now - first
    if round(delta) == 0:
        return f"Weighted lateness as in the first plan, {count}"
    sign = MINUS if delta < 0 else "+"
    return f"Weighted lateness {sign}{duration_label(delta)} since the first plan, {count}"


def solver_words(solver: Mapping[str, Any] | None) -> tuple[str, str]:
    """The draft's status chip and the line beside it: what the solver reached
    ("Optimal", "Feasible · gap 4 %", "Best found when time ran out") and
    what improved since the first plan."""
    if not solver:
        return "", ""
    reached, ending = str(solver.get("reached") or ""), str(solver.get("ending") or "")
    gap = _number(solver.get("gap"))
    if reached == "optimal":
        status = "Optimal"
    elif reached == "best found":
        status = "Best found before it was stopped" if ending == "stopped" else (
            "Best found when time ran out"
        )  # fmt: skip
    elif ending == "nothing left to gain":
        # The lateness at its lower bound and nothing off its live slot.
        status = "Nothing left to improve"
    elif reached == "feasible":
        status = "Feasible" if gap is None else f"Feasible · gap {gap * 100:.0f} %"
    else:
        status = reached.capitalize() or "Draft ready"
    first = solver.get("first_plan")
    if not isinstance(first, Mapping):
        return status, ""
    line = since_first_plan(
        first.get("weighted_lateness_minutes"),
        solver.get("weighted_lateness_minutes"),
        solver.get("improvements"),
    )
    seconds = _number(first.get("seconds"))
    if seconds is not None:
        line += f" · first plan after {seconds:.1f} s"
    return status, line


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


# --- a draft ---------------------------------------------------------------------------------


def slot_label(slot: StoredSlot | None, names: Names, zone: ZoneInfo) -> str:
    """ "Mon 23 Nov 08:00-09:00 · Mill 1 · Olga Petrova" (an en dash), or "" without a slot."""
    if not slot:
        return ""
    start, end = _moment(slot["start"]), _moment(slot["end"])
    where = [
        names.equipment.get(int(slot["equipment_id"]), f"equipment #{slot['equipment_id']}"),
        names.operators.get(int(slot["operator_id"]), f"operator #{slot['operator_id']}"),
    ]
    return " · ".join([span_label(start, end, zone), *where])


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def item_model(item: DraftChange, names: Names, zone: ZoneInfo) -> Context:
    before, after = item.before, item.after
    return {
        "task_id": item.task_id,
        "name": item.name or f"Task #{item.task_id}",
        "job": item.job_name or "",
        "hue": job_hue(item.job_id or 0),
        "before": slot_label(before, names, zone) if before else "not scheduled",
        "after": slot_label(after, names, zone) if after else "back to the tray",
    }


def kpi_model(
    label: str, before: float, after: float, *, unit: str, higher_is_better: bool
) -> Context:
    delta = after - before
    if unit == "minutes":
        shown = [duration_label(before), duration_label(after), duration_label(delta)]
        same = round(delta) == 0
    elif unit == "tasks":
        shown = [figure(before), figure(after), figure(abs(delta))]
        same = round(delta) == 0
    else:  # a share, 0..1
        shown = [f"{before * 100:.0f} %", f"{after * 100:.0f} %", f"{abs(delta) * 100:.0f} pts"]
        same = round(delta * 100) == 0
    better = (delta > 0) == higher_is_better
    return {
        "label": label,
        "before": shown[0],
        "after": shown[1],
        "delta": "no change" if same else ("+" if delta > 0 else MINUS) + shown[2],
        "arrow": "→" if same else ("▲" if delta > 0 else "▼"),
        "tone": "same" if same else ("better" if better else "worse"),
    }


def kpis_model(deltas: Mapping[str, Any]) -> list[Context]:
    """Weighted lateness, makespan, utilization, overdue starts (when there are
    any): live plan → draft."""
    found: list[Context] = []
    for key, label, unit, higher in (
        ("weighted_lateness", "Weighted lateness, jobs planned before", "minutes", False),
        ("lateness", "Lateness", "minutes", False),
        ("makespan", "Makespan, jobs planned before", "minutes", False),
        ("utilization", "Utilization", "share", True),
        ("overdue_starts", "Overdue starts", "tasks", False),
    ):
        pair = deltas.get(key)
        if not isinstance(pair, Mapping) or (key == "lateness" and found):
            continue
        if key == "overdue_starts" and not any(pair.values()):
            continue
        before, after = _number(pair.get("before")), _number(pair.get("after"))
        if before is None or after is None:
            continue
        found.append(kpi_model(label, before, after, unit=unit, higher_is_better=higher))
    return found


def kpi_notes(deltas: Mapping[str, Any], newly_scheduled: int) -> list[str]:
    """Why the draft's figures may look worse than the live plan's: the live ones
    leave out tray tasks, and count overdue tasks where they were booked."""
    notes = []
    work = deltas.get("new_work")
    if isinstance(work, Mapping) and _number(work.get("tasks")):
        placed = round(_number(work.get("tasks")) or 0)
        jobs = round(_number(work.get("jobs")) or 0)
        notes.append(
            f"New work: {figure(placed)} task{'s' if placed != 1 else ''} of {figure(jobs)} "
            f"job{'s' if jobs != 1 else ''} placed from the tray, weighted lateness "
            f"{duration_label(_number(work.get('weighted_lateness')) or 0)}, done in "
            f"{duration_label(_number(work.get('makespan')) or 0)}. The figures above "
            "compare only the jobs the live plan had fully planned."
        )
    elif newly_scheduled:
        tasks = "task comes" if newly_scheduled == 1 else "tasks come"
        notes.append(
            f"{figure(newly_scheduled)} {tasks} from the tray: the live plan's lateness and "
            "makespan leave them out, the draft's count them."
        )
    pair = deltas.get("overdue_starts")
    overdue = _number(pair.get("before")) if isinstance(pair, Mapping) else None
    if overdue:
        n = round(overdue)
        tasks = "task was" if n == 1 else "tasks were"
        notes.append(
            f"{figure(n)} {tasks} booked to start before now and not started. The live "
            "plan's figures count them where they were booked; the draft starts them now "
            "or later."
        )
    return notes


def diff_model(
    draft_id: int,
    diff: DraftDiff,
    names: Names,
    zone: ZoneInfo,
    *,
    status: str = "",
    solved_label: str = "",
) -> Context:
    groups: list[Context] = []
    ghosts: dict[int, Context] = {}
    touched: set[int] = set()
    for key, title, label in GROUPS:
        items = diff.group(key)
        groups.append(
            {
                "key": key,
                "title": title,
                "label": label,
                "total": len(items),
                "tasks": [item_model(item, names, zone) for item in items[:LISTED]],
            }
        )
        for item in items:
            touched.add(item.task_id)
            after = item.after
            if after:
                ghosts[item.task_id] = {
                    "task_id": item.task_id,
                    "name": item.name or f"Task #{item.task_id}",
                    "start": _moment(after["start"]).isoformat(),
                    "end": _moment(after["end"]).isoformat(),
                    "operator_id": after["operator_id"],
                    "equipment_id": after["equipment_id"],
                    "hue": job_hue(item.job_id or 0),
                }
    # A task both moved and reassigned is one change.
    total = len(touched)
    reached, since = solver_words(diff.solver)
    status = status or reached
    return {
        "id": draft_id,
        "status": status or "Draft ready",
        "status_tone": "ok" if status.lower().startswith("optimal") else "info",
        "solved_label": solved_label or since,
        "counts": [{"key": g["key"], "label": g["label"], "n": g["total"]} for g in groups],
        "groups": groups,
        "total": total,
        "kpis": kpis_model(diff.kpis),
        "notes": kpi_notes(diff.kpis, len(diff.scheduled)),
        "ghosts": list(ghosts.values()),
    }
