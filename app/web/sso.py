"""Signing in through the plant's identity provider (OIDC): `/login/oidc` and its callback.

    GET /login/oidc?next=/board      off to the provider (404 when SSO is not configured)
    GET /login/oidc/callback         back from it: verify (app/auth/oidc.py), find or create
                                     the user (app/services/sso_accounts.py), open a session

A refusal (tampered state, a token for someone else, an expired one, no role
mapped, a disabled account) is shown on the login page, and nothing is signed in.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.auth import oidc
from app.services.errors import ServiceError
from app.services.sso_accounts import account_for
from app.settings import Settings
from app.web.login import MAX_FIELD, form_page, signed_in
from app.web.session import safe_next, services_of, set_cookie


def _redirect_url(request: Request, settings: Settings) -> str:
    return settings.oidc_redirect_url or str(request.base_url).rstrip("/") + "/login/oidc/callback"


async def sso_start(request: Request) -> Response:
    settings = services_of(request).settings
    if not settings.oidc_enabled:
        return Response("Single sign-on is not configured.", status_code=404)
    raw_next = request.query_params.get("next")
    next_url = safe_next(raw_next) if raw_next else ""
    try:
        url, pending = await oidc.begin(
            settings, redirect_url=_redirect_url(request, settings), next_url=next_url
        )
    except oidc.SignInRefused as refused:
        return _refused(request, refused.message, next_url, status=503)
    response = RedirectResponse(url, status_code=303)
    set_cookie(response, request, oidc.PENDING_COOKIE, pending, max_age=oidc.PENDING_MINUTES * 60)
    return response


async def sso_callback(request: Request) -> Response:
    services = services_of(request)
    settings = services.settings
    if not settings.oidc_enabled:
        return Response("Single sign-on is not configured.", status_code=404)
    params = request.query_params
    if params.get("error"):
        said = str(params.get("error_description") or params["error"])[:200]
        return _refused(request, f"{settings.oidc_provider_name} refused the sign-in: {said}", "")
    try:
        identity = await oidc.finish(
            settings,
            cookie=request.cookies.get(oidc.PENDING_COOKIE),
            code=str(params.get("code") or "")[:MAX_FIELD],
            state=str(params.get("state") or "")[:MAX_FIELD],
            redirect_url=_redirect_url(request, settings),
        )
    except oidc.SignInRefused as refused:
        return _refused(request, refused.message, "")
    role = oidc.role_from(settings, identity.claims)
    if role is None:
        message = (
            f"Your {settings.oidc_provider_name} account has no Takt role "
            f"(claim {settings.oidc_role_claim!r}); ask an administrator."
        )
        return _refused(request, message, identity.next_url, status=403)
    claims = identity.claims
    try:
        user = await account_for(
            services=services,
            issuer=identity.issuer,
            subject=identity.subject,
            username=str(claims.get(settings.oidc_username_claim) or ""),
            display_name=str(claims.get("name") or ""),
            role=role,
        )
    except ServiceError as exc:
        return _refused(request, f"Sign-in refused: {exc.message}.", identity.next_url, status=403)
    response = await signed_in(request, user, identity.next_url, method="oidc")
    response.delete_cookie(oidc.PENDING_COOKIE, path="/")
    return response


def _refused(request: Request, message: str, next_url: str, *, status: int = 401) -> Response:
    response = form_page(request, next_url=next_url, error=message, username="", status=status)
    response.delete_cookie(oidc.PENDING_COOKIE, path="/")
    return response


routes = [
    Route("/login/oidc", sso_start, methods=["GET"]),
    Route("/login/oidc/callback", sso_callback, methods=["GET"]),
]
