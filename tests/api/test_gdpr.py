"""GDPR through the API: an administrator exports everything Takt holds about an operator,
then erases it for good; the plan's history stays, names no one, and the audit chain
still verifies. Only `personal_data.manage` (administrators) may do either.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app import clock
from app.db import tables as t
from app.services.audit import verify_chain
from app.services.context import Services

PHONE, REASON = "+49 151 555 0142", "Knee surgery, Dr. Lindqvist"
PASSWORD = "takt-test-password"  # every account of the API tests' plant (tests/api/conftest.py)


@pytest.fixture
async def olga_in_full(api: httpx.AsyncClient, plant: Any, login: Any) -> dict[str, str]:
    """Olga with contact data and a week off with its reason; the admin's headers."""
    maria = await login("maria")
    current = await api.get(f"/api/v1/operators/{plant.olga}", headers=maria)
    off = plant.day + timedelta(days=20)
    changed = await api.patch(
        f"/api/v1/operators/{plant.olga}",
        headers={**maria, "If-Match": current.headers["etag"]},
        json={
            "contact": {"phone": PHONE},
            "exceptions": [
                {
                    "kind": "time_off",
                    "start": off.isoformat(),
                    "end": (off + timedelta(days=7)).isoformat(),
                    "reason": REASON,
                }
            ],
        },
    )
    assert changed.status_code == 200, changed.text
    return await login("admin")


async def test_an_export_holds_everything_takt_knows_about_the_operator(
    api: httpx.AsyncClient, plant: Any, olga_in_full: dict[str, str]
) -> None:
    found = await api.get(f"/api/v1/operators/{plant.olga}/personal-data", headers=olga_in_full)

    assert found.status_code == 200, found.text
    data = found.json()
    assert data["operator"]["name"] == "Olga Petrova"
    assert data["operator"]["contact"] == {"phone": PHONE}
    assert data["operator"]["skills"] == [{"skill": "milling", "level": 3}]
    assert [e["reason"] for e in data["operator"]["calendar"]] == [REASON]
    assert len(data["operator"]["weekly_shifts"]) == 7
    assert data["login"]["username"] == "olga" and data["login"]["role"] == "operator"
    assert data["assignments"] == []


@pytest.mark.parametrize("user", ["maria", "anna", "olga"])
async def test_only_administrators_export_or_erase(
    api: httpx.AsyncClient, plant: Any, login: Any, olga_in_full: dict[str, str], user: str
) -> None:
    headers = await login(user)
    path = f"/api/v1/operators/{plant.olga}"
    exported = await api.get(f"{path}/personal-data", headers=headers)
    erased = await api.post(f"{path}/erase", headers={**headers, "If-Match": '"2"'})
    assert (exported.status_code, erased.status_code) == (403, 403)
    assert exported.json()["error"]["code"] == "forbidden"


async def test_erasure_leaves_the_history_whole_naming_no_one_and_the_chain_intact(
    api: httpx.AsyncClient,
    plant: Any,
    olga_in_full: dict[str, str],
    app_services: tuple[object, Services],
) -> None:
    _, services = app_services
    path = f"/api/v1/operators/{plant.olga}"
    current = await api.get(path, headers=olga_in_full)
    assert (await api.post(f"{path}/erase", headers=olga_in_full)).status_code == 428
    stale = await api.post(f"{path}/erase", headers={**olga_in_full, "If-Match": '"1"'})
    assert stale.status_code == 412

    signed_in = await api.post(
        "/api/v1/auth/token", json={"username": "olga", "password": PASSWORD}
    )
    erased = await api.post(
        f"{path}/erase", headers={**olga_in_full, "If-Match": current.headers["etag"]}
    )

    assert erased.status_code == 200, erased.text
    # Her sign-ins end with her login: the refresh token she held is refused.
    again = {"refresh_token": signed_in.json()["refresh_token"]}
    assert (await api.post("/api/v1/auth/refresh", json=again)).status_code == 401
    after = (await api.get(path, headers=olga_in_full)).json()
    assert after["name"] == f"Erased operator {plant.olga}" and after["contact"] is None
    data = (await api.get(f"{path}/personal-data", headers=olga_in_full)).json()
    assert data["operator"]["calendar"] == [] and data["operator"]["skills"] == []
    assert data["login"]["username"].startswith("erased-") and not data["login"]["active"]
    refused = await api.post("/api/v1/auth/token", json={"username": "olga", "password": PASSWORD})
    assert refused.status_code == 401
    # The trail never held her name, contact or reason, and still verifies.
    async with services.db.read() as session:
        entries = (await session.execute(select(t.AuditEntry.before, t.AuditEntry.after))).all()
    written = json.dumps([list(entry) for entry in entries])
    assert "Olga" not in written and PHONE not in written and REASON not in written
    assert (await verify_chain(services)).intact
    # On SQLite the database's own files no longer hold them either.
    if services.db.is_sqlite:
        database = Path(services.db.url.split("///", 1)[1])
        for file in (database, database.with_name(database.name + "-wal")):
            if file.exists():
                raw = file.read_bytes()
                assert b"Olga Petrova" not in raw and REASON.encode() not in raw, file


async def test_an_operator_with_open_work_is_not_erased(
    api: httpx.AsyncClient,
    plant: Any,
    olga_in_full: dict[str, str],
    app_services: tuple[object, Services],
) -> None:
    _, services = app_services
    async with services.db.write() as session:
        live = await session.scalar(select(t.Schedule.id).where(t.Schedule.kind == "live"))
        start = plant.day + timedelta(days=1, hours=8)
        session.add(
            t.Assignment(
                schedule_id=live,
                task_id=plant.cut,
                operator_id=plant.olga,
                equipment_id=plant.mill,
                start=start,
                end=start + timedelta(hours=1),
                assigned_at=clock.now(),
            )
        )
    path = f"/api/v1/operators/{plant.olga}"
    current = await api.get(path, headers=olga_in_full)
    refused = await api.post(
        f"{path}/erase", headers={**olga_in_full, "If-Match": current.headers["etag"]}
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["open_tasks"] == 1
    assert (await api.get(path, headers=olga_in_full)).json()["name"] == "Olga Petrova"
