"""HTML pages: the front door, logging in, the board, the plant pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.web import (
    admin_audit,
    admin_keys,
    admin_people,
    admin_users,
    board_pages,
    board_rows,
    board_tools,
    equipment_pages,
    login,
    my_pages,
    optimizer_pages,
    plant_data,
    plant_equipment,
    plant_jobs,
    plant_people,
    repair_pages,
    sso,
)
from app.web.session import page_session


async def home(request: Request) -> Response:
    """The front door sends each person to their screen (or to log in first)."""
    session = await page_session(request)
    target = "/login" if session is None else login.landing(session.actor.role, None)
    return RedirectResponse(target, status_code=303)


routes = [
    Route("/", home, methods=["GET"]),
    *login.routes,
    *sso.routes,
    *board_tools.routes,
    *board_pages.routes,
    *board_rows.routes,
    *equipment_pages.routes,
    *plant_data.routes,
    *optimizer_pages.routes,
    *repair_pages.routes,
    *my_pages.routes,
    *admin_users.routes,
    *admin_keys.routes,
    *admin_audit.routes,
    *admin_people.routes,
    *plant_jobs.routes,
    *plant_people.routes,
    *plant_equipment.routes,
]
