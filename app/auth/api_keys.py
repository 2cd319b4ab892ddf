"""Service-to-service API keys with HMAC request signing.

A calling service holds a key id and a secret and signs every request:

    Authorization: Takt-HMAC key_id=<key id>,signature=<hex>
    X-Takt-Timestamp: <unix seconds>

    signature = hex HMAC-SHA256(secret,
                    "<METHOD>\\n<path?query>\\n<timestamp>\\n<hex sha256(body)>")

`path?query` is the request target exactly as sent on the wire. The server
keeps the secret AES-GCM encrypted with the data key (it must recompute the
HMAC, so it cannot store a one-way hash) and refuses timestamps more than
`MAX_SKEW_SECONDS` away from its clock.

Replay: within that window a captured request can be sent again and will
verify. Accepted, because keys are used over TLS between our own services
and state-changing calls carry `Idempotency-Key`, which turns a replay into
the first response rather than a second change.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app import clock
from app.clock import as_utc
from app.db import tables
from app.security.crypto import DataCipher, UndecryptableData
from app.services.access import require
from app.services.context import ROLES, Actor, Services
from app.services.errors import InvalidInput, NotFound, Unauthorized
from app.services.write_path import change

SCHEME = "Takt-HMAC"
TIMESTAMP_HEADER = "X-Takt-Timestamp"
MAX_SKEW_SECONDS = 300

_AUTHORIZATION = re.compile(
    rf"^{SCHEME}\s+key_id=(?P<key_id>[A-Za-z0-9_-]{{1,64}})\s*,\s*signature=(?P<signature>[0-9a-f]{{64}})$"
)


# --- the client side -------------------------------------------------------------------------


def signature(secret: str, method: str, path: str, timestamp: int, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_request(
    key_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes = b"",
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request (`path` includes the query string)."""
    stamp = int(clock.timestamp()) if timestamp is None else timestamp
    return {
        "Authorization": (
            f"{SCHEME} key_id={key_id},signature={signature(secret, method, path, stamp, body)}"
        ),
        TIMESTAMP_HEADER: str(stamp),
    }


# --- managing keys ---------------------------------------------------------------------------


async def create_api_key(
    *, services: Services, actor: Actor, name: str, role: str, expires_days: int | None = None
) -> tuple[str, str]:
    """A new key: `(key_id, secret)`. The secret is shown once; store it like a password.

    With `expires_days` it is refused that many days from now; without, it
    lasts until it is revoked.
    """
    require(actor, "users.manage")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", {"field": "role"})
    if not name.strip():
        raise InvalidInput("an API key needs a name", {"field": "name"})
    if expires_days is not None and expires_days < 1:
        raise InvalidInput("an API key expires after 1 day at the soonest", {"field": "expires"})
    now = clock.now()
    expires_at = None if expires_days is None else now + timedelta(days=expires_days)
    key_id = "tk_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    cipher = DataCipher(services.settings.data_keys)
    async with change(services, actor, "api_key.created") as tx:
        row = tables.ApiKey(
            key_id=key_id,
            name=name.strip(),
            secret_encrypted=cipher.encrypt(secret.encode(), context=key_id.encode()),
            role=role,
            created_at=now,
            expires_at=expires_at,
        )
        tx.session.add(row)
        await tx.session.flush()
        after = {"role": role, "revoked": False}
        if expires_at is not None:
            after["expires_at"] = expires_at.isoformat()
        tx.audit("api_key", row.id, before=None, after=after)
    return key_id, secret


async def revoke_api_key(*, services: Services, actor: Actor, key_id: str) -> None:
    require(actor, "users.manage")
    async with change(services, actor, "api_key.revoked") as tx:
        row_id = (
            await tx.session.execute(
                update(tables.ApiKey)
                .where(tables.ApiKey.key_id == key_id, tables.ApiKey.revoked_at.is_(None))
                .values(revoked_at=clock.now())
                .returning(tables.ApiKey.id)
            )
        ).scalar_one_or_none()
        if row_id is None:
            raise NotFound("api_key", key_id)
        tx.audit("api_key", row_id, before={"revoked": False}, after={"revoked": True})


@dataclass(frozen=True, slots=True)
class ApiKeyListing:
    """What an admin may see of a key: never its secret."""

    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None


async def list_api_keys(*, services: Services, actor: Actor) -> list[ApiKeyListing]:
    """Every key, revoked ones too, oldest first."""
    require(actor, "users.manage")
    keys = tables.ApiKey
    async with services.db.read() as session:
        rows = await session.execute(
            select(
                keys.key_id, keys.name, keys.role, keys.created_at, keys.revoked_at, keys.expires_at
            ).order_by(keys.id)
        )
        return [ApiKeyListing(*row) for row in rows]


# --- the server side -------------------------------------------------------------------------


async def verify_signed_request(
    *,
    services: Services,
    authorization: str,
    timestamp: str | None,
    method: str,
    path: str,
    body: bytes,
    now: datetime | None = None,
) -> Actor:
    """The service actor behind a correctly signed request; `Unauthorized` otherwise."""
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        raise Unauthorized(f"malformed {SCHEME} authorization; expected key_id=...,signature=...")
    key_id, claimed = match["key_id"], match["signature"]
    if timestamp is None or not timestamp.isdigit():
        raise Unauthorized(f"{TIMESTAMP_HEADER} header missing or not unix seconds")
    stamp = int(timestamp)
    now = as_utc(now or clock.now())
    skew = abs(now.timestamp() - stamp)
    if skew > MAX_SKEW_SECONDS:
        raise Unauthorized(
            f"request timestamp is {int(skew)} s off the server clock (max {MAX_SKEW_SECONDS})"
        )
    async with services.db.read() as session:
        key = (
            await session.execute(select(tables.ApiKey).where(tables.ApiKey.key_id == key_id))
        ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("API key expired")
    try:
        secret = DataCipher(services.settings.data_keys).decrypt(
            key.secret_encrypted, context=key_id.encode()
        )
    except UndecryptableData:
        raise Unauthorized("API key cannot be used (its secret is unreadable)") from None
    expected = signature(secret.decode(), method, path, stamp, body)
    if not hmac.compare_digest(expected, claimed):
        raise Unauthorized("bad request signature")
    return Actor(user_id=None, role=key.role, service_key=key_id)
