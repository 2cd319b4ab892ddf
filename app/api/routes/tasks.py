from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.crud import EntityOps, add_item_routes, query_fields
from app.api.deps import PageQuery, actor_of, if_match, json_response, path_id, services_of
from app.api.endpoint import ApiRouter, read_body
from app.api.schemas import (
    UTC,
    AssignmentIn,
    AssignmentResult,
    Id,
    TaskActionIn,
    TaskIn,
    TaskOut,
    TaskPatch,
)
from app.services import execution, tasks

api = ApiRouter("/tasks")

TaskStatus = Literal["pending", "scheduled", "in_progress", "paused", "done"]


class TaskQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    job_id: Id | None = None
    status: TaskStatus | None = None
    operator_id: Id | None = None
    equipment_id: Id | None = None
    scheduled: bool | None = None
    starts_before: UTC | None = None
    ends_after: UTC | None = None


add_item_routes(
    api,
    noun="task",
    tag="tasks",
    query=TaskQuery,
    create_model=TaskIn,
    patch_model=TaskPatch,
    out_model=TaskOut,
    ops=EntityOps(
        list=tasks.list_tasks,
        get=tasks.get_task,
        create=tasks.create_task,
        update=tasks.update_task,
        delete=tasks.delete_task,
    ),
    list_summary="List tasks (operators: only their own)",
    filters=lambda q: {"filters": tasks.TaskFilter(**query_fields(q))},
    delete_summary="Delete a task that has not started",
)


@api.put(
    "/{task_id:id}/assignment",
    summary="Place a task: operator, equipment, start and end (needs If-Match)",
    tag="schedule",
    body=AssignmentIn,
    response=AssignmentResult,
    if_match=True,
    errors=(404, 409, 412, 428),
)
async def put_assignment(request: Request) -> Response:
    actor = await actor_of(request)
    body = await read_body(request, AssignmentIn)
    placed = await tasks.assign_task(
        services=services_of(request),
        actor=actor,
        task_id=path_id(request, "task_id"),
        expected_version=if_match(request),
        placement=tasks.Placement(**body.model_dump()),
    )
    return json_response(
        {
            "task": placed.task,
            "conflicts": [c.as_dict() for c in placed.conflicts],
            "revision": placed.revision,
        },
        version=placed.task["version"],
    )


@api.delete(
    "/{task_id:id}/assignment",
    summary="Unschedule a task (needs If-Match)",
    tag="schedule",
    response=TaskOut,
    if_match=True,
    errors=(404, 409, 412, 428),
)
async def delete_assignment(request: Request) -> Response:
    view = await tasks.unschedule_task(
        services=services_of(request),
        actor=await actor_of(request),
        task_id=path_id(request, "task_id"),
        expected_version=if_match(request),
    )
    return json_response(view, version=view["version"])


def _action(action: str) -> None:
    async def run(request: Request) -> Response:
        body = await read_body(request, TaskActionIn)
        view = await execution.run_task_action(
            services=services_of(request),
            actor=await actor_of(request),
            task_id=path_id(request, "task_id"),
            action=action,
            expected_version=if_match(request),
            at=body.at,
        )
        return json_response(view, version=view["version"])

    run.__name__ = f"{action}_task"
    api.post(
        f"/{{task_id:id}}/{action}",
        summary=f"{action.capitalize()} a task (operators: own tasks)",
        tag="execution",
        response=TaskOut,
        if_match="optional",
        body=TaskActionIn,
        errors=(404, 409, 412),
    )(run)


for _name in ("start", "pause", "complete"):
    _action(_name)
