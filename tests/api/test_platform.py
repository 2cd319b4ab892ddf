"""What every client relies on: auth, the error shape, OpenAPI, health, metrics,
idempotent replays and rate limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.types import Message

from app.api.schemas import ErrorResponse
from app.db import tables as t
from app.main import api_router, create_app
from app.settings import Settings


async def test_login_refresh_and_bad_credentials(api: httpx.AsyncClient, plant: Any) -> None:
    good = await api.post(
        "/api/v1/auth/token", json={"username": "anna", "password": "takt-test-password"}
    )
    assert good.status_code == 200 and good.json()["expires_in"] == 30 * 60
    bad = await api.post("/api/v1/auth/token", json={"username": "anna", "password": "nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    refreshed = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": good.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200
    reused = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": good.json()["refresh_token"]}
    )
    assert reused.status_code == 401
    # Reuse revoked the whole family, the fresh token included.
    rotated = await api.post(
        "/api/v1/auth/refresh", json={"refresh_token": refreshed.json()["refresh_token"]}
    )
    assert rotated.status_code == 401


async def test_every_error_has_the_one_shape(api: httpx.AsyncClient, plant: Any) -> None:
    responses = [
        await api.get("/api/v1/tasks"),  # no token
        await api.get("/api/v1/tasks", headers={"Authorization": "Bearer forged"}),
        await api.get("/api/v1/nothing-here"),
        await api.delete("/health"),
        await api.post("/api/v1/auth/token", content=b"x", headers={"Content-Type": "text/plain"}),
    ]
    assert [r.status_code for r in responses] == [401, 401, 404, 405, 415]
    for response in responses:
        ErrorResponse.model_validate(response.json())


async def test_openapi_documents_every_endpoint(api: httpx.AsyncClient, plant: Any) -> None:
    document = (await api.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    declared = {(ep.method, re.sub(r":\w+}", "}", ep.path)) for ep in api_router().endpoints}
    assert documented == declared
    put = document["paths"]["/api/v1/tasks/{task_id}/assignment"]["put"]
    assert {p["name"] for p in put["parameters"]} == {"task_id", "If-Match"}
    assert "412" in put["responses"] and "428" in put["responses"]


async def test_health_ready_and_metrics(api: httpx.AsyncClient, plant: Any) -> None:
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = await api.get("/health/ready")
    assert ready.status_code == 200
    # Embedded, the app runs its own jobs: the worker is there, nothing waits.
    assert ready.json()["checks"] == {"database": "ok", "workers": "ok"}
    assert ready.json()["queue"] == {"workers_alive": 1, "oldest_waiting_s": None}
    metrics = await api.get("/metrics")
    assert "takt_http_requests_total" in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")


async def test_an_idempotency_key_replays_the_first_response(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: Any
) -> None:
    maria = await login("maria")
    headers = {**maria, "Idempotency-Key": "create-lathe-7"}
    body = {"name": "Lathe 7", "type": "lathe"}
    first = await api.post("/api/v1/equipment", headers=headers, json=body)
    replay = await api.post("/api/v1/equipment", headers=headers, json=body)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    async with app_services[1].db.read() as session:
        lathes = await session.scalar(select(func.count()).where(t.Equipment.name == "Lathe 7"))
    assert lathes == 1
    other = await api.post(
        "/api/v1/equipment", headers=headers, json={"name": "Lathe 8", "type": "lathe"}
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # A method or path no route takes is the router's to answer, key or not.
    wrong_method = await api.delete("/api/v1/equipment", headers=headers)
    assert wrong_method.status_code == 405
    nowhere = await api.post("/api/v1/nowhere", headers=headers, json=body)
    assert nowhere.status_code == 404


async def test_rate_limit_headers_and_429(api: httpx.AsyncClient, plant: Any, login: Any) -> None:
    anna = await login("anna")
    first = await api.get("/api/v1/equipment", headers=anna)
    assert first.headers["ratelimit-limit"] == "10000"
    assert int(first.headers["ratelimit-remaining"]) < 10000


async def test_the_app_starts_and_stops_through_its_lifespan(settings: Settings) -> None:
    # uvicorn drives this on start; a middleware that chokes on it breaks startup.
    app = create_app(settings)
    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_readiness_survives_redis_going_away(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    # Nothing listens on port 1: Redis is "down". The instance still serves.
    settings = Settings(
        database_url=sqlite_database_url, var_dir=tmp_path, redis_url="redis://127.0.0.1:1/0"
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://takt.test") as client:
        response = await client.get("/health/ready")
    await app.state.services.db.dispose()
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["redis"].startswith("error")
