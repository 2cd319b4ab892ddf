"""Liveness, readiness and metrics: outside /api/v1, no authentication."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.deps import services_of
from app.api.endpoint import ApiRouter
from app.background.queue import RunQueue
from app.observability import DEPENDENCY_UP
from app.services.context import Services

api = ApiRouter()
CHECK_TIMEOUT_S = 2.0


@api.get("/health", summary="The process is up", tag="operations", auth=False)
async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@api.get(
    "/health/ready",
    summary="Database (and Redis, when configured) answer; workers alive for the job queue",
    tag="operations",
    auth=False,
    errors=(503,),
)
async def ready(request: Request) -> Response:
    services = services_of(request)
    checks = await _dependencies(services)
    body: dict[str, object] = {}
    if services.queue is not None and checks["database"] == "ok":
        checks["workers"], body["queue"] = await _workers_check(services.queue)
    # Without Redis the instance still serves and accepts writes (fan-out degrades
    # to this instance and to polling), and without a worker only background runs
    # wait, so only the database decides readiness.
    ready = checks["database"] == "ok"
    status = (
        "ok" if all(v == "ok" for v in checks.values()) else "degraded" if ready else "unavailable"
    )
    body = {"status": status, "checks": checks, **body}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _dependencies(services: Services) -> dict[str, str]:
    """Does the database (and Redis, when configured) answer? Also kept as `takt_up`."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), services.db.read() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; say which
        checks["database"] = f"error: {type(exc).__name__}"
    if services.settings.redis_url:
        checks["redis"] = await _redis_check(services.settings.redis_url)
    for dependency, answer in checks.items():
        DEPENDENCY_UP.labels(dependency).set(1 if answer == "ok" else 0)
    return checks


async def _workers_check(queue: RunQueue) -> tuple[str, dict[str, object]]:
    """Whether any worker is alive to take the background runs, and how long the oldest waited."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            liveness = await queue.liveness()
    except Exception as exc:
        return f"error: {type(exc).__name__}", {}
    alive = liveness.workers
    figures: dict[str, object] = {
        "workers_alive": None if alive is None else len(alive),
        "oldest_waiting_s": liveness.oldest_waiting_s,
    }
    if alive is None:
        return "error: the live workers could not be read", figures
    return ("ok" if alive else "error: no worker alive"), figures


async def _redis_check(url: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    finally:
        await client.aclose()


@api.get("/metrics", summary="Prometheus metrics", tag="operations", auth=False)
async def metrics(request: Request) -> Response:
    # Asked at each scrape, so the alert on a database or Redis away needs no probe of its own.
    await _dependencies(services_of(request))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
