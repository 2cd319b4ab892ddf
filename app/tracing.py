"""OpenTelemetry traces: off by default, one trace from a request to every process it reaches.

    instance A: request span (ASGI) ─ SQL spans ─ "publish schedule:N" ─ PUBLISH (Redis)
        │ traceparent in the hub message        │ traceparent in the queued run's labels
        ▼                                       ▼
    instance B: "board push" (one board)     worker: "run plan.optimize" ─ SQL spans

Turned on by `TAKT_TRACING=otlp` (spans sent over OTLP/HTTP to
`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. a collector's `http://otel:4318`) or
`TAKT_TRACING=console` (spans printed as JSON); setting the endpoint alone means
`otlp`. Off, nothing of the SDK is even imported: `span()` and `inject()` return
at once and the app runs unwrapped. The W3C `traceparent` is the one carrier,
in HTTP headers, hub messages and queue labels alike.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from opentelemetry import context as otel_context, propagate, trace
from opentelemetry.trace import SpanKind
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from app.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "SpanKind",
    "configure",
    "continued",
    "enabled",
    "inject",
    "middleware",
    "span",
    "trace_ids",
]

# What a hub message or a queued run carries of its trace (W3C Trace Context).
CARRIER_KEYS = ("traceparent", "tracestate")
# Not worth a trace: probes and scrapes (every few seconds from everywhere), and the
# event streams, which live for hours (their pushes are traced as "board push").
UNTRACED_PATHS = ("/health", "/metrics", "/static/", "/board/sse", "/my/sse", "/wall/sse")
TRACER_NAME = "takt"
T = TypeVar("T")

_enabled = False


def enabled() -> bool:
    return _enabled


def mode(settings: Settings) -> Literal["off", "otlp", "console"]:
    if settings.tracing:
        return settings.tracing
    return "otlp" if settings.otlp_endpoint else "off"


def configure(settings: Settings, *, exporter: SpanExporter | None = None) -> bool:
    """Start tracing for this process, once (True: on). `exporter`: a test's own, e.g. in memory."""
    global _enabled
    if _enabled:
        return True
    chosen = mode(settings)
    if exporter is None and chosen == "off":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter is None and chosen == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint.rstrip("/")
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces" if endpoint else None)
    elif exporter is None:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _enabled = True
    log.info("tracing on (%s)", "a test's exporter" if chosen == "off" else chosen)
    return True


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Engines made from here on are traced (app/db/session.py looks the factory up late).
    # Its declared range stops below SQLAlchemy 2.1, whose engine events it hooks are
    # unchanged: tests/test_tracing.py proves the SQL spans arrive.
    SQLAlchemyInstrumentor().instrument(skip_dep_check=True)
    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()


def shutdown() -> None:
    """Send what is buffered (a worker or CLI command about to exit)."""
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if _enabled and flush is not None:
        flush()


def middleware() -> list[Middleware]:
    """The app's outermost middleware: a server span per HTTP request (none when off)."""
    return [Middleware(HttpTracing)] if _enabled else []


class HttpTracing:
    """OpenTelemetry's ASGI middleware for HTTP requests. Sockets, event streams,
    probes and scrapes run untraced (their SQL and Redis commands too): a socket
    lives for hours and is traced by what it pushes ("board push")."""

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        self.app = app
        self.traced = OpenTelemetryMiddleware(app, exclude_spans=["receive", "send"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(UNTRACED_PATHS):
            await self.traced(scope, receive, send)
        elif scope["type"] in ("http", "websocket"):
            await untraced(self.app(scope, receive, send))
        else:  # lifespan: the tasks it starts choose for themselves
            await self.app(scope, receive, send)


@contextmanager
def span(
    name: str,
    *,
    carrier: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[None]:
    """A span around the block: a child of `carrier`'s trace when one is given (an empty
    carrier: a trace of its own), else of the current span."""
    if not _enabled:
        yield
        return
    tracer = trace.get_tracer(TRACER_NAME)
    if carrier is None:
        with tracer.start_as_current_span(name, kind=kind, attributes=attributes):
            yield
        return
    # The carrier's context replaces the current one for the block (not only as the parent):
    # nothing of the caller's (a socket's untraced state) leaks below this span.
    token = otel_context.attach(propagate.extract(dict(carrier)))
    try:
        with tracer.start_as_current_span(name, kind=kind, attributes=attributes):
            yield
    finally:
        otel_context.detach(token)


@contextmanager
def continued(
    name: str,
    carrier: Mapping[str, Any],
    *,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[None]:
    """A consumer's span in the trace `carrier` carries (a hub message's); none when it
    carries none (a change read back from the change log, a first render on connect)."""
    if not _enabled or not carried(carrier):
        yield
        return
    with span(name, carrier=carrier, kind=SpanKind.CONSUMER, attributes=attributes):
        yield


async def untraced(work: Awaitable[T]) -> T:
    """Await `work` with its SQL and Redis commands untraced: a background loop's
    look every few seconds would otherwise be a trace of its own each time."""
    if not _enabled:
        return await work
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        return await work


def inject(carrier: MutableMapping[str, Any]) -> None:
    """Put the current trace into `carrier` (a hub message, a run's labels)."""
    if _enabled:
        propagate.inject(carrier)


def carried(message: Mapping[str, Any]) -> dict[str, str]:
    """The trace a message carries (empty: none)."""
    return {key: message[key] for key in CARRIER_KEYS if isinstance(message.get(key), str)}


def set_attribute(key: str, value: str | int) -> None:
    if _enabled:
        trace.get_current_span().set_attribute(key, value)


def trace_ids() -> tuple[str, str] | None:
    """The current trace and span id in hex, as log lines carry them (None: no trace)."""
    if not _enabled:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
