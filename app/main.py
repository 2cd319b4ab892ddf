"""The Takt application: `create_app(settings)` wires routes, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from app import tracing
from app.api.endpoint import ApiRouter, openapi_document
from app.api.errors import EXCEPTION_HANDLERS, DatabaseOutage
from app.api.middleware import IdempotencyMiddleware, RateLimitMiddleware
from app.api.routes import (
    auth,
    equipment,
    health,
    jobs,
    operators,
    optimizations,
    queue,
    repairs,
    schedule,
    tasks,
)
from app.auth.login_guard import LoginGuard
from app.db.session import Database
from app.observability import RequestContextMiddleware, configure_logging
from app.realtime import operator_feed
from app.realtime.eager import KeepServerSend
from app.realtime.hub import make_hub
from app.realtime.live import Live
from app.realtime.wall_feed import WallFeed
from app.services.change_log import backlog_reader
from app.services.context import Services
from app.services.run_kinds import attach_queue
from app.settings import Settings
from app.web import board_render, my_render, pages, wall_pages
from app.web.live_fragments import FRAGMENTS
from app.web.session import page_session
from app.web.templates import EXCEPTION_HANDLERS as PAGE_EXCEPTION_HANDLERS, unavailable
from app.web.wall_render import render_wall

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
VERSION = "0.1.0"


def api_router() -> ApiRouter:
    v1 = ApiRouter(API_PREFIX)
    for module in (
        auth,
        equipment,
        operators,
        jobs,
        tasks,
        schedule,
        queue,
        optimizations,
        repairs,
    ):
        v1.include(module.api)
    root = ApiRouter()
    root.include(health.api)
    root.include(v1)
    return root


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(json_logs=settings.log_json)
    tracing.configure(settings)  # before the engines and clients are made: they are traced
    services = Services(
        settings=settings,
        db=Database(settings.database_url, pool_size=settings.db_pool_size),
        hub=make_hub(settings),
    )
    # While Redis cannot deliver, the change log keeps this instance's clients current.
    services.hub.fill_gaps_from(backlog_reader(services))
    # Heavy work (optimizer runs, bulk operations); its worker runs here when embedded.
    job_queue = attach_queue(services)
    # The board's live feed: WebSocket, SSE and polling, presence.
    live = Live(
        services,
        board_render.render_changes,
        board_render.render_full_refresh,
        page_session=page_session,
        fragments=FRAGMENTS,
    )
    # The managers' wall: one shared stream of frames; its streams end with the board's.
    wall = WallFeed(services, render_wall, stopping=lambda: live.stopping)
    router = api_router()
    document = openapi_document(router.endpoints, title="Takt API", version=VERSION)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.hub.start()
        await live.start()
        await job_queue.start()
        try:
            yield
        finally:
            await job_queue.stop()
            await live.stop()
            await wall.stop()
            await services.hub.stop()
            await services.db.dispose()
            tracing.shutdown()  # the spans still buffered

    app = Starlette(
        routes=[
            *router.routes(),
            *pages.routes,
            *live.routes(),
            # An operator's own live channel (My tasks): /my/ws, /my/sse, /my/poll.
            *operator_feed.routes(my_render.render_own_list),
            *wall_pages.routes,
            # Vendored htmx and the board's own assets: no CDN at run time.
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            # Before any other: a WebSocket's frames may be written straight to it (eager.py).
            Middleware(KeepServerSend),
            *tracing.middleware(),
            Middleware(RequestContextMiddleware),
            # The database away (restart, crash, full pool): 503 + Retry-After, not 500.
            Middleware(DatabaseOutage, page=unavailable),
            Middleware(RateLimitMiddleware, settings=settings),
            Middleware(IdempotencyMiddleware, services=services),
        ],
        exception_handlers={**EXCEPTION_HANDLERS, **PAGE_EXCEPTION_HANDLERS},  # type: ignore[dict-item]
        lifespan=lifespan,
    )
    app.add_route("/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.state.services = services
    app.state.login_guard = LoginGuard(settings)
    app.state.live = live
    app.state.wall = wall
    return app
