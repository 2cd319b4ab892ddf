"""Plant pages: jobs (work orders), paged and searchable, each with its tasks.

    GET  /plant                       → /plant/jobs
    GET  /plant/jobs?q=&offset=       jobs, earliest due first, 50 a page; "new job" form
    POST /plant/jobs                  create a job
    GET  /plant/jobs/{id}             the job's form and its tasks in routing order
    POST /plant/jobs/{id}             save the job (hidden `version`: If-Match)
    POST /plant/jobs/{id}/delete      delete it (refused once a task has started)

Tasks are `app/web/plant_tasks.py`; both save through `services.jobs` /
`services.tasks`, the functions behind the JSON API.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.services import jobs
from app.services.views import JobView
from app.web import plant_render as plant, plant_tasks
from app.web.plant_forms import FormInvalid, FormReader, local
from app.web.session import PageSession, page_route, services_of

JOB_STATUSES = ("open", "done", "cancelled")


def read_job(reader: FormReader, *, editing: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reference": reader.text("reference", max_length=100),
        "name": reader.text("name", required=True),
        "customer": reader.text("customer"),
        "priority": reader.number("priority", low=0, high=100, default=0),
        "release": reader.moment("release"),
        "due": reader.moment("due"),
    }
    reader.after("due", data["release"], data["due"], than="the release")
    if editing:
        status = reader.raw("status")
        if status not in JOB_STATUSES:
            reader.error("status", "must be open, done or cancelled")
        data["status"] = status
    reader.done()
    return data


def job_values(job: JobView, zone: ZoneInfo) -> dict[str, str]:
    return {
        "reference": job["reference"],
        "name": job["name"],
        "customer": job["customer"],
        "priority": str(job["priority"]),
        "release": local(job["release"], zone),
        "due": local(job["due"], zone),
        "status": job["status"],
    }


# --- the list --------------------------------------------------------------------------------


async def _list_context(request: Request, session: PageSession) -> dict[str, Any]:
    services = services_of(request)

    async def fetch(search: str | None, offset: int) -> tuple[list[JobView], int]:
        return await jobs.list_jobs(
            services=services, actor=session.actor, status=None, due_before=None,
            limit=plant.PAGE_SIZE, offset=offset, search=search,
        )  # fmt: skip

    context = await plant.listing(request, session, "jobs", "jobs", fetch)
    counts = await jobs.task_counts(
        services=services, actor=session.actor, job_ids=[j["id"] for j in context["jobs"]]
    )
    return context | {"counts": counts}


@page_route(action=plant.READ)
async def plant_home(request: Request, session: PageSession) -> Response:
    return RedirectResponse("/plant/jobs", status_code=303)


@page_route(action=plant.READ)
async def job_list(request: Request, session: PageSession) -> Response:
    context = await _list_context(request, session)
    return plant.answer(request, "plant/jobs.html", context, block="plant")


def _errors(exc: plant.Refused) -> dict[str, str]:
    if isinstance(exc, FormInvalid):
        return exc.errors
    return {"form": f"Nothing was saved: {exc.message}."}


NEW = plant.PlantForm("plant/jobs.html", "new_job", "job", _errors)
EDIT = plant.PlantForm("plant/job.html", "job_form", "job", _errors)


@page_route(action=plant.MANAGE)
async def create_job(request: Request, session: PageSession) -> Response:
    async def write(data: dict[str, Any]) -> tuple[str, str]:
        job = await jobs.create_job(services=services_of(request), actor=session.actor, data=data)
        return f"/plant/jobs/{job['id']}", f"Job {job['name']} created."

    load = partial(_list_context, request, session)
    return await plant.created(
        request, NEW, load, write=write, read=lambda reader, _: read_job(reader, editing=False)
    )


# --- one job ---------------------------------------------------------------------------------


async def _job_context(request: Request, session: PageSession, job_id: int) -> dict[str, Any]:
    services, zone = services_of(request), await plant.plant_zone(request)
    job = await jobs.get_job(services=services, actor=session.actor, job_id=job_id)
    task_part = await plant_tasks.job_tasks_context(services, session.actor, job_id)
    return (
        plant.base_context(session, "jobs", zone)
        | task_part
        | {"job": job, "values": job_values(job, zone)}
    )


@page_route(action=plant.READ)
async def job_page(request: Request, session: PageSession) -> Response:
    context = await _job_context(request, session, request.path_params["job_id"])
    return plant.answer(request, "plant/job.html", context, block="plant")


@page_route(action=plant.MANAGE)
async def save_job(request: Request, session: PageSession) -> Response:
    job_id: int = request.path_params["job_id"]
    update = partial(jobs.update_job, services=services_of(request), actor=session.actor,
                     job_id=job_id)  # fmt: skip
    return await plant.saved(
        request, EDIT, partial(_job_context, request, session, job_id), update=update,
        read=lambda reader, _: read_job(reader, editing=True), url=f"/plant/jobs/{job_id}",
        shown=lambda job, page: page | {"job": job, "values": job_values(job, page["zone"])},
    )  # fmt: skip


@page_route(action=plant.MANAGE)
async def delete_job(request: Request, session: PageSession) -> Response:
    delete = partial(jobs.delete_job, services=services_of(request), actor=session.actor,
                     job_id=request.path_params["job_id"])  # fmt: skip
    return await plant.deleted(request, "job", delete, back="/plant/jobs", done="Job deleted.")


routes = [
    Route("/plant", plant_home, methods=["GET"]),
    Route("/plant/jobs", job_list, methods=["GET"]),
    Route("/plant/jobs", create_job, methods=["POST"]),
    Route("/plant/jobs/{job_id:id}", job_page, methods=["GET"]),
    Route("/plant/jobs/{job_id:id}", save_job, methods=["POST"]),
    Route("/plant/jobs/{job_id:id}/delete", delete_job, methods=["POST"]),
    *plant_tasks.routes,
]
