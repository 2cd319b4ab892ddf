"""Structured JSON logs with a request id in every line, and Prometheus metrics."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import tracing

REQUESTS = Counter("takt_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "takt_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
WEBSOCKETS = Gauge("takt_websocket_connections", "Open WebSocket connections")
DEPENDENCY_UP = Gauge(
    "takt_up", "Whether the database and Redis answered this instance's last check", ["dependency"]
)


# Secrets that could ride along in a logged string: query tokens, credentials in
# forms, Bearer and signed Authorization headers, bare JWTs, session cookies.
_SECRET_PATTERNS = (
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|token|password|secret|signature|"
        r"csrf_token|api_key|code)=)[^&\s\"',;]+"
    ),
    re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]+"),
    re.compile(r"(?i)\b(takt-hmac\s+)[^\s\"']+"),
    re.compile(r"()\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+"),
    re.compile(r"(\btakt_[a-z_]+=)[^;\s\"']+"),
)
REDACTED = "[redacted]"
# uvicorn's own line per WebSocket (with the query string, tokens and all) and the
# websockets library's open/close lines: the request's line is ours.
_WEBSOCKET_CHATTER = ('%s - "WebSocket %s"', "connection open", "connection closed")


def redact(text: str) -> str:
    if "=" not in text and " " not in text and "eyJ" not in text:
        return text  # nothing any pattern could match (most values: ids, paths, levels)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda found: found.group(1) + REDACTED, text)
    return text


def redact_secrets(logger: object, method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: no secret leaves in any string of a log line."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def add_trace_ids(logger: object, method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: the trace and span a line was written in (when tracing is on)."""
    ids = tracing.trace_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def _drop_colours(logger: object, method: str, event: MutableMapping[str, Any]) -> Any:
    event.pop("color_message", None)  # uvicorn's terminal copy of its message
    return event


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("uvicorn") and record.levelno <= logging.INFO:
            return not str(record.msg).startswith(_WEBSOCKET_CHATTER)
        return True


class _TaktHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler of the process's standard-library logging (see configure_logging).

    It writes to whatever `sys.stdout` is at the time, as structlog's logger does.
    """

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(*, json_logs: bool = True, level: int = logging.INFO) -> None:
    """One line per event, JSON on stdout, for structlog and standard logging alike.

    Every request is logged once, by `RequestContextMiddleware`: uvicorn's
    access log is switched off here (whatever the command line said) and its
    other lines, like every library's, come through the same renderer with
    the request id and without secrets.
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_colours,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _TaktHandler)), None)
    if handler is None:
        handler = _TaktHandler()
        handler.addFilter(_Quiet())
        root.addHandler(handler)
    handler.setFormatter(formatter)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        server = logging.getLogger(name)
        server.handlers.clear()
        server.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


class RequestContextMiddleware:
    """Gives each request an id (honouring `X-Request-ID`), logs it, and measures it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        tracing.set_attribute("takt.request_id", request_id)
        if scope["type"] == "websocket":
            await self._socket(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _route_name(scope)
            elapsed = time.perf_counter() - started
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            _request_line(scope, scope["method"], status, elapsed)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One line per socket, when it ends: how the handshake was answered, how long."""
        status: int | None = None
        started = time.perf_counter()

        async def send_watched(message: Message) -> None:
            nonlocal status
            if status is None:  # the handshake's answer; a socket's frames just pass
                kind = message["type"]
                if kind == "websocket.accept":
                    status = 101
                elif kind == "websocket.close":
                    status = 403
                elif kind == "websocket.http.response.start":
                    status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_watched)
        finally:
            _request_line(scope, "WEBSOCKET", status or 500, time.perf_counter() - started)


def _request_line(scope: Scope, method: str, status: int, elapsed: float) -> None:
    """The one line of a request: with its request id (bound above) and trace id (when on)."""
    # The path only: query strings may carry tokens (?access_token= on sockets and streams).
    structlog.get_logger("takt.http").info(
        "request",
        method=method,
        path=scope["path"],
        status=status,
        ms=round(elapsed * 1000, 2),
        user=_user(scope),
    )


def _user(scope: Scope) -> str | None:
    """Who made the request, as far as it was authenticated: `user:7`, `key:tk_…`, or None."""
    state = scope.get("state") or {}
    actor = state.get("actor")
    if actor is None:
        actor = getattr(state.get("page_session"), "actor", None)
    principal = getattr(actor, "principal", None)
    return principal if isinstance(principal, str) else None


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return value.decode(errors="replace")[:64] or uuid.uuid4().hex
    return uuid.uuid4().hex


def _route_name(scope: Scope) -> str:
    route = scope.get("route")
    path: str | None = getattr(route, "path", None)
    return path or "unmatched"
