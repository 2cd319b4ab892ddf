"""CRUD of equipment, operators, jobs and tasks; pagination; filters; encryption at rest."""

from __future__ import annotations

from typing import Any

import httpx
from clocks import iso_z
from sqlalchemy import select

from app.db import tables as t


async def test_equipment_lifecycle_with_versions(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: Any
) -> None:
    maria = await login("maria")
    created = await api.post(
        "/api/v1/equipment",
        headers=maria,
        json={"name": "Lathe 1", "type": "lathe", "capabilities": ["turning"]},
    )
    assert created.status_code == 201, created.text
    lathe = created.json()
    assert lathe["status"] == "available" and lathe["version"] == 1
    url = f"/api/v1/equipment/{lathe['id']}"

    assert (await api.patch(url, headers=maria, json={"status": "down"})).status_code == 428
    down = await api.patch(
        url,
        headers={**maria, "If-Match": created.headers["etag"]},
        json={"status": "down", "expected_back": iso_z(plant.at(6, days=1))},
    )
    assert down.status_code == 200
    assert down.json()["status"] == "down" and down.json()["version"] == 2
    stale = await api.patch(
        url, headers={**maria, "If-Match": created.headers["etag"]}, json={"name": "x"}
    )
    assert stale.status_code == 412

    async with app_services[1].db.read() as session:
        audit = (
            (
                await session.execute(
                    select(t.AuditEntry).where(
                        t.AuditEntry.entity == "equipment", t.AuditEntry.entity_id == lathe["id"]
                    )
                )
            )
            .scalars()
            .all()
        )
    assert [a.action for a in audit] == ["equipment.created", "equipment.status_changed"]
    assert audit[1].before == {"status": "available", "expected_back": None}

    duplicate = await api.post(
        "/api/v1/equipment", headers=maria, json={"name": "Lathe 1", "type": "lathe"}
    )
    assert duplicate.status_code == 409
    deleted = await api.delete(url, headers={**maria, "If-Match": down.headers["etag"]})
    assert deleted.status_code == 204
    assert (await api.get(url, headers=maria)).status_code == 404


async def test_lists_paginate_at_most_100_and_filter(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    maria = await login("maria")
    for n in range(3):
        await api.post(
            "/api/v1/equipment",
            headers=maria,
            json={"name": f"Booth {n}", "type": "paint_booth", "capabilities": ["painting"]},
        )
    page = (await api.get("/api/v1/equipment?type=paint_booth&limit=2", headers=maria)).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    rest = await api.get("/api/v1/equipment?type=paint_booth&limit=2&offset=2", headers=maria)
    assert [e["name"] for e in rest.json()["items"]] == ["Booth 2"]
    by_capability = await api.get("/api/v1/equipment?capability=milling", headers=maria)
    assert [e["id"] for e in by_capability.json()["items"]] == [plant.mill]
    too_many = await api.get("/api/v1/equipment?limit=101", headers=maria)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "invalid_query"
    unknown = await api.get("/api/v1/equipment?colour=red", headers=maria)
    assert unknown.status_code == 422


async def test_operator_contact_is_encrypted_at_rest_and_kept_out_of_the_audit(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: Any
) -> None:
    maria = await login("maria")
    created = await api.post(
        "/api/v1/operators",
        headers=maria,
        json={
            "name": "Ida Lund",
            "skills": [{"skill": "painting", "level": 4}],
            "shifts": [{"weekday": 0, "start": "06:00", "end": "14:00"}],
            "contact": {"phone": "+49 151 555 0199", "email": "ida@example.org"},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["contact"]["phone"] == "+49 151 555 0199"
    async with app_services[1].db.read() as session:
        raw = await session.scalar(
            select(t.Operator.contact_encrypted).where(t.Operator.id == created.json()["id"])
        )
        audit = (await session.execute(select(t.AuditEntry))).scalars().all()
    assert raw is not None and b"555" not in raw and b"ida@" not in raw
    assert all("555" not in str(a.after) and "Ida" not in str(a.after) for a in audit)


async def test_jobs_and_tasks_with_predecessors(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    maria = await login("maria")
    job = await api.post(
        "/api/v1/jobs",
        headers=maria,
        json={
            "name": "Frame 12",
            "release": iso_z(plant.at(6)),
            "due": iso_z(plant.at(16, days=4)),
        },
    )
    assert job.status_code == 201
    bad_job = await api.post(
        "/api/v1/jobs",
        headers=maria,
        json={"name": "Late", "release": iso_z(plant.at(6, days=4)), "due": iso_z(plant.at(16))},
    )
    assert bad_job.status_code == 422
    first = await api.post(
        "/api/v1/tasks",
        headers=maria,
        json={"job_id": job.json()["id"], "name": "Saw", "duration_minutes": 30},
    )
    second = await api.post(
        "/api/v1/tasks",
        headers=maria,
        json={
            "job_id": job.json()["id"],
            "name": "Drill",
            "duration_minutes": 45,
            "predecessors": [first.json()["id"]],
        },
    )
    assert second.status_code == 201 and second.json()["predecessors"] == [first.json()["id"]]
    cycle = await api.patch(
        f"/api/v1/tasks/{first.json()['id']}",
        headers={**maria, "If-Match": first.headers["etag"]},
        json={"predecessors": [second.json()["id"]]},
    )
    assert cycle.status_code == 422
    assert cycle.json()["error"]["details"]["cycle"]
    unchanged = await api.get(f"/api/v1/tasks/{first.json()['id']}", headers=maria)
    assert unchanged.json()["predecessors"] == [] and unchanged.json()["version"] == 1
    missing_job = await api.post(
        "/api/v1/tasks", headers=maria, json={"job_id": 999, "name": "X", "duration_minutes": 5}
    )
    assert missing_job.status_code == 422
    listed = await api.get(f"/api/v1/tasks?job_id={job.json()['id']}", headers=maria)
    assert [task["name"] for task in listed.json()["items"]] == ["Saw", "Drill"]
