"""Operators' contact data reaches exactly the roles the permission map grants
`personal_data.read` (app/services/access.py), by every path: the API for
people and for service keys, and every page and fragment a role can open.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from app.auth.api_keys import create_api_key, sign_request
from app.services.access import allowed
from app.services.context import ROLES, SYSTEM, Actor, Services

PHONE, EMAIL = "+49 151 555 0142", "olga.petrova@werk.example"
USERS = {"admin": "admin", "scheduler": "anna", "manager": "maria", "operator": "olga"}


def may_read(role: str) -> bool:
    return allowed(Actor(user_id=1, role=role, operator_id=1), "personal_data.read")


def test_every_role_is_covered() -> None:
    assert set(USERS) == set(ROLES)
    # The map as it stands: managers and admins only.
    assert [role for role in ROLES if may_read(role)] == ["manager", "admin"]


@pytest.fixture
async def olga_has_contact_data(api: httpx.AsyncClient, plant: Any, login: Any) -> None:
    maria = await login("maria")
    current = await api.get(f"/api/v1/operators/{plant.olga}", headers=maria)
    response = await api.patch(
        f"/api/v1/operators/{plant.olga}",
        headers={**maria, "If-Match": current.headers["etag"]},
        json={"contact": {"phone": PHONE, "email": EMAIL}},
    )
    assert response.status_code == 200, response.text


async def _contacts(api: httpx.AsyncClient, plant: Any, sign: Any) -> tuple[list[Any], Any]:
    """The contact fields of Olga in the list and in her own record, as `sign` reads them."""
    listed = await api.get("/api/v1/operators", headers=sign("GET", "/api/v1/operators"))
    path = f"/api/v1/operators/{plant.olga}"
    one = await api.get(path, headers=sign("GET", path))
    assert listed.status_code == 200 and one.status_code == 200, (listed.text, one.text)
    mine = [o["contact"] for o in listed.json()["items"] if o["id"] == plant.olga]
    return mine, one.json()["contact"]


@pytest.mark.parametrize("role", ROLES)
async def test_the_api_shows_contact_data_to_the_roles_the_map_grants(
    api: httpx.AsyncClient, plant: Any, login: Any, olga_has_contact_data: None, role: str
) -> None:
    headers = await login(USERS[role])
    listed, one = await _contacts(api, plant, lambda method, path: headers)
    expected = {"phone": PHONE, "email": EMAIL} if may_read(role) else None
    assert listed == [expected] and one == expected


@pytest.mark.parametrize("role", ROLES)
async def test_a_service_key_follows_the_map_like_a_person(
    api: httpx.AsyncClient,
    plant: Any,
    app_services: tuple[object, Services],
    olga_has_contact_data: None,
    role: str,
) -> None:
    key_id, secret = await create_api_key(
        services=app_services[1], actor=SYSTEM, name=f"{role} bridge", role=role
    )
    if role == "operator":
        # A key is nobody's operator: it has no own record, so it reads none at all.
        sign = sign_request(key_id, secret, "GET", "/api/v1/operators", b"")
        listed = await api.get("/api/v1/operators", headers=sign)
        assert listed.status_code == 200 and listed.json()["items"] == []
        return
    listed, one = await _contacts(
        api, plant, lambda method, path: sign_request(key_id, secret, method, path, b"")
    )
    expected = {"phone": PHONE, "email": EMAIL} if may_read(role) else None
    assert listed == [expected] and one == expected


@pytest.mark.parametrize("role", [role for role in ROLES if not may_read(role)])
async def test_no_page_shows_contact_data_to_a_role_without_the_grant(
    app_services: tuple[object, Services], plant: Any, olga_has_contact_data: None, role: str
) -> None:
    transport = httpx.ASGITransport(app=app_services[0])  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://takt.test") as browser:
        form = await browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        signed_in = await browser.post(
            "/login",
            data={
                "username": USERS[role],
                "password": "takt-test-password",
                "csrf_token": csrf.group(1),
            },
        )
        assert signed_in.status_code == 303
        for path in (
            "/",
            "/board",
            "/board?rows=operators",
            "/board/tray",
            f"/board/tasks/{plant.cut}",
            f"/board/jobs/{plant.job}/critical",
            "/board/optimizer",
            "/wall",
            "/wall/poll",
            "/my",
            "/my/list",
            "/my/poll?since=0",
        ):
            page = await browser.get(path, follow_redirects=True)
            assert page.status_code < 500, path
            assert "555 0142" not in page.text and "olga.petrova@" not in page.text, path
