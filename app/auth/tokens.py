"""Access and refresh tokens.

Access token: a JWT (HS256, `Settings.secret_key`) that lives
`access_token_minutes` and carries the principal: `sub` (user id), `role`,
`op` (operator id or null), `jti`, `iat`, `exp`. It is not looked up per
request, so a deactivated user keeps access until it expires.

Refresh token: `<jti>.<mac>`, opaque to clients. The mac is an HMAC of the jti
under the secret key, so the database stores only the jti (a leaked table
cannot mint tokens) and a forged token is refused before any lookup. Each
login starts a *family*; `refresh` marks the presented token used and issues
the next one in the family. Presenting a used token again means it was
copied: the whole family is revoked and its holder must sign in again.

Every function takes an optional `now` so tests can move the clock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.clock import as_utc
from app.db import tables
from app.security.passwords import hash_password, needs_rehash, verify_password
from app.services.context import ROLES, Actor, Services
from app.services.errors import Unauthorized
from app.services.users import get_user_by_username
from app.settings import Settings

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "takt"
_REFRESH_MAC_CONTEXT = b"takt-refresh-token:"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    # Seconds until the access token expires (OAuth2's `expires_in`).
    expires_in: int
    token_type: str = "bearer"


# --- access tokens ---------------------------------------------------------------------------


def create_access_token(
    *, settings: Settings, user: tables.User, family: str | None = None, now: datetime | None = None
) -> str:
    """A Bearer token for `user`; `family` names the login (refresh-token family) it belongs
    to, so logging out or revoking that login refuses the token too (`live_access_actor`)."""
    issued = as_utc(now or clock.now())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": str(user.id),
        "role": user.role,
        "op": user.operator_id,
        "fam": family,
        "jti": secrets.token_urlsafe(16),
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=settings.access_token_minutes)).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def decode_access_token(token: str, *, settings: Settings, now: datetime | None = None) -> Actor:
    """The actor the token was issued to; `Unauthorized` if it is forged, malformed or expired.

    Signature and expiry only: requests use `live_access_actor`, which also asks the
    database whether the account and its login are still live."""
    return _decoded(token, settings=settings, now=now)[0]


async def live_access_actor(token: str, *, services: Services) -> Actor:
    """The token's actor if its account is still active with the same role and its login
    was not ended (logout, a revoked refresh family); else `Unauthorized`.

    One indexed read per request, as page sessions do: disabling a user, changing their
    role or logging out refuses their Bearer tokens at once, not when they expire.
    """
    actor, family = _decoded(token, settings=services.settings, now=None)
    user, refresh = tables.User, tables.RefreshToken
    live_login = (
        select(refresh.jti)
        .where(refresh.family == family, refresh.revoked_at.is_(None))
        .limit(1)
        .exists()
    )
    async with services.db.glance() as session:
        found = (
            await session.execute(
                select(user.active, user.role, live_login).where(user.id == actor.user_id)
            )
        ).first()
    if found is None or not found.active:
        raise Unauthorized("this account is disabled", {"reason": "disabled"})
    if found.role != actor.role:
        raise Unauthorized("this account's role changed; sign in again", {"reason": "role"})
    if family is not None and not found[2]:
        raise Unauthorized("this login was ended; sign in again", {"reason": "ended"})
    return actor


def _decoded(token: str, *, settings: Settings, now: datetime | None) -> tuple[Actor, str | None]:
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # Expiry is checked below against `now`, so tests can move the clock.
            options={
                "require": ["iss", "sub", "role", "jti", "iat", "exp"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("invalid access token", {"reason": str(exc)}) from None
    if (
        not isinstance(claims["exp"], int)
        or claims["exp"] <= as_utc(now or clock.now()).timestamp()
    ):
        raise Unauthorized("access token expired", {"reason": "expired"})
    sub, role, op, family = claims["sub"], claims["role"], claims.get("op"), claims.get("fam")
    if not sub.isdigit() or role not in ROLES or not (op is None or isinstance(op, int)):
        raise Unauthorized("invalid access token", {"reason": "bad claims"})
    if not (family is None or isinstance(family, str)):
        raise Unauthorized("invalid access token", {"reason": "bad claims"})
    return Actor(user_id=int(sub), role=role, operator_id=op), family


# --- login and refresh -----------------------------------------------------------------------


async def login(
    *, services: Services, username: str, password: str, now: datetime | None = None
) -> TokenPair:
    """Unguarded: the app's login routes go through `app.auth.login_guard.log_in`."""
    user = await check_credentials(services=services, username=username, password=password)
    return await issue_tokens(services=services, user=user, now=now)


async def check_credentials(*, services: Services, username: str, password: str) -> tables.User:
    """The active user with this username and password, or `Unauthorized`.

    Shared by the API's token login and the browser's session login.
    """
    user = await get_user_by_username(services=services, username=username)
    # Verify even for unknown users (a dummy hash), so timing does not reveal who exists.
    password_ok = await asyncio.to_thread(
        verify_password, user.password_hash if user else None, password
    )
    if user is None or not password_ok:
        raise Unauthorized("wrong username or password")
    if not user.active:
        raise Unauthorized("this account is disabled")
    if user.password_hash is not None and needs_rehash(user.password_hash):
        await _rehash(services, user, password)
    return user


