"""Administration: the audit trail, filtered, and its hash chain verified (admins only).

    GET  /admin/audit?entity=&entity_id=&actor=&since=&until=&before=&check=
    POST /admin/audit/verify             start a check of the chain (and the archive files)
    GET  /admin/audit/checks/{run_id}    how that check is going (the card, for htmx)

Newest first, 50 at a time (`before`: the page after this one). Days are the
plant's days (`since` from its midnight, `until` to the end of that day).
Verifying walks the whole trail, as `takt audit verify --archives` does, and
says whether every hash and link still matches, and if not where it breaks.
A year of a busy plant is millions of entries, so it runs on the run queue
(`services.audit_checks`): the page shows its progress and then its finding.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.services import audit_checks, audit_trail, board as board_service
from app.services.audit_trail import TrailQuery
from app.services.errors import NotFound
from app.web.session import PageSession, page_route, services_of
from app.web.templates import render


@page_route(action="audit.read")
async def trail(request: Request, session: PageSession) -> Response:
    return await _page(request, session)


@page_route(action="audit.read")
async def verify(request: Request, session: PageSession) -> Response:
    run_id = await audit_checks.start_check(services=services_of(request), actor=session.actor)
    return RedirectResponse(f"/admin/audit?check={run_id}#verify", status_code=303)


@page_route(action="audit.read")
async def check_card(request: Request, session: PageSession) -> Response:
    check = await audit_checks.check_state(
        services=services_of(request), actor=session.actor, run_id=request.path_params["run_id"]
    )
    context = {"session": session, "check": check}
    return render(request, "admin/audit_check.html", context)


async def _page(request: Request, session: PageSession) -> Response:
    services = services_of(request)
    zone = ZoneInfo(await board_service.plant_timezone(services=services))
    params = request.query_params
    problems: dict[str, str] = {}
    shown = {name: params.get(name, "")[:100].strip() for name in _FILTERS}
    query = await _query(request, session, shown, zone, problems)
    page = None
    if not problems:
        page = await audit_trail.read_trail(services=services, actor=session.actor, query=query)
    kinds = await audit_trail.entity_kinds(services=services, actor=session.actor)
    check = None
    run_id = params.get("check", "")
    if run_id.isalnum() and len(run_id) <= 64:
        try:
            check = await audit_checks.check_state(
                services=services, actor=session.actor, run_id=run_id
            )
        except NotFound:
            check = None
    filters = {name: value for name, value in shown.items() if value}
    context: dict[str, Any] = {
        "session": session,
        "section": "admin",
        "tab": "audit",
        "page": page,
        "zone": zone,
        "kinds": kinds,
        "shown": shown,
        "problems": problems,
        "check": check,
        "next_query": urlencode(filters | {"before": page.next_before}) if page else "",
        "filtered": bool(filters),
    }
    return render(request, "admin/audit.html", context, status_code=422 if problems else 200)


_FILTERS = ("entity", "entity_id", "actor", "since", "until")


async def _query(
    request: Request,
    session: PageSession,
    shown: dict[str, str],
    zone: ZoneInfo,
    problems: dict[str, str],
) -> TrailQuery:
    entity_id = _number(shown["entity_id"], "entity_id", problems)
    before = _number(request.query_params.get("before", "")[:20], "before", problems)
    actor_id = None
    if shown["actor"]:
        actor_id = await _actor_id(request, session, shown["actor"], problems)
    since = _day(shown["since"], "since", zone, problems)
    until = _day(shown["until"], "until", zone, problems)
    if since and until and until < since:
        problems["until"] = "must not be before the first day"
    return TrailQuery(
        entity=shown["entity"],
        entity_id=entity_id,
        actor_id=actor_id,
        since=since,
        until=until + timedelta(days=1) if until else None,
        before=before,
    )


async def _actor_id(
    request: Request, session: PageSession, actor: str, problems: dict[str, str]
) -> int | None:
    if actor.lower() == "system":
        problems["actor"] = "entries by Takt itself have no account: leave this empty"
        return None
    found = await audit_trail.actor_named(
        services=services_of(request), actor=session.actor, username=actor
    )
    if found is None:
        problems["actor"] = f"no account is called {actor!r}"
    return found


def _number(raw: str, name: str, problems: dict[str, str]) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        problems[name] = "a whole number"
        return None
    return int(raw)


def _day(raw: str, name: str, zone: ZoneInfo, problems: dict[str, str]) -> datetime | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        problems[name] = "a day as YYYY-MM-DD"
        return None
    return datetime.combine(day, time(), zone)


routes = [
    Route("/admin/audit", trail, methods=["GET"]),
    Route("/admin/audit/verify", verify, methods=["POST"]),
    Route("/admin/audit/checks/{run_id:str}", check_card, methods=["GET"]),
]
