"""The browser session cookie: a signed token naming a session record and the person on a page.

The session is a JWT (HS256 under `Settings.secret_key`): the id of its
server-side record (`sid`, app/services/sessions.py: a cookie whose record has
ended is refused), user id, role, operator id, display name, a random CSRF
secret and an expiry (`SESSION_HOURS`). Its audience `takt-session` keeps it apart from API access
tokens signed with the same key: neither is accepted in the other's place.
The pages (app/web/session.py) set and read it; the API accepts it together
with the page's CSRF token (app/auth/principal.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from app import clock
from app.clock import as_utc
from app.db import tables
from app.services.access import allowed
from app.services.context import ROLES, Actor
from app.services.sessions import SESSION_HOURS as SESSION_HOURS
from app.settings import Settings

SESSION_COOKIE = "takt_session"
LOGIN_CSRF_COOKIE = "takt_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_AUDIENCE = "takt-session"
_ISSUER = "takt"


@dataclass(frozen=True, slots=True)
class PageSession:
    actor: Actor
    display_name: str
    csrf: str
    # The server-side record this cookie names (app/services/sessions.py).
    session_id: str

    def may(self, action: str) -> bool:
        return allowed(self.actor, action)


def encode_session(
    *,
    settings: Settings,
    user: tables.User,
    session_id: str,
    now: datetime | None = None,
    csrf: str | None = None,
) -> str:
    """The cookie of session record `session_id` of `user`; pass `csrf` to renew one
    (open pages keep their token)."""
    issued = as_utc(now or clock.now())
    claims: dict[str, Any] = {
        "iss": _ISSUER,
        "aud": _AUDIENCE,
        "sub": str(user.id),
        "sid": session_id,
        "role": user.role,
        "op": user.operator_id,
        "name": user.display_name or user.username,
        "csrf": csrf or secrets.token_urlsafe(24),
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(hours=SESSION_HOURS)).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key, algorithm="HS256")


def decode_session(
    token: str, *, settings: Settings, now: datetime | None = None
) -> PageSession | None:
    """The session in a cookie value; None if it is forged, malformed or expired."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=["HS256"],
            audience=_AUDIENCE,
            issuer=_ISSUER,
            options={"require": ["sub", "sid", "role", "csrf", "exp"], "verify_exp": False},
        )
    except jwt.InvalidTokenError:
        return None
    sub, role, op = claims["sub"], claims["role"], claims.get("op")
    expired = (
        not isinstance(claims["exp"], int)
        or claims["exp"] <= as_utc(now or clock.now()).timestamp()
    )
    if expired or not str(sub).isdigit() or role not in ROLES:
        return None
    if not (op is None or isinstance(op, int)) or not isinstance(claims["csrf"], str):
        return None
    if not isinstance(claims["sid"], str):
        return None
    actor = Actor(user_id=int(sub), role=role, operator_id=op)
    return PageSession(
        actor=actor,
        display_name=str(claims.get("name", "")),
        csrf=claims["csrf"],
        session_id=claims["sid"],
    )
