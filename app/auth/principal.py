"""Who is making this request: a person with a Bearer JWT or a service with a signed request.

Or a page of Takt's own calling the API for the person on it (My tasks): the
session cookie *plus* its CSRF secret in `X-CSRF-Token`. The cookie alone is
never enough (a browser attaches it to any site's request); the secret is
only readable by Takt's own pages, and the custom header cannot be sent
cross-site without a CORS preflight, which Takt does not answer.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import Request

from app.auth.api_keys import SCHEME, TIMESTAMP_HEADER, verify_signed_request
from app.auth.sessions import CSRF_HEADER, SESSION_COOKIE, decode_session
from app.auth.tokens import live_access_actor
from app.services.context import Actor, Services
from app.services.errors import Unauthorized
from app.services.sessions import live_session
from app.settings import Settings


async def authenticate(request: Request, services: Services) -> Actor:
    """The actor behind `request`, or `Unauthorized` saying what is wrong.

    For a Takt-HMAC request this reads the body to check the signature.
    Starlette keeps it on *this* `Request` object (`request.body()` again is
    free), so call it with the request the endpoint uses; a pure ASGI
    middleware that authenticates must replay the body to the app itself.
    """
    header = request.headers.get("authorization")
    if not header and CSRF_HEADER in request.headers:
        actor = page_session_actor(request.headers, request.cookies, services.settings)
        if actor is not None and not await session_is_live(request, services):
            actor = None
        if actor is None:
            raise Unauthorized("the session is missing or expired, or X-CSRF-Token does not match")
        return actor
    if not header:
        raise Unauthorized(
            f"authentication required: send 'Authorization: Bearer <access token>' "
            f"or a {SCHEME} signed request"
        )
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        if not credentials.strip():
            raise Unauthorized("empty Bearer token")
        return await live_access_actor(credentials.strip(), services=services)
    if scheme == SCHEME:
        return await verify_signed_request(
            services=services,
            authorization=header,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            method=request.method,
            path=request_target(request),
            body=await request.body(),
        )
    raise Unauthorized(f"unsupported authorization scheme {scheme!r}; use Bearer or {SCHEME}")


def page_session_actor(
    headers: Headers, cookies: dict[str, str], settings: Settings
) -> Actor | None:
    """The person on a Takt page: a validly signed session cookie and its CSRF secret, else None.

    The signature only: `authenticate` checks the session's record too (the
    rate limiter, which only budgets, does not).
    """
    token, sent = cookies.get(SESSION_COOKIE), headers.get(CSRF_HEADER)
    session = decode_session(token, settings=settings) if token else None
    if session is None or not sent:
        return None
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        return None
    return session.actor


async def session_is_live(request: Request, services: Services) -> bool:
    """Whether the session record the cookie names has not been ended (one lookup)."""
    token = request.cookies.get(SESSION_COOKIE)
    session = decode_session(token, settings=services.settings) if token else None
    if session is None:
        return False
    found = await live_session(services=services, session_id=session.session_id)
    return found is not None and found.user_id == session.actor.user_id


def request_target(request: Request) -> str:
    """The path and query as the client sent them (what an HMAC signature covers)."""
    raw = request.scope.get("raw_path")
    path = raw.split(b"?", 1)[0].decode("latin-1") if raw else quote(request.scope["path"])
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path
