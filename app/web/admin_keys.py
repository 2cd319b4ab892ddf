"""Administration: service API keys (admins only).

    GET  /admin/api-keys                      every key, revoked ones too
    POST /admin/api-keys                      create (name, role, days until it expires)
    POST /admin/api-keys/{key_id}/revoke      revoke at once

The secret of a new key is shown once, in the answer to the POST that made it
(never in a URL, never cached: `Cache-Control: no-store`); Takt keeps it
encrypted under the data keys and never shows it again. Keys sign requests
(see the API's authentication section); `takt api-key` does the same from
the command line.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app import clock
from app.auth import api_keys
from app.services.context import ROLES
from app.services.errors import InvalidInput
from app.web import board_forms as forms
from app.web.session import PageSession, page_route, services_of
from app.web.templates import render

MAX_EXPIRY_DAYS = 3650


@page_route(action="users.manage")
async def list_keys(request: Request, session: PageSession) -> Response:
    revoked = request.query_params.get("revoked", "")[:40]
    done = f"Key {revoked} is revoked: requests signed with it are refused." if revoked else ""
    return await _page(request, session, done=done)


@page_route(action="users.manage")
async def create_key(request: Request, session: PageSession) -> Response:
    form = await request.form()
    name, role, days = (forms.text(form, f, max_length=100) for f in ("name", "role", "expires"))
    problems: dict[str, str] = {}
    expires = None
    if days:
        if not days.isdigit() or not 1 <= int(days) <= MAX_EXPIRY_DAYS:
            problems["expires"] = f"a whole number of days, 1 to {MAX_EXPIRY_DAYS}, or empty"
        else:
            expires = int(days)
    if not problems:
        try:
            key_id, secret = await api_keys.create_api_key(
                services=services_of(request),
                actor=session.actor,
                name=name,
                role=role,
                expires_days=expires,
            )
        except InvalidInput as exc:
            field = exc.details.get("field", "name") if isinstance(exc.details, dict) else "name"
            problems[str(field)] = exc.message
        else:
            response = await _page(request, session, new_key=(key_id, secret, name))
            response.headers["Cache-Control"] = "no-store"
            return response
    new = {"name": name, "role": role, "expires": days}
    return await _page(request, session, new=new, problems=problems, status=422)


@page_route(action="users.manage")
async def revoke_key(request: Request, session: PageSession) -> Response:
    key_id: str = request.path_params["key_id"]
    await api_keys.revoke_api_key(services=services_of(request), actor=session.actor, key_id=key_id)
    return RedirectResponse(f"/admin/api-keys?revoked={key_id}", status_code=303)


async def _page(
    request: Request,
    session: PageSession,
    *,
    new_key: tuple[str, str, str] | None = None,
    new: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    done: str = "",
    status: int = 200,
) -> Response:
    keys = await api_keys.list_api_keys(services=services_of(request), actor=session.actor)
    now = clock.now()
    context = {
        "session": session,
        "section": "admin",
        "tab": "keys",
        "keys": list(reversed(keys)),
        "state": {key.key_id: _state(key, now) for key in keys},
        "roles": ROLES,
        "new_key": new_key,
        "new": new or {"role": "scheduler", "expires": "365"},
        "problems": problems or {},
        "done": done,
        "error": None,
    }
    return render(request, "admin/api_keys.html", context, status_code=status)


def _state(key: api_keys.ApiKeyListing, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


routes = [
    Route("/admin/api-keys", list_keys, methods=["GET"]),
    Route("/admin/api-keys", create_key, methods=["POST"]),
    Route("/admin/api-keys/{key_id:str}/revoke", revoke_key, methods=["POST"]),
]
