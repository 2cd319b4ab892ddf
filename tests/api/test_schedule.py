"""Validation through the API, the change feed, and the critical path."""

from __future__ import annotations

from typing import Any

import httpx
from clocks import iso_z

from app.db import tables as t
from app.services.context import SYSTEM, Services
from app.services.write_path import change


async def place(
    api: httpx.AsyncClient, headers: dict[str, str], task: int, body: dict[str, Any]
) -> httpx.Response:
    current = await api.get(f"/api/v1/tasks/{task}", headers=headers)
    return await api.put(
        f"/api/v1/tasks/{task}/assignment",
        headers={**headers, "If-Match": current.headers["etag"]},
        json=body,
    )


async def test_whole_plan_validation_finds_a_broken_dependency(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    anna = await login("anna")
    clean = await api.post("/api/v1/schedule/validate", headers=anna, json={})
    assert clean.json()["conflicts"] == [] and clean.json()["counts"] == {}
    # Weld (09:00-10:30) placed before Cut (10:00-11:00) ends: the weld starts too early.
    await place(
        api,
        anna,
        plant.cut,
        {
            "operator_id": plant.olga,
            "equipment_id": plant.mill,
            "start": iso_z(plant.at(10, days=1)),
            "end": iso_z(plant.at(11, days=1)),
        },
    )
    await place(
        api,
        anna,
        plant.weld,
        {
            "operator_id": plant.omar,
            "equipment_id": plant.welder,
            "start": iso_z(plant.at(9, days=1)),
            "end": iso_z(plant.at(10, 30, days=1)),
        },
    )

    response = await api.post("/api/v1/schedule/validate", headers=anna, json={})

    assert response.status_code == 200
    conflicts = response.json()["conflicts"]
    assert [c["type"] for c in conflicts] == ["dependency_violation"]
    assert sorted(conflicts[0]["task_ids"]) == sorted([plant.cut, plant.weld])
    assert response.json()["counts"] == {"dependency_violation": 1}


async def test_a_proposal_is_validated_without_being_saved(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    anna = await login("anna")
    await place(
        api,
        anna,
        plant.cut,
        {
            "operator_id": plant.olga,
            "equipment_id": plant.mill,
            "start": iso_z(plant.at(8, days=1)),
            "end": iso_z(plant.at(9, days=1)),
        },
    )
    revision = (await api.get("/api/v1/changes?since=0", headers=anna)).json()["revision"]
    proposal = {
        "task_id": plant.weld,
        "assignment": {
            "operator_id": plant.olga,
            "equipment_id": plant.mill,
            "start": iso_z(plant.at(8, 30, days=1)),
            "end": iso_z(plant.at(10, days=1)),
        },
    }

    response = await api.post("/api/v1/schedule/validate", headers=anna, json=proposal)

    assert response.status_code == 200
    assert sorted(c["type"] for c in response.json()["conflicts"]) == [
        "capability_mismatch",
        "dependency_violation",
        "equipment_double_booked",
        "operator_double_booked",
        "skill_mismatch",
    ]
    assert response.json()["revision"] == revision
    task = (await api.get(f"/api/v1/tasks/{plant.weld}", headers=anna)).json()
    assert task["assignment"] is None and task["version"] == 1
    half = await api.post("/api/v1/schedule/validate", headers=anna, json={"task_id": plant.weld})
    assert half.status_code == 422
    unknown = await api.post(
        "/api/v1/schedule/validate", headers=anna, json={**proposal, "task_id": 999}
    )
    assert unknown.status_code == 422


async def test_the_change_feed_resumes_from_a_revision(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    anna = await login("anna")
    start = (await api.get("/api/v1/changes?since=0", headers=anna)).json()["revision"]
    await place(
        api,
        anna,
        plant.cut,
        {
            "operator_id": plant.olga,
            "equipment_id": plant.mill,
            "start": iso_z(plant.at(8, days=1)),
            "end": iso_z(plant.at(9, days=1)),
        },
    )

    feed = (await api.get(f"/api/v1/changes?since={start}", headers=anna)).json()

    assert feed["reload"] is False and feed["revision"] == start + 1
    [entry] = feed["changes"]
    assert entry["revision"] == start + 1 and entry["kind"] == "assignment.set"
    assert entry["entities"] == {
        "tasks": [plant.cut],
        "operators": [plant.olga],
        "equipment": [plant.mill],
    }
    ahead = (await api.get(f"/api/v1/changes?since={start + 50}", headers=anna)).json()
    assert ahead["reload"] is True
    assert (await api.get("/api/v1/changes?since=-1", headers=anna)).status_code == 422
    assert (await api.get("/api/v1/changes", headers=anna)).status_code == 422


async def test_critical_path_of_a_job(api: httpx.AsyncClient, plant: Any, login: Any) -> None:
    response = await api.get(f"/api/v1/jobs/{plant.job}/critical-path", headers=await login("anna"))
    assert response.status_code == 200
    body = response.json()
    assert body["critical_task_ids"] == [plant.cut, plant.weld]
    assert body["makespan_minutes"] == 150
    assert all(task["slack"] == 0 for task in body["tasks"])
    missing = await api.get("/api/v1/jobs/999/critical-path", headers=await login("anna"))
    assert missing.status_code == 404


async def test_the_critical_path_of_a_job_whose_links_loop_is_refused(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: tuple[object, Services]
) -> None:
    _, services = app_services
    async with change(services, SYSTEM, "test.loop") as tx:
        tx.session.add(t.TaskDependency(task_id=plant.cut, predecessor_id=plant.weld))
    response = await api.get(f"/api/v1/jobs/{plant.job}/critical-path", headers=await login("anna"))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "dependency_cycle"
    assert sorted(error["details"]["tasks"]) == sorted([plant.cut, plant.weld])
