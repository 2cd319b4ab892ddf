"""Logging in and out of the pages, and where each role lands.

Schedulers, managers and admins land on the board; operators on their own
tasks (`/my`, app/web/my_pages.py).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.auth.login_guard import TooManyLoginAttempts, client_address, log_in, login_guard_of
from app.db import tables
from app.services import sessions
from app.services.errors import Unauthorized
from app.web.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    PageSession,
    encode_session,
    end_session,
    new_csrf_secret,
    page_route,
    page_session,
    safe_next,
    services_of,
    set_cookie,
    start_session,
)
from app.web.templates import render

MAX_FIELD = 1024


def landing(role: str, next_url: str | None) -> str:
    if role == "operator":
        return "/my"
    if role == "manager" and not next_url:
        return "/wall"  # the managers' screen (SPEC §1); they can open the board from there
    return safe_next(next_url)


async def login_form(request: Request) -> Response:
    session = await page_session(request)
    next_url = request.query_params.get("next")
    if session is not None:
        return RedirectResponse(landing(session.actor.role, next_url), status_code=303)
    return form_page(request, next_url=next_url or "", error=None, username="", status=200)


async def login(request: Request) -> Response:
    form = await request.form()
    fields = ("username", "password", "next", CSRF_FIELD)
    username, password, next_url, sent_csrf = (str(form.get(f) or "")[:MAX_FIELD] for f in fields)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent_csrf.encode(), expected.encode()):
        error = "The login form had expired. Please log in again."
        return form_page(request, next_url=next_url, error=error, username=username, status=403)
    if not username or not password:
        error = "Enter your username and password."
        return form_page(request, next_url=next_url, error=error, username=username, status=422)
    services = services_of(request)
    try:
        user = await log_in(
            services=services,
            guard=login_guard_of(request),
            username=username,
            password=password,
            address=client_address(request),
        )
    except TooManyLoginAttempts as exc:
        error = f"Too many failed logins. Try again in {exc.retry_after} seconds."
        refused = form_page(request, next_url=next_url, error=error, username=username, status=429)
        refused.headers.update(exc.headers)
        return refused
    except Unauthorized as exc:
        return form_page(
            request, next_url=next_url, error=exc.message, username=username, status=401
        )
    return await signed_in(request, user, next_url, method="password")


async def signed_in(request: Request, user: tables.User, next_url: str, *, method: str) -> Response:
    """Open a session record for `user` and send them on to their screen with its cookie."""
    services = services_of(request)
    record = await sessions.open_session(services=services, user=user, method=method)
    token = encode_session(settings=services.settings, user=user, session_id=record.id)
    response = RedirectResponse(landing(user.role, next_url), status_code=303)
    start_session(response, request, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def form_page(
    request: Request, *, next_url: str, error: str | None, username: str, status: int
) -> Response:
    csrf = new_csrf_secret()
    # No `next`: after login each role goes to its own screen (see `landing`).
    next_field = safe_next(next_url) if next_url else ""
    settings = services_of(request).settings
    sso = settings.oidc_provider_name if settings.oidc_enabled else None
    context = {"next": next_field, "error": error, "username": username, "csrf": csrf, "sso": sso}
    response = render(request, "login.html", context, status_code=status)
    # Double-submit: the form's token must match this cookie (no session exists yet).
    set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf, max_age=3600)
    return response


@page_route(action=None)
async def logout(request: Request, session: PageSession) -> Response:
    """End this browser's session (only this one: the user's other browsers stay signed in)."""
    await sessions.log_out(services=services_of(request), session_id=session.session_id)
    response = RedirectResponse("/login", status_code=303)
    end_session(response, request)
    return response


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
