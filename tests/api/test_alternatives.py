"""Alternative routings through the API: a task's duration per equipment, read,
written (bad input refused whole), and held against the slots it is placed in."""

from __future__ import annotations

from typing import Any

import httpx
from clocks import iso_z
from test_assignment import counts

from app.services.context import Services


async def fast_mill(api: httpx.AsyncClient, maria: dict[str, str]) -> int:
    response = await api.post(
        "/api/v1/equipment",
        headers=maria,
        json={"name": "Mill 2 (5-axis)", "type": "cnc_mill", "capabilities": ["milling"]},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_a_task_reads_and_writes_its_alternative_routings(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    maria = await login("maria")
    mill2 = await fast_mill(api, maria)
    created = await api.post(
        "/api/v1/tasks",
        headers=maria,
        json={
            "job_id": plant.job,
            "name": "Face",
            "duration_minutes": 60,
            "required_capability": "milling",
            "alternatives": [
                {"equipment_id": mill2, "duration_minutes": 35},
                {"equipment_id": plant.mill, "duration_minutes": 60},
            ],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["alternatives"] == [
        {"equipment_id": plant.mill, "duration_minutes": 60},
        {"equipment_id": mill2, "duration_minutes": 35},
    ]
    task_id = created.json()["id"]

    patched = await api.patch(
        f"/api/v1/tasks/{task_id}",
        headers={**maria, "If-Match": created.headers["etag"]},
        json={"alternatives": [{"equipment_id": mill2, "duration_minutes": 30}]},
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["alternatives"] == [{"equipment_id": mill2, "duration_minutes": 30}]
    listed = await api.get(f"/api/v1/tasks?job_id={plant.job}", headers=maria)
    by_id = {task["id"]: task for task in listed.json()["items"]}
    assert by_id[task_id]["alternatives"] == [{"equipment_id": mill2, "duration_minutes": 30}]
    assert by_id[plant.cut]["alternatives"] == []


async def test_bad_alternatives_are_refused_and_write_nothing(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: tuple[object, Services]
) -> None:
    maria = await login("maria")
    mill2 = await fast_mill(api, maria)
    current = await api.get(f"/api/v1/tasks/{plant.cut}", headers=maria)
    before = await counts(app_services[1])
    bad_bodies = [
        [{"equipment_id": 999_999, "duration_minutes": 30}],
        [
            {"equipment_id": mill2, "duration_minutes": 30},
            {"equipment_id": mill2, "duration_minutes": 40},
        ],
        [{"equipment_id": mill2, "duration_minutes": 0}],
        [{"equipment_id": mill2}],
        [{"equipment_id": mill2, "duration_minutes": 30, "speed": 2}],
    ]
    for alternatives in bad_bodies:
        response = await api.patch(
            f"/api/v1/tasks/{plant.cut}",
            headers={**maria, "If-Match": current.headers["etag"]},
            json={"alternatives": alternatives},
        )
        assert response.status_code == 422, (alternatives, response.text)
        assert set(response.json()["error"]) == {"code", "message", "details"}

    assert await counts(app_services[1]) == before
    unchanged = await api.get(f"/api/v1/tasks/{plant.cut}", headers=maria)
    assert unchanged.json()["alternatives"] == [] and unchanged.headers["etag"] == '"1"'


async def test_a_slot_must_take_the_duration_of_the_equipment_it_is_on(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    maria, anna = await login("maria"), await login("anna")
    mill2 = await fast_mill(api, maria)
    current = await api.get(f"/api/v1/tasks/{plant.cut}", headers=maria)
    patched = await api.patch(
        f"/api/v1/tasks/{plant.cut}",
        headers={**maria, "If-Match": current.headers["etag"]},
        json={"alternatives": [{"equipment_id": mill2, "duration_minutes": 40}]},
    )
    assert patched.status_code == 200, patched.text

    # An hour on the fast mill: the task takes 40 minutes there.
    too_long = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={**anna, "If-Match": patched.headers["etag"]},
        json={
            "operator_id": plant.olga,
            "equipment_id": mill2,
            "start": iso_z(plant.at(7)),
            "end": iso_z(plant.at(8)),
        },
    )
    assert too_long.status_code == 200, too_long.text
    assert [c["type"] for c in too_long.json()["conflicts"]] == ["duration_mismatch"]
    assert "40 min" in too_long.json()["conflicts"][0]["message"]

    right = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={**anna, "If-Match": too_long.headers["etag"]},
        json={
            "operator_id": plant.olga,
            "equipment_id": mill2,
            "start": iso_z(plant.at(7)),
            "end": iso_z(plant.at(7, 40)),
        },
    )
    assert right.status_code == 200 and right.json()["conflicts"] == []
    # The mill without a row takes the task's own 60 minutes.
    own = await api.post(
        "/api/v1/schedule/validate",
        headers=anna,
        json={
            "task_id": plant.cut,
            "assignment": {
                "operator_id": plant.olga,
                "equipment_id": plant.mill,
                "start": iso_z(plant.at(7)),
                "end": iso_z(plant.at(8)),
            },
        },
    )
    assert own.status_code == 200, own.text
    assert own.json()["conflicts"] == []


async def test_a_booked_task_takes_its_new_length_from_its_start(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    maria, anna = await login("maria"), await login("anna")
    booked = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={
            **anna,
            "If-Match": (await api.get(f"/api/v1/tasks/{plant.cut}", headers=anna)).headers["etag"],
        },
        json={
            "operator_id": plant.olga,
            "equipment_id": plant.mill,
            "start": iso_z(plant.at(7)),
            "end": iso_z(plant.at(8)),
        },
    )
    assert booked.status_code == 200, booked.text

    longer = await api.patch(
        f"/api/v1/tasks/{plant.cut}",
        headers={**maria, "If-Match": booked.headers["etag"]},
        json={"duration_minutes": 90},
    )
    assert longer.status_code == 200, longer.text
    slot = longer.json()["assignment"]
    assert (slot["start"], slot["end"]) == (iso_z(plant.at(7)), iso_z(plant.at(8, 30)))

    mill2 = await fast_mill(api, maria)
    routed = await api.patch(
        f"/api/v1/tasks/{plant.cut}",
        headers={**maria, "If-Match": longer.headers["etag"]},
        json={"alternatives": [{"equipment_id": plant.mill, "duration_minutes": 50},
                               {"equipment_id": mill2, "duration_minutes": 30}]},
    )  # fmt: skip
    assert routed.status_code == 200, routed.text
    assert routed.json()["assignment"]["end"] == iso_z(plant.at(7, 50))  # its minutes on Mill 1
    checked = await api.post("/api/v1/schedule/validate", headers=anna, json={})
    assert "duration_mismatch" not in {c["type"] for c in checked.json()["conflicts"]}
