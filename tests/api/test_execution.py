"""Operators run their own tasks, and only their own (SPEC §5 ownership)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
from clocks import iso_z

from app import clock


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


async def test_an_action_records_the_moment_it_was_tapped(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    """What a phone that was offline sends: when each action happened, not when it synced."""
    await place(api, login, plant, plant.cut, plant.olga, plant.mill)
    olga = await login("olga")
    url = f"/api/v1/tasks/{plant.cut}"
    now = clock.now()
    started, paused, done = (now - timedelta(minutes=m) for m in (50, 30, 5))
    for action, at in [("start", started), ("pause", paused), ("complete", done)]:
        response = await api.post(f"{url}/{action}", headers=olga, json={"at": at.isoformat()})
        assert response.status_code == 200, response.text
    task = response.json()
    assert task["status"] == "done"
    recorded = (datetime.fromisoformat(task[k]) for k in ("actual_start", "actual_end"))
    assert tuple(recorded) == (started, done)


async def test_a_tap_time_out_of_bounds_is_refused_and_writes_nothing(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    await place(api, login, plant, plant.cut, plant.olga, plant.mill)
    olga = await login("olga")
    url = f"/api/v1/tasks/{plant.cut}"
    now = clock.now()
    refused = [
        (now + timedelta(minutes=10), 422, "invalid_input", "in the future"),
        (now - timedelta(hours=25), 422, "invalid_input", "24 hours ago"),
    ]
    for at, status, code, words in refused:
        response = await api.post(f"{url}/start", headers=olga, json={"at": at.isoformat()})
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code and words in response.text
    no_offset = await api.post(
        f"{url}/start", headers=olga, json={"at": now.replace(tzinfo=None).isoformat()}
    )
    assert no_offset.status_code == 422
    stranger = await api.post(f"{url}/start", headers=olga, json={"when": now.isoformat()})
    assert stranger.status_code == 422
    task = (await api.get(url, headers=olga)).json()
    assert task["status"] == "scheduled" and task["actual_start"] is None and task["version"] == 2

    # A clock a little ahead is taken as now; an action before the previous one is refused.
    ahead = await api.post(
        f"{url}/start", headers=olga, json={"at": (now + timedelta(minutes=1)).isoformat()}
    )
    assert ahead.status_code == 200
    assert datetime.fromisoformat(ahead.json()["actual_start"]) <= clock.now()
    earlier = await api.post(
        f"{url}/pause", headers=olga, json={"at": (now - timedelta(minutes=5)).isoformat()}
    )
    assert earlier.status_code == 409
    error = earlier.json()["error"]
    assert error["code"] == "state_conflict" and "previous_action_at" in error["details"]
    assert (await api.get(url, headers=olga)).json()["status"] == "in_progress"


async def test_the_tap_time_is_in_the_api_document(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    for action in ("start", "pause", "complete"):
        operation = document["paths"][f"/api/v1/tasks/{{task_id}}/{action}"]["post"]
        body = operation["requestBody"]
        assert body["required"] is False
        assert "at" in json.dumps(body) or "TaskActionIn" in json.dumps(body)