async def issue_tokens(
    *, services: Services, user: tables.User, now: datetime | None = None
) -> TokenPair:
    """A fresh access token and the first refresh token of a new family."""
    issued = as_utc(now or clock.now())
    family = secrets.token_urlsafe(16)
    async with services.db.write() as session:
        refresh_token = _add_refresh_token(
            session, services.settings, user.id, family=family, now=issued
        )
    return _pair(services.settings, user, refresh_token, family, issued)


async def refresh(
    *, services: Services, refresh_token: str, now: datetime | None = None
) -> TokenPair:
    """Rotate: the presented token is used up and the next one of its family issued.

    Raises `Unauthorized` for unknown, expired, revoked or reused tokens; a
    reuse also revokes the family (that revocation is committed).
    """
    settings = services.settings
    issued = as_utc(now or clock.now())
    jti = _refresh_jti(settings, refresh_token)
    pair: TokenPair | None = None
    failure = "unknown refresh token"
    async with services.db.write() as session:
        row = await session.get(tables.RefreshToken, jti)
        if row is None:
            pass
        elif row.revoked_at is not None:
            failure = "refresh token revoked; sign in again"
        elif row.expires_at <= issued:
            failure = "refresh token expired; sign in again"
        elif not await _mark_used(session, jti, issued):
            log.warning("refresh token reuse; revoking family", extra={"user_id": row.user_id})
            await _revoke_family(session, row.family, issued)
            failure = "refresh token already used; all sessions of this login are revoked"
        else:
            user = await session.get(tables.User, row.user_id)
            if user is None or not user.active:
                await _revoke_family(session, row.family, issued)
                failure = "this account is disabled"
            else:
                token = _add_refresh_token(session, settings, user.id, row.family, now=issued)
                pair = _pair(settings, user, token, row.family, issued)
    # Raised after the commit, so a family revocation sticks.
    if pair is None:
        raise Unauthorized(failure)
    return pair


async def logout(*, services: Services, refresh_token: str, now: datetime | None = None) -> None:
    """Revoke the family of `refresh_token` (this login on every device it reached)."""
    jti = _refresh_jti(services.settings, refresh_token)
    async with services.db.write() as session:
        row = await session.get(tables.RefreshToken, jti)
        if row is not None:
            await _revoke_family(session, row.family, as_utc(now or clock.now()))


async def purge_expired_refresh_tokens(*, services: Services, now: datetime | None = None) -> int:
    """Delete refresh tokens past their expiry or revoked; how many went.

    Neither kind can sign anyone in again. A revoked token's whole family is
    revoked (logout, reuse), so no reuse detection needs it: presented after
    the purge it is refused as unknown instead of as revoked. Used tokens of a
    live family stay, because they are what detects a stolen token's reuse.
    """
    token = tables.RefreshToken
    dead = or_(token.expires_at <= as_utc(now or clock.now()), token.revoked_at.is_not(None))
    async with services.db.write() as session:
        result = await session.execute(delete(token).where(dead).returning(token.jti))
        return len(result.all())


# --- internals -------------------------------------------------------------------------------


def _pair(
    settings: Settings, user: tables.User, refresh_token: str, family: str, now: datetime
) -> TokenPair:
    return TokenPair(
        access_token=create_access_token(settings=settings, user=user, family=family, now=now),
        refresh_token=refresh_token,
        expires_in=settings.access_token_minutes * 60,
    )


def _refresh_mac(settings: Settings, jti: str) -> str:
    digest = hmac.new(
        settings.secret_key, _REFRESH_MAC_CONTEXT + jti.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _refresh_jti(settings: Settings, refresh_token: str) -> str:
    jti, _, mac = refresh_token.partition(".")
    if not jti or not hmac.compare_digest(mac.encode(), _refresh_mac(settings, jti).encode()):
        raise Unauthorized("invalid refresh token")
    return jti


def _add_refresh_token(
    session: AsyncSession, settings: Settings, user_id: int, family: str, *, now: datetime
) -> str:
    jti = secrets.token_urlsafe(24)
    session.add(
        tables.RefreshToken(
            jti=jti,
            family=family,
            user_id=user_id,
            issued_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_days),
        )
    )
    return f"{jti}.{_refresh_mac(settings, jti)}"


async def _mark_used(session: AsyncSession, jti: str, now: datetime) -> bool:
    """Claim the token with one conditional UPDATE, so two concurrent refreshes can't both win."""
    claimed = await session.execute(
        update(tables.RefreshToken)
        .where(
            tables.RefreshToken.jti == jti,
            tables.RefreshToken.used_at.is_(None),
            tables.RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .returning(tables.RefreshToken.jti)
    )
    return claimed.first() is not None


async def _revoke_family(session: AsyncSession, family: str, now: datetime) -> None:
    await session.execute(
        update(tables.RefreshToken)
        .where(tables.RefreshToken.family == family, tables.RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def _rehash(services: Services, user: tables.User, password: str) -> None:
    """Upgrade a hash made with old argon2 parameters.

    Credential bookkeeping like the refresh tokens, not a plant change, so it
    bypasses the write path (no revision, no audit entry).
    """
    new_hash = await asyncio.to_thread(hash_password, password)
    async with services.db.write() as session:
        await session.execute(
            update(tables.User).where(tables.User.id == user.id).values(password_hash=new_hash)
        )
