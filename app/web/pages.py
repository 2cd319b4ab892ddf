"""HTML pages: the front door, logging in, the board."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.web import board_pages, login
from app.web.session import page_session
from app.web.templates import render


async def home(request: Request) -> Response:
    return render(request, "home.html", {"session": await page_session(request)})


routes = [Route("/", home, methods=["GET"]), *login.routes, *board_pages.routes]
