from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import jwt
import pytest
from sqlalchemy import select, update

from app import clock
from app.auth import tokens
from app.auth.tokens import decode_access_token, login, logout, refresh
from app.db import tables
from app.services.context import SYSTEM, Services

if TYPE_CHECKING:
    from conftest import Account
from app.services.errors import Unauthorized
from app.services.users import create_user

PASSWORD = "correct horse battery staple"  # scheduler_account's


async def test_login_issues_an_access_token_for_the_user(
    services: Services, scheduler_account: Account
) -> None:
    pair = await login(services=services, username="sam", password=PASSWORD)
    actor = decode_access_token(pair.access_token, settings=services.settings)
    assert actor.user_id == scheduler_account.user_id
    assert actor.role == "scheduler"
    assert actor.operator_id is None
    assert pair.token_type == "bearer"
    assert pair.expires_in == 30 * 60


async def test_access_token_claims(services: Services, scheduler_account: Account) -> None:
    pair = await login(services=services, username="SAM ", password=PASSWORD)
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert claims["sub"] == str(scheduler_account.user_id)
    assert claims["role"] == "scheduler"
    assert claims["op"] is None
    assert claims["jti"]
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert jwt.get_unverified_header(pair.access_token)["alg"] == "HS256"


async def test_operator_token_carries_the_operator(services: Services, operator_id: int) -> None:
    await create_user(
        services=services,
        actor=SYSTEM,
        username="ada",
        password=PASSWORD,
        role="operator",
        operator_id=operator_id,
    )
    pair = await login(services=services, username="ada", password=PASSWORD)
    actor = decode_access_token(pair.access_token, settings=services.settings)
    assert (actor.role, actor.operator_id) == ("operator", operator_id)


@pytest.mark.parametrize(
    ("username", "password"), [("sam", "wrong password"), ("nobody", PASSWORD)]
)
async def test_bad_credentials_are_refused_alike(
    services: Services, scheduler_account: Account, username: str, password: str
) -> None:
    with pytest.raises(Unauthorized, match="wrong username or password") as refused:
        await login(services=services, username=username, password=password)
    assert refused.value.status == 401


