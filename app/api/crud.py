"""The five routes every plant entity has: list, create, read, change, delete.

Equipment, operators, jobs and tasks differ in their bodies and services but
not in how they are handled over HTTP (a page of items filtered by the query,
201 + ETag on create, ETag on read, If-Match on change and delete), so that is
written once here and each resource declares its models and service calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import (
    PageQuery,
    actor_of,
    if_match,
    json_response,
    no_content,
    page,
    path_id,
    services_of,
)
from app.api.endpoint import ApiRouter, read_body, read_query
from app.api.schemas import Page
from app.services.views import ItemView

# The entity's view: any of them has the version its ETag carries.
V = TypeVar("V", bound=ItemView)
Q = TypeVar("Q", bound=PageQuery)


def query_fields(query: PageQuery) -> dict[str, Any]:
    """The query's filters, as the list service's keywords (the page is passed apart)."""
    return query.model_dump(exclude={"limit", "offset"})


@dataclass(frozen=True, slots=True)
class EntityOps(Generic[V]):
    """The service calls behind one kind of entity's routes, by their keywords: each takes
    `services=` and `actor=`, and the item's id as `<noun>_id=` (`expected_version=` from
    If-Match, `data=` to create, `changes=` to change; a list takes `limit=`, `offset=` and
    the query's filters)."""

    list: Callable[..., Awaitable[tuple[list[V], int]]]
    get: Callable[..., Awaitable[V]]
    create: Callable[..., Awaitable[V]]
    update: Callable[..., Awaitable[V]]
    delete: Callable[..., Awaitable[None]]


def add_item_routes(
    api: ApiRouter,
    *,
    noun: str,
    tag: str,
    query: type[Q],
    create_model: type[BaseModel],
    patch_model: type[BaseModel],
    out_model: type[BaseModel],
    ops: EntityOps[V],
    list_summary: str,
    delete_summary: str,
    filters: Callable[[Q], dict[str, Any]] = query_fields,
) -> None:
    item = f"/{{{noun}_id:id}}"
    id_name = f"{noun}_id"

    async def list_items(request: Request) -> Response:
        q = read_query(request, query)
        items, total = await ops.list(
            services=services_of(request),
            actor=await actor_of(request),
            limit=q.limit,
            offset=q.offset,
            **filters(q),
        )
        return json_response(page(items, total, q))

    async def create(request: Request) -> Response:
        actor = await actor_of(request)
        body = await read_body(request, create_model)
        view = await ops.create(services=services_of(request), actor=actor, data=body.model_dump())
        return json_response(view, status=201, version=view["version"])

    async def read(request: Request) -> Response:
        actor = await actor_of(request)
        view = await ops.get(
            services=services_of(request), actor=actor, **{id_name: path_id(request, id_name)}
        )
        return json_response(view, version=view["version"])

    async def update(request: Request) -> Response:
        actor = await actor_of(request)
        body = await read_body(request, patch_model)
        view = await ops.update(
            services=services_of(request),
            actor=actor,
            **{id_name: path_id(request, id_name)},
            expected_version=if_match(request),
            changes=body.model_dump(exclude_unset=True),
        )
        return json_response(view, version=view["version"])

    async def delete(request: Request) -> Response:
        actor = await actor_of(request)
        await ops.delete(
            services=services_of(request),
            actor=actor,
            **{id_name: path_id(request, id_name)},
            expected_version=if_match(request),
        )
        return no_content()

    list_items.__name__ = f"list_{tag}"
    for handler, verb in (
        (create, "create"),
        (read, "get"),
        (update, "update"),
        (delete, "delete"),
    ):
        handler.__name__ = f"{verb}_{noun}"
    label = noun.replace("_", " ")
    # A page of the entity: pydantic makes (and caches) Page[EquipmentOut] at run time.
    listed = Page[out_model]  # type: ignore[valid-type]
    api.get("", summary=list_summary, tag=tag, query=query, response=listed)(list_items)
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
