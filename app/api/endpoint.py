"""Declaring JSON endpoints once: the route, its input/output models and its docs.

    api = ApiRouter()

    @api.get("/jobs/{job_id:int}", response=JobOut, summary="A job")
    async def get_job(request: Request) -> Response: ...

`api.routes()` gives Starlette routes; `api.openapi()` the OpenAPI 3.1 document
built from the same declarations, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.errors import BadRequest, validation_details

Handler = Callable[[Request], Awaitable[Response]]
Model = TypeVar("Model", bound=BaseModel)
MAX_BODY = 1_000_000


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    auth: bool = True
    if_match: bool = False
    errors: tuple[int, ...] = ()


@dataclass
class ApiRouter:
    prefix: str = ""
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(self, method: str, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, self.prefix + path, handler, **meta))
            return handler

        return register

    def get(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **meta)

    def post(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **meta)

    def put(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **meta)

    def patch(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **meta)

    def delete(self, path: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **meta)

    def include(self, other: ApiRouter) -> None:
        self.endpoints += [replace(ep, path=self.prefix + ep.path) for ep in other.endpoints]

    def routes(self) -> list[Route]:
        by_path: dict[str, dict[str, Handler]] = {}
        for endpoint in self.endpoints:
            by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint.handler
        return [
            Route(path, _dispatch(handlers), methods=list(handlers))
            for path, handlers in by_path.items()
        ]


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    async def endpoint(request: Request) -> Response:
        return await handlers[request.method](request)

    return endpoint


async def read_body(request: Request, model: type[Model]) -> Model:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(413, "payload_too_large", f"body larger than {MAX_BODY} bytes")
    content_type = request.headers.get("content-type", "")
    if raw and "json" not in content_type:
        raise BadRequest(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(
            422, "invalid_input", "the request body is invalid", validation_details(exc)
        ) from exc


def read_query(request: Request, model: type[Model]) -> Model:
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise BadRequest(
            422, "invalid_query", "the query parameters are invalid", validation_details(exc)
        ) from exc


_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for ep in endpoints:
        path = _PARAM.sub(r"{\1}", ep.path)
        op: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": ep.handler.__name__,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
                for name, kind in _path_parameters(ep.path)
            ],
            "responses": {},
        }
        if ep.query is not None:
            op["parameters"] += _query_parameters(ep.query, schemas)
        if ep.if_match:
            op["parameters"].append(
                {"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"}}
            )
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(ep.body, schemas)}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(ep.response, schemas)}}
        op["responses"][str(ep.status)] = ok
        for status in sorted({*ep.errors, 422, *([401, 403, 429] if ep.auth else [])}):
            op["responses"][str(status)] = {"$ref": "#/components/responses/Error"}
        if ep.auth:
            op["security"] = [{"bearer": []}, {"hmac": []}]
        paths.setdefault(path, {})[ep.method.lower()] = op
    from app.api.schemas import ErrorResponse

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "Any error, in the one error shape",
                    "content": {"application/json": {"schema": _schema(ErrorResponse, schemas)}},
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "hmac": {"type": "apiKey", "in": "header", "name": "Authorization"},
            },
        },
    }


def _path_parameters(path: str) -> list[tuple[str, str]]:
    """Each path parameter and its JSON type: `{id:int}` an integer, else a string."""
    return [
        (name, "integer" if convertor == "int" else "string")
        for name, convertor in re.findall(r"{(\w+)(?::(\w+))?}", path)
    ]


def _schema(annotation: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(annotation).json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    return schema


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _schema(model, schemas)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]
