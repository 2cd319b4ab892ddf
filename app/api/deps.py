"""What every JSON handler reaches for: services, the actor, If-Match, JSON out."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python
from starlette.requests import Request
from starlette.responses import Response

from app.api.errors import BadRequest
from app.auth.principal import authenticate
from app.domain.bounds import MAX_INT32
from app.services.context import Actor, Services

_ETAG = re.compile(r'^(?:W/)?"([0-9]{1,10})"$')


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def actor_of(request: Request) -> Actor:
    cached = getattr(request.state, "actor", None)
    if isinstance(cached, Actor):
        return cached
    actor = await authenticate(request, services_of(request))
    request.state.actor = actor
    return actor


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(request: Request) -> int | None:
    """The version the client edited, from `If-Match: "<version>"` (None: header missing)."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    found = _ETAG.match(raw.strip())
    if found is None:
        raise BadRequest(
            400, "bad_if_match", 'If-Match must be an ETag of this API, e.g. "3"', {"if_match": raw}
        )
    version = int(found.group(1))
    # Beyond what a version column holds: no row has it (412), like version 0.
    return version if version <= MAX_INT32 else 0


def path_id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    return value


def json_response(
    data: Any,
    *,
    status: int = 200,
    version: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = json.dumps(to_jsonable_python(data), separators=(",", ":")).encode()
    response = Response(body, status_code=status, media_type="application/json", headers=headers)
    if version is not None:
        response.headers["ETag"] = etag(version)
    return response


def no_content() -> Response:
    return Response(status_code=204)


class PageQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=MAX_INT32)


def page(items: list[Any], total: int, query: PageQuery) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
