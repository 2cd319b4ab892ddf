"""HTML pages. For now the front door; the live board comes with its own issue."""

from __future__ import annotations

from pathlib import Path

from jinja2_fragments.starlette import Jinja2Blocks
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TEMPLATES = Jinja2Blocks(directory=str(Path(__file__).resolve().parents[2] / "templates"))


async def home(request: Request) -> Response:
    return TEMPLATES.TemplateResponse(request, "home.html", {})


routes = [Route("/", home, methods=["GET"])]
