"""The four item routes every plant entity has: create, read, change, delete.

Equipment, operators, jobs and tasks differ in their bodies and services but
not in how their items are handled over HTTP (201 + ETag on create, ETag on
read, If-Match on change and delete), so that is declared once here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import actor_of, if_match, json_response, no_content, path_id, services_of
from app.api.endpoint import ApiRouter, read_body
from app.services.context import Actor, Services
from app.services.views import ItemView

# The entity's view: any of them has the version its ETag carries.
V = TypeVar("V", bound=ItemView)


@dataclass(frozen=True, slots=True)
class EntityOps(Generic[V]):
    """The service calls behind one kind of entity's item routes."""

    get: Callable[[Services, Actor, int], Awaitable[V]]
    create: Callable[[Services, Actor, dict[str, Any]], Awaitable[V]]
    update: Callable[[Services, Actor, int, int | None, dict[str, Any]], Awaitable[V]]
    delete: Callable[[Services, Actor, int, int | None], Awaitable[None]]


def add_item_routes(
    api: ApiRouter,
    *,
    noun: str,
    tag: str,
    create_model: type[BaseModel],
    patch_model: type[BaseModel],
    out_model: type[BaseModel],
    ops: EntityOps[V],
    delete_summary: str,
) -> None:
    item = f"/{{{noun}_id:id}}"
    id_name = f"{noun}_id"

    async def create(request: Request) -> Response:
        actor = await actor_of(request)
        body = await read_body(request, create_model)
        view = await ops.create(services_of(request), actor, body.model_dump())
        return json_response(view, status=201, version=view["version"])

    async def read(request: Request) -> Response:
        actor = await actor_of(request)
        view = await ops.get(services_of(request), actor, path_id(request, id_name))
        return json_response(view, version=view["version"])

    async def update(request: Request) -> Response:
        actor = await actor_of(request)
        body = await read_body(request, patch_model)
        view = await ops.update(
            services_of(request),
            actor,
            path_id(request, id_name),
            if_match(request),
            body.model_dump(exclude_unset=True),
        )
        return json_response(view, version=view["version"])

    async def delete(request: Request) -> Response:
        actor = await actor_of(request)
        await ops.delete(services_of(request), actor, path_id(request, id_name), if_match(request))
        return no_content()

    for handler, verb in (
        (create, "create"),
        (read, "get"),
        (update, "update"),
        (delete, "delete"),
    ):
        handler.__name__ = f"{verb}_{noun}"
    label = noun.replace("_", " ")
    api.post(
        "",
        summary=f"Create {label}",
        tag=tag,
        body=create_model,
        response=out_model,
        status=201,
        errors=(409,),
    )(create)
    api.get(item, summary=f"One {label}", tag=tag, response=out_model, errors=(404,))(read)
    api.patch(
        item,
        summary=f"Change {label}",
        tag=tag,
        body=patch_model,
        response=out_model,
        if_match=True,
        errors=(404, 409, 412, 428),
    )(update)
    api.delete(
        item,
        summary=delete_summary,
        tag=tag,
        status=204,
        if_match=True,
        errors=(404, 409, 412, 428),
    )(delete)
