"""Administration: user accounts (admins only).

    GET  /admin                         → the users page
    GET  /admin/users?q=&after=         a page of accounts, searchable
    POST /admin/users                   create (username, display name, password, role, operator)
    POST /admin/users/{id}/role         change the role        (form: role, version)
    POST /admin/users/{id}/active       disable or enable      (form: active, version)
    POST /admin/users/{id}/sessions     sign the account out everywhere

Plain forms that work without scripts: a change answers with a redirect back
to the list, which says what was done (`done` names a fixed message, never
text from the URL). Every change goes through `services.users` (the write
path: If-Match by the version the page showed, audit, one transaction);
disabling an account or changing its role ends its sessions, and its open
boards, walls and streams close on every instance at once. A stale edit is
refused with the name of whoever changed the account in between.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.services import board as board_service, sessions, user_directory, users
from app.services.context import ROLES
from app.services.errors import InvalidInput, NotFound, StateConflict, VersionMismatch
from app.web import board_forms as forms
from app.web.session import PageSession, page_route, services_of
from app.web.templates import render

DONE = {
    "created": "Account {who} created.",
    "role": "{who} now has another role; their open sessions were ended.",
    "disabled": "{who} is disabled: their open boards and streams were closed.",
    "enabled": "{who} may sign in again.",
    "signed_out": "{who} was signed out everywhere.",
}


async def admin_home(request: Request) -> Response:
    return RedirectResponse("/admin/users", status_code=303)


@page_route(action="users.manage")
async def list_users(request: Request, session: PageSession) -> Response:
    return await _page(request, session)


@page_route(action="users.manage")
async def create_user(request: Request, session: PageSession) -> Response:
    form = await request.form()
    values = {name: forms.text(form, name) for name in ("username", "display_name", "role")}
    operator = forms.text(form, "operator_id")
    try:
        user = await users.create_user(
            services=services_of(request),
            actor=session.actor,
            username=values["username"],
            password=str(form.get("password") or ""),
            role=values["role"],
            operator_id=int(operator) if operator.isdigit() else None,
            display_name=values["display_name"],
        )
    except (InvalidInput, StateConflict, NotFound) as exc:
        problems = _field_problems(exc)
        values["operator_id"] = operator
        return await _page(request, session, new=values, problems=problems, status=exc.status)
    return _done("created", user.username)


@page_route(action="users.manage")
async def change_role(request: Request, session: PageSession) -> Response:
    form = await request.form()
    return await _change(request, session, {"role": forms.text(form, "role")}, "role", form)


@page_route(action="users.manage")
async def change_active(request: Request, session: PageSession) -> Response:
    form = await request.form()
    active = forms.text(form, "active") == "1"
    done = "enabled" if active else "disabled"
    return await _change(request, session, {"active": active}, done, form)


@page_route(action="users.manage")
async def sign_out(request: Request, session: PageSession) -> Response:
    services = services_of(request)
    user = await users.read_user(
        services=services, actor=session.actor, user_id=request.path_params["user_id"]
    )
    await sessions.end_sessions_of(services=services, actor=session.actor, user_id=user.id)
    return _done("signed_out", user.username)


async def _change(
    request: Request, session: PageSession, changes: dict[str, Any], done: str, form: Any
) -> Response:
    services = services_of(request)
    user_id: int = request.path_params["user_id"]
    try:
        user = await users.update_user(
            services=services,
            actor=session.actor,
            user_id=user_id,
            expected_version=forms.version(form),
            changes=changes,
        )
    except VersionMismatch as exc:
        who = await board_service.changed_by_name(services=services, user_id=exc.changed_by)
        message = (
            f"{who or 'Someone'} changed this account while you were looking at it. "
            "The list shows it as it is now: check it and try again."
        )
        return await _page(request, session, error=message, status=409)
    except (InvalidInput, StateConflict) as exc:
        return await _page(request, session, error=exc.message, status=exc.status)
    return _done(done, user.username)


async def _page(
    request: Request,
    session: PageSession,
    *,
    new: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    services = services_of(request)
    params = request.query_params
    search = params.get("q", "")[: user_directory.MAX_SEARCH_LENGTH]
    page = await user_directory.list_users(
        services=services, actor=session.actor, search=search, after=params.get("after") or None
    )
    operators = await user_directory.unlinked_operators(services=services, actor=session.actor)
    done = DONE.get(params.get("done", ""), "")
    context = {
        "session": session,
        "section": "admin",
        "tab": "users",
        "page": page,
        "search": search,
        "roles": ROLES,
        "operators": operators,
        "new": new or {"role": "scheduler"},
        "problems": problems or {},
        "error": error,
        "done": done.format(who=params.get("who", "")[:100]) if done else "",
        "next_query": urlencode({"q": search, "after": page.next_after or ""}),
    }
    return render(request, "admin/users.html", context, status_code=status)


def _field_problems(exc: InvalidInput | StateConflict | NotFound) -> dict[str, str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    fields = details.get("fields")
    if isinstance(fields, dict):
        return {str(name): str(text) for name, text in fields.items()}
    if isinstance(exc, NotFound):
        return {"operator_id": "no such operator"}
    return {str(details.get("field", "username")): exc.message}


def _done(done: str, who: str) -> Response:
    return RedirectResponse(
        "/admin/users?" + urlencode({"done": done, "who": who, "q": who}), status_code=303
    )


routes = [
    Route("/admin", admin_home, methods=["GET"]),
    Route("/admin/users", list_users, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{user_id:id}/role", change_role, methods=["POST"]),
    Route("/admin/users/{user_id:id}/active", change_active, methods=["POST"]),
    Route("/admin/users/{user_id:id}/sessions", sign_out, methods=["POST"]),
]
