"""PUT/DELETE /api/v1/tasks/{id}/assignment: optimistic locking, audit, change log."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import httpx
from clocks import iso_z
from sqlalchemy import func, select

from app.db import tables as t
from app.services.context import Services

PLUS_ONE = timezone(timedelta(hours=1))


def slot(plant: Any) -> dict[str, str]:
    """07:00-08:00 UTC on the plant's day, written with a +01:00 offset."""
    start, end = plant.at(7).astimezone(PLUS_ONE), plant.at(8).astimezone(PLUS_ONE)
    return {"start": start.isoformat(), "end": end.isoformat()}


def placement(plant: Any, **overrides: Any) -> dict[str, Any]:
    return {"operator_id": plant.olga, "equipment_id": plant.mill, **slot(plant), **overrides}


async def counts(services: Services) -> tuple[int, int, int]:
    """(schedule revision, change-log rows, audit entries) — what a write leaves behind."""
    async with services.db.read() as session:
        revision = await session.scalar(select(t.Schedule.revision))
        changes = await session.scalar(select(func.count()).select_from(t.ChangeLogEntry))
        audits = await session.scalar(select(func.count()).select_from(t.AuditEntry))
    return int(revision or 0), int(changes or 0), int(audits or 0)


async def test_assigning_with_the_current_etag_places_the_task_and_records_it(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: Any
) -> None:
    anna = await login("anna")
    before = await counts(app_services[1])
    current = await api.get(f"/api/v1/tasks/{plant.cut}", headers=anna)
    assert current.headers["etag"] == '"1"'

    response = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={**anna, "If-Match": current.headers["etag"]},
        json=placement(plant),
    )

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    body = response.json()
    assert body["task"]["status"] == "scheduled"
    # Times come back in UTC, whatever offset the client sent.
    assert body["task"]["assignment"] == {
        "operator_id": plant.olga,
        "equipment_id": plant.mill,
        "start": iso_z(plant.at(7)),
        "end": iso_z(plant.at(8)),
    }
    assert body["conflicts"] == []
    revision, changes, audits = await counts(app_services[1])
    assert (revision, changes, audits) == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert body["revision"] == revision


async def test_assignment_returns_the_conflicts_it_creates(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    anna = await login("anna")
    response = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={**anna, "If-Match": '"1"'},
        json=placement(plant, operator_id=plant.omar, equipment_id=plant.welder),
    )
    assert response.status_code == 200
    types = sorted(c["type"] for c in response.json()["conflicts"])
    assert types == ["capability_mismatch", "skill_mismatch"]
    assert all(c["severity"] == "error" for c in response.json()["conflicts"])


async def test_missing_if_match_is_428_and_writes_nothing(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: Any
) -> None:
    anna = await login("anna")
    before = await counts(app_services[1])
    response = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment", headers=anna, json=placement(plant)
    )
    assert response.status_code == 428
    assert response.json()["error"]["code"] == "precondition_required"
    assert await counts(app_services[1]) == before


async def test_stale_if_match_is_412_naming_who_changed_it(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: Any
) -> None:
    anna, ben = await login("anna"), await login("ben")
    first = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={**ben, "If-Match": '"1"'},
        json=placement(plant),
    )
    assert first.status_code == 200
    before = await counts(app_services[1])

    stale = await api.put(
        f"/api/v1/tasks/{plant.cut}/assignment",
        headers={**anna, "If-Match": '"1"'},
        json=placement(plant, start=iso_z(plant.at(10)), end=iso_z(plant.at(11))),
    )

    assert stale.status_code == 412
    error = stale.json()["error"]
    assert error["code"] == "version_mismatch"
    assert error["details"]["current_version"] == 2
    async with app_services[1].db.read() as session:
        ben_id = await session.scalar(select(t.User.id).where(t.User.username == "ben"))
    assert error["details"]["changed_by"] == ben_id
    assert await counts(app_services[1]) == before
    task = (await api.get(f"/api/v1/tasks/{plant.cut}", headers=anna)).json()
    assert task["assignment"]["start"] == iso_z(plant.at(7))  # Ben's edit stands


async def test_bad_input_gets_a_clear_4xx_and_writes_nothing(
    api: httpx.AsyncClient, plant: Any, login: Any, app_services: Any
) -> None:
    anna = await login("anna")
    url = f"/api/v1/tasks/{plant.cut}/assignment"
    headers = {**anna, "If-Match": '"1"'}
    before = await counts(app_services[1])
    cases = [
        (placement(plant, end=slot(plant)["start"]), 422, "invalid_input"),
        (placement(plant, start=slot(plant)["start"][:19]), 422, "invalid_input"),  # no offset
        (placement(plant, operator_id=999), 422, "invalid_input"),
        (placement(plant, equipment_id="mill"), 422, "invalid_input"),
        ({**placement(plant), "colour": "red"}, 422, "invalid_input"),
        ({"operator_id": plant.olga}, 422, "invalid_input"),
    ]
    for body, status, code in cases:
        response = await api.put(url, headers=headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]
    malformed = await api.put(
        url, headers={**headers, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    bad_etag = await api.put(url, headers={**anna, "If-Match": "banana"}, json=placement(plant))
    assert bad_etag.status_code == 400
    missing = await api.put("/api/v1/tasks/999/assignment", headers=headers, json=placement(plant))
    assert missing.status_code == 404
    assert await counts(app_services[1]) == before


async def test_unscheduling_returns_the_task_to_the_tray(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    anna = await login("anna")
    url = f"/api/v1/tasks/{plant.cut}/assignment"
    placed = await api.put(url, headers={**anna, "If-Match": '"1"'}, json=placement(plant))
    assert (await api.delete(url, headers=anna)).status_code == 428
    response = await api.delete(url, headers={**anna, "If-Match": placed.headers["etag"]})
    assert response.status_code == 200
    assert response.json()["assignment"] is None
    assert response.json()["status"] == "pending"
    again = await api.delete(url, headers={**anna, "If-Match": response.headers["etag"]})
    assert again.status_code == 409


async def test_managers_and_operators_may_not_place_tasks(
    api: httpx.AsyncClient, plant: Any, login: Any
) -> None:
    for who in ("maria", "olga"):
        response = await api.put(
            f"/api/v1/tasks/{plant.cut}/assignment",
            headers={**await login(who), "If-Match": '"1"'},
            json=placement(plant),
        )
        assert response.status_code == 403, who
        assert response.json()["error"]["code"] == "forbidden"
