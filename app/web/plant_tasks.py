"""Plant pages: a job's tasks (routing step, duration, skill, capability,
predecessors, alternative routings).

    POST /plant/jobs/{id}/tasks       add a task to the job
    GET  /plant/tasks/{id}            the task's form
    POST /plant/tasks/{id}            save it (hidden `version`: If-Match)
    POST /plant/tasks/{id}/delete     delete it (refused once started)

Predecessors are the job's other tasks (checkboxes) and, across jobs, task
numbers. An alternative routing is a machine and the minutes the task takes
there (`task_alternatives`); other capable machines take the task's minutes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.domain.bounds import MAX_INT32
from app.services import board as board_service, jobs, tasks
from app.services.context import Actor, Services
from app.services.errors import InvalidInput
from app.services.views import TaskView
from app.web.plant_forms import (
    MAX_DURATION,
    FormInvalid,
    FormReader,
    checked_ids,
    row_indexes,
    submitted,
)
from app.web.plant_render import (
    MANAGE,
    READ,
    PlantForm,
    Refused,
    answer,
    base_context,
    deleted,
    plant_zone,
    saved,
)
from app.web.session import PageSession, page_route, services_of

TASKS_SHOWN = 100  # a job's tasks on its page (a routing is tens of steps, not hundreds)
SPARE_ROUTINGS = 2


def read_task(reader: FormReader, form: FormData, siblings: set[int]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sequence": reader.number("sequence", low=0, high=MAX_INT32, default=0),
        "name": reader.text("name", required=True),
        "duration_minutes": reader.number("duration_minutes", low=1, high=MAX_DURATION),
        "required_skill": reader.tag("required_skill"),
        "min_level": reader.number("min_level", low=1, high=5, default=1),
        "required_capability": reader.tag("required_capability"),
    }
    checked = checked_ids(form, "pred")
    if stray := [p for p in checked if p not in siblings]:
        reader.error("predecessors", f"names task #{stray[0]}, which is not in this job")
    data["predecessors"] = list(dict.fromkeys(checked + reader.ids("predecessors")))
    data["alternatives"] = _routings(reader)
    reader.done()
    return data


def _routings(reader: FormReader) -> list[dict[str, int]]:
    found: list[dict[str, int]] = []
    for i in reader.rows("alt"):
        machine, minutes = f"alt-{i}-equipment", f"alt-{i}-minutes"
        if not reader.given(machine) and not reader.given(minutes):
            continue
        if not reader.given(machine):
            reader.error(machine, "is required when minutes are given")
            continue
        equipment_id = reader.number(machine, low=1, high=2**53)
        duration = reader.number(minutes, low=1, high=MAX_DURATION)
        if equipment_id in {r["equipment_id"] for r in found}:
            reader.error(machine, "is named twice: one routing per machine")
        elif equipment_id is not None and duration is not None:
            found.append({"equipment_id": equipment_id, "duration_minutes": duration})
    return found


def task_values(task: TaskView, siblings: set[int]) -> dict[str, str]:
    values = {
        "sequence": str(task["sequence"]),
        "name": task["name"],
        "duration_minutes": str(task["duration_minutes"]),
        "required_skill": task["required_skill"] or "",
        "min_level": str(task["min_level"]),
        "required_capability": task["required_capability"] or "",
        "predecessors": ", ".join(str(p) for p in task["predecessors"] if p not in siblings),
    }
    for i, routing in enumerate(task["alternatives"]):
        values[f"alt-{i}-equipment"] = str(routing["equipment_id"])
        values[f"alt-{i}-minutes"] = str(routing["duration_minutes"])
    return values


def _errors(exc: Refused) -> dict[str, str]:
    if isinstance(exc, FormInvalid):
        return exc.errors
    if "predecessor" in exc.message or "precede" in exc.message:
        return {"predecessors": f"are refused: {exc.message}"}
    return {"form": f"Nothing was saved: {exc.message}."}


async def _machines(services: Services, actor: Actor) -> list[tuple[str, str]]:
    _, equipment = await board_service.resources(services=services, actor=actor)
    return [("", "—")] + [(str(m.id), f"{m.name} ({m.detail})") for m in equipment]


async def job_tasks_context(services: Services, actor: Actor, job_id: int) -> dict[str, Any]:
    """What the job page's task table and "add a task" form need."""
    found, _ = await tasks.list_tasks(
        services=services,
        actor=actor,
        filters=tasks.TaskFilter(job_id=job_id),
        limit=TASKS_SHOWN,
        offset=0,
    )
    machines = await _machines(services, actor)
    next_step = max((t["sequence"] for t in found), default=0) + 1
    return {
        "tasks": found,
        "siblings": found,
        "checked": {found[-1]["id"]} if found else set(),
        "task_names": {t["id"]: t["name"] for t in found},
        "machine_names": {int(k): v.split(" (")[0] for k, v in machines if k},
        "machine_options": machines,
        "routing_rows": SPARE_ROUTINGS,
        "task_values": {"sequence": str(next_step), "min_level": "1"},
        "task_errors": {},
    }


