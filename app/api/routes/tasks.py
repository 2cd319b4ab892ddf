from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from app.api.crud import EntityOps, add_item_routes
from app.api.deps import (
    PageQuery,
    actor_of,
    if_match,
    json_response,
    page,
    path_id,
    services_of,
)
from app.api.endpoint import ApiRouter, read_body, read_query
from app.api.schemas import (
    UTC,
    AssignmentIn,
    AssignmentResult,
    Id,
    Page,
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


@api.get(
    "",
    summary="List tasks (operators: only their own)",
    tag="tasks",
    query=TaskQuery,
    response=Page[TaskOut],
)
async def list_tasks(request: Request) -> Response:
    q = read_query(request, TaskQuery)
    filters = tasks.TaskFilter(**q.model_dump(exclude={"limit", "offset"}))
    items, total = await tasks.list_tasks(
        services=services_of(request),
        actor=await actor_of(request),
        filters=filters,
        limit=q.limit,
        offset=q.offset,
    )
    return json_response(page(items, total, q))


add_item_routes(
    api,
    noun="task",
    tag="tasks",
    create_model=TaskIn,
    patch_model=TaskPatch,
    out_model=TaskOut,
    ops=EntityOps(
        get=lambda s, a, i: tasks.get_task(services=s, actor=a, task_id=i),
        create=lambda s, a, data: tasks.create_task(services=s, actor=a, data=data),
        update=lambda s, a, i, v, changes: tasks.update_task(
            services=s, actor=a, task_id=i, expected_version=v, changes=changes
        ),
        delete=lambda s, a, i, v: tasks.delete_task(
            services=s, actor=a, task_id=i, expected_version=v
        ),
    ),
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
