"""authenticate(): Bearer JWTs and Takt-HMAC signatures on a tiny inline app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.auth.api_keys import create_api_key, sign_request
from app.auth.principal import authenticate
from app.auth.tokens import login
from app.services.context import SYSTEM, Services
from app.services.errors import Unauthorized

if TYPE_CHECKING:
    from conftest import Account


def whoami_app(services: Services) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        try:
            actor = await authenticate(request, services)
        except Unauthorized as exc:
            return JSONResponse({"error": exc.message}, status_code=401, headers=exc.headers)
        body = await request.body()  # still readable after the signature check
        return JSONResponse(
            {"principal": actor.principal, "role": actor.role, "body": body.decode()}
        )

    return Starlette(routes=[Route("/whoami/{name}", whoami, methods=["GET", "POST"])])


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=whoami_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://takt") as client:
        yield client


async def test_bearer_token(
    services: Services, scheduler_account: Account, client: httpx.AsyncClient
) -> None:
    pair = await login(services=services, username="sam", password=scheduler_account.password)
    response = await client.get(
        "/whoami/x", headers={"Authorization": f"Bearer {pair.access_token}"}
    )
    assert response.json()["principal"] == f"user:{scheduler_account.user_id}"


async def test_signed_request_and_body_still_readable(
    services: Services, client: httpx.AsyncClient
) -> None:
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="manager")
    path, body = "/whoami/a%20b?x=1&y=%C3%A4", b'{"hello": "plant"}'
    headers = sign_request(key_id, secret, "POST", path, body)
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "principal": f"key:{key_id}",
        "role": "manager",
        "body": body.decode(),
    }


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "authentication required"),
        ("Bearer ", "empty Bearer token"),
        ("Bearer not-a-jwt", "invalid access token"),
        ("Basic c2FtOnB3", "unsupported authorization scheme"),
    ],
)
async def test_missing_or_bad_credentials(
    client: httpx.AsyncClient, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.get("/whoami/x", headers=headers)
    assert response.status_code == 401
    assert message in response.json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
