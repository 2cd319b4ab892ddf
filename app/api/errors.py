"""The one error shape: `{"error": {"code", "message", "details"}}` for every 4xx/5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.session import RETRY_AFTER_S, database_unavailable
from app.domain.critical_path import DependencyCycle
from app.http_errors import error_response
from app.services.errors import ServiceError

log = structlog.get_logger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "version_mismatch",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    428: "precondition_required",
    429: "rate_limited",
    503: "unavailable",
}


class BadRequest(Exception):
    """A request the API cannot read: malformed JSON, wrong query parameters."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]


async def on_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    headers = getattr(exc, "headers", None)
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


async def on_dependency_cycle(request: Request, exc: Exception) -> Response:
    """Links that loop (a job's critical path cannot be computed): the plan's fault, 409."""
    assert isinstance(exc, DependencyCycle)
    return error_response(409, "dependency_cycle", str(exc), {"tasks": list(exc.task_ids)})


async def on_bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return error_response(exc.status, exc.code, exc.message, exc.details)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, exc.detail or code, None, exc.headers)


def unavailable_response() -> JSONResponse:
    """The database is away for now (a restart, a crash, a full pool): ask to come back."""
    return error_response(
        503,
        "database_unavailable",
        "the database cannot be reached right now; try again shortly",
        None,
        {"Retry-After": str(RETRY_AFTER_S)},
    )


# Paths that answer JSON; every other path is a page (or a fragment of one).
JSON_PATHS = ("/api/", "/health", "/metrics", "/openapi.json")


class DatabaseOutage:
    """A request that failed because the database is away answers 503 with Retry-After.

    Pure ASGI, just inside the request log, so it covers the routes and the
    middleware alike (the idempotency records are in the database too). The
    API gets the one error shape; pages get `page(request)` (an error page, or a
    `#notice` fragment for htmx). A response already under way is left alone.
    """

    def __init__(self, app: ASGIApp, *, page: Callable[[Request], Response]) -> None:
        self.app = app
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started or not database_unavailable(exc):
                raise
            log.warning("database unavailable", path=scope["path"], error=repr(exc))
            request = Request(scope, receive)
            if scope["path"].startswith(JSON_PATHS):
                response: Response = unavailable_response()
            else:
                response = self.page(request)
                response.headers["Retry-After"] = str(RETRY_AFTER_S)
            await response(scope, receive, send)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    if database_unavailable(exc):
        log.warning("database unavailable", path=request.url.path, error=repr(exc))
        return unavailable_response()
    if isinstance(exc, DataError):
        # A value the database refused (out of a column's range, bad text): the edges
        # should have refused it first, so it is logged; the transaction wrote nothing.
        log.warning("database refused a value", path=request.url.path, error=repr(exc))
        return error_response(422, "invalid_input", "a value is out of range or malformed")
    log.exception("unhandled error", path=request.url.path)
    return error_response(500, "internal_error", "something went wrong on our side")


EXCEPTION_HANDLERS = {
    ServiceError: on_service_error,
    DependencyCycle: on_dependency_cycle,
    BadRequest: on_bad_request,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
