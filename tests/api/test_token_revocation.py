"""A Bearer token stops working the moment its login ends, not when it expires.

Logging out (the API's /auth/logout), an administrator disabling the account,
changing its role, or signing it out everywhere: each refuses the access
tokens already handed out, with a 401 in the one error shape, on the next
request. A token of a login that is still live keeps working.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

PASSWORD = "takt-test-password"  # every account of the API tests' plant (tests/api/conftest.py)


async def tokens_of(api: httpx.AsyncClient, username: str) -> dict[str, Any]:
    answer = await api.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def works(api: httpx.AsyncClient, tokens: dict[str, Any]) -> int:
    return (await api.get("/api/v1/equipment", headers=bearer(tokens))).status_code


def user_id(tokens: dict[str, Any]) -> int:
    """The account the tokens were issued to (the access token's subject)."""
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return int(claims["sub"])


async def test_logging_out_refuses_that_logins_access_token_but_not_another_login(
    api: httpx.AsyncClient, plant: Any
) -> None:
    laptop, phone = await tokens_of(api, "anna"), await tokens_of(api, "anna")
    assert await works(api, laptop) == 200

    out = await api.post("/api/v1/auth/logout", json={"refresh_token": laptop["refresh_token"]})
    assert out.status_code == 204
    refused = await api.get("/api/v1/equipment", headers=bearer(laptop))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert "sign in again" in refused.json()["error"]["message"]
    assert await works(api, phone) == 200
    again = await api.post("/api/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert again.status_code == 401


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({"active": False}, "disabled"),
        ({"role": "manager"}, "role changed"),
        ("sign out everywhere", "sign in again"),
    ],
)
async def test_an_administrator_ends_a_users_tokens_at_once(
    api: httpx.AsyncClient, plant: Any, login: Any, how: Any, message: str
) -> None:
    admin = await login("admin")
    ben = await tokens_of(api, "ben")
    ben_id = user_id(ben)
    assert await works(api, ben) == 200
    if how == "sign out everywhere":
        ended = await api.delete(f"/api/v1/users/{ben_id}/sessions", headers=admin)
        assert ended.status_code == 200, ended.text
    else:
        current = await api.get(f"/api/v1/users/{ben_id}", headers=admin)
        changed = await api.patch(
            f"/api/v1/users/{ben_id}",
            headers={**admin, "If-Match": current.headers["etag"]},
            json=how,
        )
        assert changed.status_code == 200, changed.text
    refused = await api.get("/api/v1/equipment", headers=bearer(ben))
    assert refused.status_code == 401
    assert message in refused.json()["error"]["message"]
    assert await works(api, await tokens_of(api, "anna")) == 200  # others are untouched


async def test_a_bad_logout_is_a_401_or_422_and_ends_nothing(
    api: httpx.AsyncClient, plant: Any
) -> None:
    anna = await tokens_of(api, "anna")
    forged = await api.post("/api/v1/auth/logout", json={"refresh_token": "abc.def"})
    assert forged.status_code == 401
    empty = await api.post("/api/v1/auth/logout", json={})
    assert empty.status_code == 422
    assert await works(api, anna) == 200
