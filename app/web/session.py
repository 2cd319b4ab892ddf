"""Browser sessions: a signed cookie, CSRF protection, and who is on a page.

The session is a JWT (HS256 under `Settings.secret_key`) in the cookie
`takt_session`: the id of its server-side record, user id, role, operator id,
display name, a random CSRF secret and an expiry (`SESSION_HOURS`). Its
audience `takt-session` keeps it apart from API access tokens signed with the
same key: neither is accepted in the other's place. Every request looks the
record up (app/services/sessions.py, one primary-key read): logging out ends
it, and disabling a user or changing their role ends all of theirs at once.

Cookie flags: HttpOnly (scripts never see it), SameSite=Lax (not sent on
cross-site POSTs), Path=/, and Secure when the request came over https, as
the connection says or a proxy says with `X-Forwarded-Proto: https`. Trusting
that header is safe here: it can only make the cookie stricter.

CSRF: every unsafe request to a page route must echo the session's CSRF
secret, as the header `X-CSRF-Token` (htmx sends it: `hx-headers` on <body>,
board.js reads `<meta name="csrf-token">`) or the form field `csrf_token`.
The login form, made before there is a session, uses a double-submit cookie.

`page_actor(conn)` works on any `HTTPConnection`, so WebSocket and SSE
handlers identify the person on the board the same way pages do.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from app.auth.sessions import (
    CSRF_FIELD as CSRF_FIELD,
    CSRF_HEADER as CSRF_HEADER,
    LOGIN_CSRF_COOKIE as LOGIN_CSRF_COOKIE,
    SESSION_COOKIE as SESSION_COOKIE,
    SESSION_HOURS as SESSION_HOURS,
    PageSession as PageSession,
    decode_session as decode_session,
    encode_session as encode_session,
)
from app.services.context import Actor, Services
from app.services.errors import ServiceError
from app.services.sessions import live_session

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """No valid session: pages redirect to /login, fragments tell htmx to."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageRefused(Exception):
    """A page request that must not go on (bad CSRF token, role without access)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_https(conn: HTTPConnection) -> bool:
    forwarded = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return conn.url.scheme in ("https", "wss") or forwarded == "https"


def set_cookie(
    response: Response, conn: HTTPConnection, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(conn),
    )


def start_session(response: Response, conn: HTTPConnection, token: str) -> None:
    set_cookie(response, conn, SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600)


def end_session(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(conn)
    )


# --- who is on the page ----------------------------------------------------------------------


def services_of(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


async def page_session(conn: HTTPConnection) -> PageSession | None:
    """The session of a page request, WebSocket or SSE connection (None: not logged in)."""
    cached = conn.scope.get("state", {}).get("page_session")
    if isinstance(cached, PageSession):
        return cached
    token = conn.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    services = services_of(conn)
    found = decode_session(token, settings=services.settings)
    if found is None:
        return None
    record = await live_session(services=services, session_id=found.session_id)
    if record is None or record.user_id != found.actor.user_id:
        return None  # logged out, ended, or the user was disabled or given another role
    conn.scope.setdefault("state", {})["page_session"] = found
    return found


async def page_actor(conn: HTTPConnection) -> Actor | None:
    found = await page_session(conn)
    return None if found is None else found.actor


def safe_next(raw: str | None, default: str = "/board") -> str:
    """A local path to go on to after login (never another site: no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return default
    return raw


def login_url(conn: HTTPConnection) -> str:
    target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
    return "/login?next=" + quote(target, safe="")


# --- guarding page routes --------------------------------------------------------------------

PageHandler = Callable[[Request, PageSession], Awaitable[Response]]


def page_route(*, action: str | None) -> Callable[[PageHandler], Callable[[Request], Any]]:
    """Guard a page handler: a session (else login), CSRF on unsafe methods, `action` allowed.

    `action=None` admits anyone logged in (the handler decides what they see).
    """

    def wrap(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = await page_session(request)
            if session is None:
                raise LoginRequired(login_url(request))
            if request.method not in _SAFE_METHODS:
                await check_csrf(request, session.csrf)
            if action is not None and not session.may(action):
                raise PageRefused(403, f"Your role ({session.actor.role}) may not open this.")
            try:
                return await handler(request, session)
            except ServiceError as exc:
                # Pages show service errors as notices, not the API's JSON.
                raise PageRefused(exc.status, exc.message) from None

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


async def check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PageRefused(
            403,
            "This request was refused: its security token is missing or out of date. "
            "Reload the page and try again.",
        )


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def new_csrf_secret() -> str:
    return secrets.token_urlsafe(24)