@page_route(action=MANAGE)
async def create_task(request: Request, session: PageSession) -> Response:
    services, job_id = services_of(request), request.path_params["job_id"]
    zone = await plant_zone(request)
    form = await request.form()
    job = await jobs.get_job(services=services, actor=session.actor, job_id=job_id)
    context = base_context(session, "jobs", zone) | {"job": job}
    context |= await job_tasks_context(services, session.actor, job_id)
    siblings = {t["id"] for t in context["tasks"]}
    try:
        data = read_task(FormReader(form, zone), form, siblings)
        made = await tasks.create_task(
            services=services, actor=session.actor, data={"job_id": job_id, **data}
        )
    except (FormInvalid, InvalidInput) as exc:
        context |= {
            "task_values": submitted(form),
            "task_errors": _errors(exc),
            "checked": set(checked_ids(form, "pred")),
            "routing_rows": max(SPARE_ROUTINGS, len(row_indexes(form, "alt"))),
        }
        return answer(request, "plant/job.html", context, block="tasks", status=422)
    context |= await job_tasks_context(services, session.actor, job_id)
    return answer(
        request,
        "plant/job.html",
        context,
        block="tasks",
        message=f"Task {made['name']} added.",
        redirect=f"/plant/jobs/{job_id}",
    )


async def _task_context(request: Request, session: PageSession, task_id: int) -> dict[str, Any]:
    services, zone = services_of(request), await plant_zone(request)
    task = await tasks.get_task(services=services, actor=session.actor, task_id=task_id)
    job = await jobs.get_job(services=services, actor=session.actor, job_id=task["job_id"])
    part = await job_tasks_context(services, session.actor, job["id"])
    siblings = [t for t in part["tasks"] if t["id"] != task_id]
    ids = {t["id"] for t in siblings}
    return base_context(session, "jobs", zone) | {
        "task": task,
        "job": job,
        "siblings": siblings,
        "checked": set(task["predecessors"]) & ids,
        "followers": [t["name"] for t in siblings if task_id in t["predecessors"]],
        "machine_options": part["machine_options"],
        "routing_rows": len(task["alternatives"]) + SPARE_ROUTINGS,
        "values": task_values(task, ids),
    }


@page_route(action=READ)
async def task_page(request: Request, session: PageSession) -> Response:
    context = await _task_context(request, session, request.path_params["task_id"])
    return answer(request, "plant/task.html", context, block="plant")


def _rows(form: FormData, page: dict[str, Any]) -> dict[str, Any]:
    return {
        "checked": set(checked_ids(form, "pred")),
        "routing_rows": max(page["routing_rows"], len(row_indexes(form, "alt"))),
    }


EDIT = PlantForm("plant/task.html", "task_form", "task", _errors, rows=_rows)


@page_route(action=MANAGE)
async def save_task(request: Request, session: PageSession) -> Response:
    task_id: int = request.path_params["task_id"]
    form = await request.form()

    def read(reader: FormReader, page: dict[str, Any]) -> dict[str, Any]:
        return read_task(reader, form, {t["id"] for t in page["siblings"]})

    update = partial(tasks.update_task, services=services_of(request), actor=session.actor,
                     task_id=task_id)  # fmt: skip
    return await saved(
        request, EDIT, partial(_task_context, request, session, task_id), update=update,
        read=read, url=f"/plant/tasks/{task_id}",
    )  # fmt: skip


@page_route(action=MANAGE)
async def delete_task(request: Request, session: PageSession) -> Response:
    task_id: int = request.path_params["task_id"]
    services = services_of(request)
    task = await tasks.get_task(services=services, actor=session.actor, task_id=task_id)
    delete = partial(tasks.delete_task, services=services, actor=session.actor, task_id=task_id)
    back, done = f"/plant/jobs/{task['job_id']}", f"Task {task['name']} deleted."
    return await deleted(request, "task", delete, back=back, done=done)


routes = [
    Route("/plant/jobs/{job_id:id}/tasks", create_task, methods=["POST"]),
    Route("/plant/tasks/{task_id:id}", task_page, methods=["GET"]),
    Route("/plant/tasks/{task_id:id}", save_task, methods=["POST"]),
    Route("/plant/tasks/{task_id:id}/delete", delete_task, methods=["POST"]),
]
