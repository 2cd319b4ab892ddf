"""Declaring JSON endpoints once: the route, its input/output models and its docs.

    api = ApiRouter()

    @api.get("/jobs/{job_id:id}", response=JobOut, summary="A job")
    async def get_job(request: Request) -> Response: ...

`api.routes()` gives Starlette routes; `api.openapi()` the OpenAPI 3.1 document
built from the same declarations, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.errors import BadRequest, validation_details
from app.domain.bounds import MAX_ID
from app.routing import RUN_ID_PATTERN

Handler = Callable[[Request], Awaitable[Response]]
Model = TypeVar("Model", bound=BaseModel)
MAX_BODY = 1_000_000
# No body of this API nests deeper than a handful of levels.
MAX_DEPTH = 32


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
    # True: If-Match is required (428 without); "optional": checked when sent.
    if_match: bool | Literal["optional"] = False
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
    """The body as `model`: JSON types as the document says them (`false` is no integer)."""
    raw = await read_json(request)
    try:
        return model.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as exc:
        raise BadRequest(
            422, "invalid_input", "the request body is invalid", validation_details(exc)
        ) from exc


async def read_json(request: Request) -> bytes:
    """The raw body, once it is known to be JSON of at most `MAX_BODY` bytes and
    `MAX_DEPTH` levels, without NaN or Infinity and without NUL in any string.

    Everything a body can hold is bounded here, before any model or database sees it.
    """
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise _too_large()
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise _too_large()
    content_type = request.headers.get("content-type", "")
    if raw and "json" not in content_type:
        raise BadRequest(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(raw or b"{}", parse_constant=_not_json)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    _check_json(data)
    return raw


def _check_json(data: Any) -> None:
    """Depth and strings of parsed JSON, without recursion."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise BadRequest(
                    422,
                    "invalid_input",
                    "text may not contain the NUL character",
                    [{"field": where, "message": "contains NUL"}],
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str):
                stack.append((key, depth, path))
            stack.append((item, depth + 1, path))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _too_large() -> BadRequest:
    return BadRequest(413, "payload_too_large", f"body larger than {MAX_BODY} bytes")


def _too_deep() -> BadRequest:
    return BadRequest(400, "malformed_json", f"the body nests deeper than {MAX_DEPTH} levels")


def read_query(request: Request, model: type[Model]) -> Model:
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if "\x00" in key or any("\x00" in value for value in values):
            raise BadRequest(
                422,
                "invalid_query",
                "query parameters may not contain the NUL character",
                [{"field": key.replace("\x00", ""), "message": "contains NUL"}],
            )
        params[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise BadRequest(
            422, "invalid_query", "the query parameters are invalid", validation_details(exc)
        ) from exc


_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "description": (
        'The ETag of the version you edited, e.g. "3" (weak W/"3" too). '
        "`*` and anything else are refused with 400 bad_if_match: "
        "an edit must name the version it changes."
    ),
    "schema": {"type": "string", "pattern": '^(W/)?"[0-9]{1,10}"$', "examples": ['"1"']},
}
DESCRIPTION = """\
Every 4xx/5xx answers `{"error": {"code", "message", "details"}}`.

- Ids are integers from 1 to 999999999999999999; times are ISO 8601 with an offset,
  from 2000-01-01 to before 2100-01-01 (UTC); a slot lasts at most 31 days.
- Bodies are JSON objects of at most 1 MB nesting at most 32 levels, without NaN or
  Infinity and without NUL in any text (400 malformed_json, 413, 415, 422).
- PATCH changes only the fields sent; `null` clears only what may be empty
  (release, due, expected_back, required skill/capability, contact) and is refused elsewhere.
- Any POST, PUT, PATCH or DELETE under /api/v1 may carry `Idempotency-Key` (1 to 200
  characters): a replay returns the first response; the same key with another request
  answers 422 idempotency_key_reused, and 409 idempotency_in_progress while the first runs.
"""


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for ep in endpoints:
        path = _PARAM.sub(r"{\1}", ep.path)
        api = ep.path.startswith("/api/")
        op: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": ep.handler.__name__,
            "parameters": _path_parameters(ep.path),
            "responses": {},
        }
        errors = {*ep.errors, 422}
        if op["parameters"]:
            errors.add(404)
        if ep.query is not None:
            op["parameters"] += _query_parameters(ep.query, schemas)
        if ep.if_match:
            op["parameters"].append({**IF_MATCH, "required": ep.if_match != "optional"})
            errors |= {400, 412} if ep.if_match == "optional" else {400, 412, 428}
        if api and ep.method in WRITE_METHODS:
            # Idempotency-Key (see DESCRIPTION): a bad key, a key in use.
            errors |= {400, 409}
        if ep.body is not None:
            body = _schema(ep.body, schemas)
            op["requestBody"] = {
                # A body whose every field has a default may be left out: it reads as {}.
                "required": bool(ep.body.model_json_schema().get("required")),
                "content": {"application/json": {"schema": body}},
            }
            # Malformed or too deep JSON, too large, not JSON.
            errors |= {400, 413, 415}
        if ep.auth:
            errors |= {401, 403}
        if api:
            errors.add(429)
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(ep.response, schemas)}}
        op["responses"][str(ep.status)] = ok
        for status in sorted(errors):
            op["responses"][str(status)] = {"$ref": "#/components/responses/Error"}
        if ep.auth:
            op["security"] = [{"bearer": []}, {"hmac": []}]
        paths.setdefault(path, {})[ep.method.lower()] = op
    from app.api.schemas import ErrorResponse

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": DESCRIPTION},
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


PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "run": {"type": "string", "pattern": f"^{RUN_ID_PATTERN}$"},
}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """Each path parameter and its schema, by convertor (`app/routing.py`); else a string."""
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_SCHEMAS.get(convertor, {"type": "string"}),
        }
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
