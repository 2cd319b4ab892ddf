"""Operators run their own tasks, and only their own (SPEC §5 ownership)."""

from __future__ import annotations

from typing import Any

import httpx
from clocks import iso_z


async def place(
    api: httpx.AsyncClient, login: Any, plant: Any, task_id: int, operator: int, equipment: int
) -> None:
    response = await api.put(
        f"/api/v1/tasks/{task_id}/assignment",
        headers={**await login("anna"), "If-Match": '"1"'},
        json={
            "operator_id": operator,
            "equipment_id": equipment,
            "start": iso_z(plant.at(8)),
            "end": iso_z(plant.at(9)),
        },
    )
    assert response.status_code == 200, response.text


async def test_an_operator_starts_pauses_and_completes_their_task(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    await place(api, login, plant, plant.cut, plant.olga, plant.mill)
    olga = await login("olga")
    url = f"/api/v1/tasks/{plant.cut}"

    started = await api.post(f"{url}/start", headers=olga)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    assert started.json()["actual_start"] is not None
    assert (await api.post(f"{url}/pause", headers=olga)).json()["status"] == "paused"
    assert (await api.post(f"{url}/start", headers=olga)).json()["actual_start"] == started.json()[
        "actual_start"
    ]
    done = await api.post(f"{url}/complete", headers=olga)
    assert done.json()["status"] == "done"
    assert done.json()["actual_end"] >= done.json()["actual_start"]

    again = await api.post(f"{url}/start", headers=olga)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "state_conflict"


async def test_an_unscheduled_task_cannot_be_started(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    response = await api.post(f"/api/v1/tasks/{plant.cut}/start", headers=await login("anna"))
    assert response.status_code == 409


async def test_an_operator_never_reaches_another_operators_task(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    await place(api, login, plant, plant.cut, plant.olga, plant.mill)
    await place(api, login, plant, plant.weld, plant.omar, plant.welder)
    omar = await login("omar")

    assert (await api.get(f"/api/v1/tasks/{plant.cut}", headers=omar)).status_code == 404
    for action in ("start", "pause", "complete"):
        response = await api.post(f"/api/v1/tasks/{plant.cut}/{action}", headers=omar)
        assert response.status_code == 404, action
    listed = (await api.get("/api/v1/tasks", headers=omar)).json()
    assert [task["id"] for task in listed["items"]] == [plant.weld]
    # Asking for Olga's tasks by filter still yields only his own.
    filtered = await api.get(f"/api/v1/tasks?operator_id={plant.olga}", headers=omar)
    assert [task["id"] for task in filtered.json()["items"]] == [plant.weld]
    assert (await api.get(f"/api/v1/operators/{plant.olga}", headers=omar)).status_code == 404
    operators = (await api.get("/api/v1/operators", headers=omar)).json()["items"]
    assert [o["id"] for o in operators] == [plant.omar]
    assert (await api.get("/api/v1/jobs", headers=omar)).status_code == 403
    assert (await api.post("/api/v1/schedule/validate", headers=omar, json={})).status_code == 403


async def test_a_scheduler_may_record_progress_for_anyone(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    await place(api, login, plant, plant.cut, plant.olga, plant.mill)
    response = await api.post(f"/api/v1/tasks/{plant.cut}/start", headers=await login("anna"))
    assert response.status_code == 200