async def test_unknown_user_still_costs_a_hash_verification(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []

    def spy(password_hash: str | None, password: str) -> bool:
        seen.append(password_hash)
        return False

    monkeypatch.setattr(tokens, "verify_password", spy)
    with pytest.raises(Unauthorized):
        await login(services=services, username="nobody", password="x")
    assert seen == [None]


async def test_inactive_user_cannot_log_in_or_refresh(
    services: Services, scheduler_account: Account
) -> None:
    pair = await login(services=services, username="sam", password=PASSWORD)
    await _set_active(services, scheduler_account.user_id, active=False)
    with pytest.raises(Unauthorized, match="disabled"):
        await login(services=services, username="sam", password=PASSWORD)
    with pytest.raises(Unauthorized, match="disabled"):
        await refresh(services=services, refresh_token=pair.refresh_token)


async def test_access_token_expires_after_30_minutes(
    services: Services, scheduler_account: Account
) -> None:
    issued = clock.now()
    pair = await login(services=services, username="sam", password=PASSWORD, now=issued)
    settings = services.settings
    assert decode_access_token(pair.access_token, settings=settings, now=issued)
    later = issued + timedelta(minutes=29, seconds=59)
    assert decode_access_token(pair.access_token, settings=settings, now=later)
    with pytest.raises(Unauthorized, match="expired"):
        decode_access_token(
            pair.access_token, settings=settings, now=issued + timedelta(minutes=30)
        )


async def test_tampered_access_tokens_are_rejected(
    services: Services, scheduler_account: Account
) -> None:
    settings = services.settings
    good = (await login(services=services, username="sam", password=PASSWORD)).access_token
    claims = jwt.decode(good, options={"verify_signature": False})
    header, _, signature = good.split(".")
    admin_claims = {**claims, "role": "admin"}
    promoted = jwt.encode(admin_claims, b"guess" * 8, algorithm="HS256").split(".")[1]
    forged = [
        f"{header}.{promoted}.{signature}",  # payload swapped, old signature
        jwt.encode(admin_claims, b"x" * 64, algorithm="HS256"),  # wrong key
        jwt.encode(admin_claims, None, algorithm="none"),  # unsigned
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "not.a.jwt",
        "",
    ]
    for token in forged:
        with pytest.raises(Unauthorized, match="invalid access token"):
            decode_access_token(token, settings=settings)


async def test_token_with_missing_claims_is_rejected(services: Services) -> None:
    now = int(clock.now().timestamp())
    token = jwt.encode(
        {"iss": "takt", "sub": "1", "iat": now, "exp": now + 60},
        services.settings.secret_key,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        decode_access_token(token, settings=services.settings)


async def test_refresh_rotates_the_token(services: Services, scheduler_account: Account) -> None:
    t0 = clock.now()
    first = await login(services=services, username="sam", password=PASSWORD, now=t0)
    second = await refresh(
        services=services, refresh_token=first.refresh_token, now=t0 + timedelta(minutes=30)
    )
    third = await refresh(
        services=services, refresh_token=second.refresh_token, now=t0 + timedelta(minutes=60)
    )
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    actor = decode_access_token(third.access_token, settings=services.settings)
    assert actor.user_id == scheduler_account.user_id
    rows = await _refresh_rows(services)
    assert len({row.family for row in rows}) == 1
    assert [row.used_at is not None for row in rows] == [True, True, False]


async def test_reuse_of_a_used_refresh_token_revokes_the_family(
    services: Services, scheduler_account: Account
) -> None:
    first = await login(services=services, username="sam", password=PASSWORD)
    other_login = await login(services=services, username="sam", password=PASSWORD)
    second = await refresh(services=services, refresh_token=first.refresh_token)

    with pytest.raises(Unauthorized, match="already used") as refused:
        await refresh(services=services, refresh_token=first.refresh_token)
    assert refused.value.status == 401
    # The thief's (or the victim's) current token is dead too: the revocation was committed.
    with pytest.raises(Unauthorized, match="revoked"):
        await refresh(services=services, refresh_token=second.refresh_token)
    # Another login (another family) is untouched.
    assert await refresh(services=services, refresh_token=other_login.refresh_token)


async def test_expired_refresh_token_is_refused(
    services: Services, scheduler_account: Account
) -> None:
    issued = clock.now()
    pair = await login(services=services, username="sam", password=PASSWORD, now=issued)
    later = issued + timedelta(days=services.settings.refresh_token_days, seconds=1)
    with pytest.raises(Unauthorized, match="expired"):
        await refresh(services=services, refresh_token=pair.refresh_token, now=later)


async def test_forged_refresh_tokens_are_refused(
    services: Services, scheduler_account: Account
) -> None:
    pair = await login(services=services, username="sam", password=PASSWORD)
    jti, _, mac = pair.refresh_token.partition(".")
    # One character of the MAC changed (never to itself: the real MAC may end in "A").
    forged_mac = mac[:-1] + ("B" if mac.endswith("A") else "A")
    for token in [f"{jti}.{forged_mac}", f"{jti}x.{mac}", jti, "", "."]:
        with pytest.raises(Unauthorized, match="invalid refresh token"):
            await refresh(services=services, refresh_token=token)
    # None of that consumed the real token.
    assert await refresh(services=services, refresh_token=pair.refresh_token)


async def test_logout_revokes_the_family(services: Services, scheduler_account: Account) -> None:
    pair = await login(services=services, username="sam", password=PASSWORD)
    await logout(services=services, refresh_token=pair.refresh_token)
    with pytest.raises(Unauthorized, match="revoked"):
        await refresh(services=services, refresh_token=pair.refresh_token)


async def test_purge_keeps_live_tokens(services: Services, scheduler_account: Account) -> None:
    issued = clock.now()
    await login(services=services, username="sam", password=PASSWORD, now=issued)
    assert await tokens.purge_expired_refresh_tokens(services=services, now=issued) == 0
    later = issued + timedelta(days=services.settings.refresh_token_days)
    assert await tokens.purge_expired_refresh_tokens(services=services, now=later) == 1


async def _set_active(services: Services, user_id: int, *, active: bool) -> None:
    async with services.db.write() as session:
        await session.execute(
            update(tables.User).where(tables.User.id == user_id).values(active=active)
        )


async def _refresh_rows(services: Services) -> list[tables.RefreshToken]:
    async with services.db.read() as session:
        result = await session.execute(
            select(tables.RefreshToken).order_by(tables.RefreshToken.issued_at)
        )
        return list(result.scalars())
