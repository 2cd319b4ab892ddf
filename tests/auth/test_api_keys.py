from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.auth.api_keys import (
    create_api_key,
    revoke_api_key,
    sign_request,
    signature,
    verify_signed_request,
)
from app.db import tables
from app.services.context import SYSTEM, Actor, Services
from app.services.errors import Forbidden, InvalidInput, Unauthorized

BODY = b'{"operator_id": 3, "equipment_id": 7}'
PATH = "/api/v1/tasks/42/assignment?dry_run=1"


async def verify(
    services: Services,
    headers: dict[str, str],
    *,
    method: str = "PUT",
    path: str = PATH,
    body: bytes = BODY,
    now: datetime | None = None,
) -> Actor:
    return await verify_signed_request(
        services=services,
        authorization=headers["Authorization"],
        timestamp=headers.get("X-Takt-Timestamp"),
        method=method,
        path=path,
        body=body,
        now=now,
    )


async def test_a_correctly_signed_request_authenticates_the_service(services: Services) -> None:
    key_id, secret = await create_api_key(
        services=services, actor=SYSTEM, name="MES bridge", role="scheduler"
    )
    actor = await verify(services, sign_request(key_id, secret, "PUT", PATH, BODY))
    assert actor == Actor(user_id=None, role="scheduler", service_key=key_id)
    assert actor.principal == f"key:{key_id}"


async def test_header_format_and_signature_recipe() -> None:
    headers = sign_request("tk_1", "s3cret", "put", "/p?q=1", b"{}", timestamp=1_700_000_000)
    assert headers["X-Takt-Timestamp"] == "1700000000"
    assert headers["Authorization"].startswith("Takt-HMAC key_id=tk_1,signature=")
    message = f"PUT\n/p?q=1\n1700000000\n{hashlib.sha256(b'{}').hexdigest()}"
    expected = hmac.new(b"s3cret", message.encode(), hashlib.sha256).hexdigest()
    assert signature("s3cret", "PUT", "/p?q=1", 1_700_000_000, b"{}") == expected
    assert headers["Authorization"].endswith(expected)


async def test_secret_is_stored_encrypted(services: Services) -> None:
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="manager")
    async with services.db.read() as session:
        row = (await session.execute(select(tables.ApiKey))).scalar_one()
    assert row.key_id == key_id
    assert secret.encode() not in row.secret_encrypted


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": b'{"operator_id": 4, "equipment_id": 7}'},
        {"path": "/api/v1/tasks/43/assignment?dry_run=1"},
        {"path": "/api/v1/tasks/42/assignment"},
        {"method": "DELETE"},
    ],
)
async def test_anything_changed_breaks_the_signature(
    services: Services, tamper: dict[str, object]
) -> None:
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="admin")
    headers = sign_request(key_id, secret, "PUT", PATH, BODY)
    with pytest.raises(Unauthorized, match="bad request signature"):
        await verify(services, headers, **tamper)  # type: ignore[arg-type]


async def test_wrong_secret_is_refused(services: Services) -> None:
    key_id, _ = await create_api_key(services=services, actor=SYSTEM, name="x", role="admin")
    with pytest.raises(Unauthorized, match="bad request signature"):
        await verify(services, sign_request(key_id, "guessed", "PUT", PATH, BODY))


@pytest.mark.parametrize("skew", [-301, 301, 3600])
async def test_old_or_future_timestamps_are_refused(services: Services, skew: int) -> None:
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="admin")
    now = int(time.time())
    headers = sign_request(key_id, secret, "PUT", PATH, BODY, timestamp=now - skew)
    with pytest.raises(Unauthorized, match="server clock"):
        await verify(services, headers, now=datetime.fromtimestamp(now, UTC))


async def test_timestamps_within_five_minutes_are_accepted(services: Services) -> None:
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="admin")
    now = int(time.time())
    for skew in (-300, 300):
        headers = sign_request(key_id, secret, "PUT", PATH, BODY, timestamp=now - skew)
        assert await verify(services, headers, now=datetime.fromtimestamp(now, UTC))


async def test_missing_timestamp_is_refused(services: Services) -> None:
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="admin")
    headers = sign_request(key_id, secret, "PUT", PATH, BODY)
    del headers["X-Takt-Timestamp"]
    with pytest.raises(Unauthorized, match="X-Takt-Timestamp"):
        await verify(services, headers)


@pytest.mark.parametrize(
    "authorization",
    [
        "Takt-HMAC key_id=tk_1",
        "Takt-HMAC signature=" + "a" * 64,
        "Takt-HMAC key_id=tk_1,signature=nothex",
        "Takt-HMAC key_id=tk 1,signature=" + "a" * 64,
    ],
)
async def test_malformed_authorization_is_refused(services: Services, authorization: str) -> None:
    headers = {"Authorization": authorization, "X-Takt-Timestamp": str(int(time.time()))}
    with pytest.raises(Unauthorized, match="malformed"):
        await verify(services, headers)


async def test_unknown_and_revoked_keys_are_refused(services: Services) -> None:
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        await verify(services, sign_request("tk_nope", "secret", "PUT", PATH, BODY))
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="admin")
    await revoke_api_key(services=services, actor=SYSTEM, key_id=key_id)
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        await verify(services, sign_request(key_id, secret, "PUT", PATH, BODY))


async def test_a_key_is_refused_from_its_expiry_on(services: Services) -> None:
    key_id, secret = await create_api_key(
        services=services, actor=SYSTEM, name="x", role="manager", expires_days=30
    )
    created = int(time.time())
    for days, usable in ((29, True), (31, False)):
        at = created + days * 86400
        headers = sign_request(key_id, secret, "PUT", PATH, BODY, timestamp=at)
        if usable:
            assert await verify(services, headers, now=datetime.fromtimestamp(at, UTC))
        else:
            with pytest.raises(Unauthorized, match="API key expired"):
                await verify(services, headers, now=datetime.fromtimestamp(at, UTC))
    with pytest.raises(InvalidInput, match="1 day at the soonest"):
        await create_api_key(
            services=services, actor=SYSTEM, name="x", role="manager", expires_days=0
        )


async def test_only_admins_manage_keys_and_roles_must_exist(services: Services) -> None:
    with pytest.raises(Forbidden):
        await create_api_key(
            services=services, actor=Actor(user_id=1, role="scheduler"), name="x", role="admin"
        )
    with pytest.raises(InvalidInput):
        await create_api_key(services=services, actor=SYSTEM, name="x", role="robot")


async def test_key_creation_is_audited_without_the_secret(services: Services) -> None:
    key_id, secret = await create_api_key(services=services, actor=SYSTEM, name="x", role="admin")
    async with services.db.read() as session:
        audit = (await session.execute(select(tables.AuditEntry))).scalar_one()
    assert audit.action == "api_key.created"
    assert secret not in str(audit.after) and key_id not in str(audit.after)
