"""The optimizer, its drafts, bulk operations and the queue over JSON."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from servers import load_demo
from sqlalchemy import update

from app import clock
from app.db import tables as t
from app.services.context import Services


async def settle(api: httpx.AsyncClient, headers: dict[str, str], run_id: str) -> dict[str, Any]:
    while True:
        found = (await api.get(f"/api/v1/queue/{run_id}", headers=headers)).json()
        if found["status"] in ("done", "failed", "cancelled"):
            return dict(found)
        await asyncio.sleep(0.05)


async def test_run_preview_apply_over_the_api(
    api: httpx.AsyncClient, login: Any, plant: Any, app_services: tuple[object, Services]
) -> None:
    anna = await login("anna")
    started = await api.post(
        "/api/v1/optimizations",
        json={"time_limit_s": 1, "workers": 1, "time_unit_minutes": 5},
        headers=anna,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    assert started.json()["status_url"] == f"/api/v1/queue/{run_id}"
    finished = await settle(api, anna, run_id)
    assert finished["status"] == "done" and finished["kind"] == "plan.optimize"
    run = (await api.get(f"/api/v1/optimizations/{run_id}", headers=anna)).json()
    draft_id = run["draft_id"]

    diff = (await api.get(f"/api/v1/drafts/{draft_id}", headers=anna)).json()
    assert {item["task_id"] for item in diff["scheduled"]} == {plant.cut, plant.weld}
    assert diff["kpis"]["utilization"]["after"] > 0

    olga = await login("olga")
    assert (await api.post(f"/api/v1/drafts/{draft_id}/apply", headers=olga)).status_code == 403
    applied = await api.post(f"/api/v1/drafts/{draft_id}/apply", headers=anna)
    assert applied.status_code == 200, applied.text
    assert applied.json()["changes"] == 2

    metrics = (await api.get("/api/v1/queue/metrics", headers=anna)).json()
    assert metrics == {
        **{"waiting": 0, "active": 0, "done": 1, "failed": 0, "cancelled": 0},
        # Embedded, the app is the worker; nothing waits for it.
        **{"workers_alive": 1, "oldest_waiting_s": None},
    }
    assert (await api.get("/api/v1/jobs/metrics", headers=anna)).json() == metrics
    assert (await api.get("/api/v1/jobs/metrics", headers=olga)).status_code == 403
    scraped = (await api.get("/metrics")).text
    assert 'takt_queue_jobs{status="done"} 1.0' in scraped
    await _stop(app_services)


async def test_a_stale_draft_is_a_409_naming_the_task(
    api: httpx.AsyncClient, login: Any, plant: Any, app_services: tuple[object, Services]
) -> None:
    anna = await login("anna")
    started = await api.post(
        "/api/v1/optimizations", json={"time_limit_s": 1, "workers": 1}, headers=anna
    )
    run_id = started.json()["run_id"]
    finished = await settle(api, anna, run_id)
    draft_id = finished["result"]["draft_id"]
    edited = await api.patch(
        f"/api/v1/tasks/{plant.weld}",
        json={"instructions": "new jig"},
        headers={**(await login("maria")), "If-Match": '"1"'},
    )
    assert edited.status_code == 200, edited.text
    refused = await api.post(f"/api/v1/drafts/{draft_id}/apply", headers=anna)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "draft_stale"
    assert error["details"]["changed_task_ids"] == [plant.weld]
    await _stop(app_services)


async def test_an_expired_draft_is_a_409_in_the_one_error_shape(
    api: httpx.AsyncClient, login: Any, plant: Any, app_services: tuple[object, Services]
) -> None:
    _, services = app_services
    anna = await login("anna")
    started = await api.post(
        "/api/v1/optimizations", json={"time_limit_s": 1, "workers": 1}, headers=anna
    )
    draft_id = (await settle(api, anna, started.json()["run_id"]))["result"]["draft_id"]
    # A day and a bit later (TAKT_DRAFT_EXPIRY_HOURS is 24):
    async with services.db.write() as session:
        await session.execute(
            update(t.Draft)
            .where(t.Draft.schedule_id == draft_id)
            .values(created_at=clock.now() - timedelta(hours=25))
        )

    refused = await api.post(f"/api/v1/drafts/{draft_id}/apply", headers=anna)

    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "draft_expired" and error["details"]["draft_id"] == draft_id
    assert "expired" in error["message"] and "run the optimizer again" in error["message"]
    diff = (await api.get(f"/api/v1/drafts/{draft_id}", headers=anna)).json()
    assert diff["expired"] is True and diff["applied"] is False
    await _stop(app_services)


async def test_bulk_and_bad_input(
    api: httpx.AsyncClient, login: Any, plant: Any, app_services: tuple[object, Services]
) -> None:
    anna = await login("anna")
    for path, body in (
        ("/api/v1/optimizations", {"time_limit_s": 0}),
        ("/api/v1/optimizations", {"job_ids": "all"}),
        ("/api/v1/bulk/shift-job", {"job_id": plant.job}),
        ("/api/v1/bulk/shift-job", {"job_id": plant.job, "minutes": 0}),
    ):
        refused = await api.post(path, json=body, headers=anna)
        assert refused.status_code == 422, (path, body, refused.text)
    missing = await api.post("/api/v1/bulk/unschedule-job", json={"job_id": 999}, headers=anna)
    assert missing.status_code == 404
    assert (await api.get("/api/v1/queue/not-a-run", headers=anna)).status_code == 404
    assert (await api.get(f"/api/v1/queue/{'0' * 32}", headers=anna)).status_code == 404
    assert (await api.get("/api/v1/drafts/999", headers=anna)).status_code == 404

    queued = await api.post("/api/v1/bulk/unschedule-job", json={"job_id": plant.job}, headers=anna)
    assert queued.status_code == 202
    done = await settle(api, anna, queued.json()["run_id"])
    assert done["status"] == "done" and done["result"] == {"unscheduled": [], "skipped": []}
    cancel = await api.post(f"/api/v1/queue/{done['id']}/cancel", headers=anna)
    assert cancel.status_code == 409

    document = (await api.get("/openapi.json")).json()
    for path in ("/api/v1/optimizations", "/api/v1/queue/{run_id}", "/api/v1/drafts/{draft_id}"):
        assert path in document["paths"]
    await _stop(app_services)


async def _stop(app_services: tuple[object, Services]) -> None:
    _, services = app_services
    assert services.queue is not None
    await services.queue.stop()


async def test_a_plant_scale_run_over_a_real_server_says_what_it_reached(
    sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> None:
    """The demo plant searched as a large one is (neighbourhoods from a first plan),
    through a real server: the run and its draft say what the solver reached, the
    first plan and what improved since, and the KPIs compare like with like."""
    load_demo(sqlite_database_url, tmp_path, "small")
    base_url = live_server(
        database_url=sqlite_database_url,
        var_dir=tmp_path,
        env={"TAKT_OPTIMIZER_AT_SCALE_TASKS": "1"},
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        token = await http.post(
            "/api/v1/auth/token", json={"username": "anna", "password": "takt-demo"}
        )
        anna = {"Authorization": f"Bearer {token.json()['access_token']}"}
        started = await http.post(
            "/api/v1/optimizations",
            json={"time_limit_s": 4, "workers": 1, "time_unit_minutes": 5},
            headers=anna,
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert (await settle(http, anna, run_id))["status"] == "done"
        run = (await http.get(f"/api/v1/optimizations/{run_id}", headers=anna)).json()
        diff = (await http.get(f"/api/v1/drafts/{run['draft_id']}", headers=anna)).json()

    solver = run["solver"]
    assert solver["search"] == "neighbourhoods" and solver["solver_status"] == "feasible"
    assert solver["reached"] in ("best found", "feasible")
    first = solver["first_plan"]
    # Never worse than the first plan: the jobs complete before first, then all.
    best = (solver["promised_weighted_lateness_minutes"], solver["weighted_lateness_minutes"])
    assert best <= (first["promised_weighted_lateness_minutes"], first["weighted_lateness_minutes"])
    assert solver["improvements"] >= 0 and first["seconds"] >= 0
    assert diff["solver"] == {key: solver[key] for key in diff["solver"]}
    kpis = diff["kpis"]
    # Like with like: the jobs the live plan had complete, before and after; the rest alone.
    assert set(kpis["weighted_lateness"]) == {"before", "after"}
    assert set(kpis["new_work"]) == {"jobs", "tasks", "weighted_lateness", "makespan"}
