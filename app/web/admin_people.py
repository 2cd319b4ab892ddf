"""Administration: an operator's personal data under GDPR (admins only).

    GET  /admin/personal-data?q=                 find operators by name
    GET  /admin/personal-data/{id}.json          everything Takt holds about them (audited)
    POST /admin/personal-data/{id}/erase         erase it (form: version, confirm)

Export and erasure are `services.personal_data` (the same as the API's): the
export is a JSON download; erasure needs the version the page showed and a
ticked confirmation, is refused while the operator has open work (the page
says so), and leaves the audit chain verifying (it never held the names).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.services import board as board_service, personal_data, user_directory
from app.services.errors import StateConflict, VersionMismatch
from app.services.jsonable import jsonable
from app.web import board_forms as forms
from app.web.session import PageSession, page_route, services_of
from app.web.templates import render


@page_route(action="personal_data.manage")
async def find(request: Request, session: PageSession) -> Response:
    erased = request.query_params.get("erased", "")
    done = f"The personal data of operator {erased} is erased." if erased.isdigit() else ""
    return await _page(request, session, done=done)


@page_route(action="personal_data.manage")
async def export(request: Request, session: PageSession) -> Response:
    operator_id: int = request.path_params["operator_id"]
    data = await personal_data.export_personal_data(
        services=services_of(request), actor=session.actor, operator_id=operator_id
    )
    body = json.dumps(jsonable(data), indent=2, ensure_ascii=False)
    name = f"operator-{operator_id}-personal-data.json"
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@page_route(action="personal_data.manage")
async def erase(request: Request, session: PageSession) -> Response:
    services = services_of(request)
    operator_id: int = request.path_params["operator_id"]
    form = await request.form()
    if forms.text(form, "confirm") != "yes":
        message = "Tick the box to confirm: erasure cannot be undone."
        return await _page(request, session, error=message, status=422)
    try:
        await personal_data.erase_personal_data(
            services=services,
            actor=session.actor,
            operator_id=operator_id,
            expected_version=forms.version(form),
        )
    except VersionMismatch as exc:
        who = await board_service.changed_by_name(services=services, user_id=exc.changed_by)
        message = (
            f"{who or 'Someone'} changed this operator while you were looking: "
            "nothing was erased. Check the operator and try again."
        )
        return await _page(request, session, error=message, status=409)
    except StateConflict as exc:
        return await _page(request, session, error=exc.message, status=409)
    query = urlencode({"erased": operator_id, "q": request.query_params.get("q", "")})
    return RedirectResponse(f"/admin/personal-data?{query}", status_code=303)


async def _page(
    request: Request, session: PageSession, *, done: str = "", error: str = "", status: int = 200
) -> Response:
    search = request.query_params.get("q", "")[: user_directory.MAX_SEARCH_LENGTH]
    operators = await user_directory.find_operators(
        services=services_of(request), actor=session.actor, search=search
    )
    context = {
        "session": session,
        "section": "admin",
        "tab": "personal",
        "operators": operators,
        "search": search,
        "done": done,
        "error": error,
        "limit": user_directory.PAGE_SIZE,
    }
    return render(request, "admin/personal_data.html", context, status_code=status)


routes = [
    Route("/admin/personal-data", find, methods=["GET"]),
    Route("/admin/personal-data/{operator_id:id}.json", export, methods=["GET"]),
    Route("/admin/personal-data/{operator_id:id}/erase", erase, methods=["POST"]),
]
