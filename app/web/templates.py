"""One way to render HTML: Jinja2 templates whose blocks double as htmx fragments.

A full page and its fragments come from the same template: a route renders
the whole template, or (for htmx) just the blocks it names. Page errors are
rendered here too: a full error page for a navigation, a `#notice` fragment
(`hx-swap-oob`) for htmx and board.js requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2_fragments.starlette import Jinja2Blocks
from markupsafe import Markup, escape
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.web.session import LoginRequired, PageRefused, safe_next

TEMPLATES = Jinja2Blocks(directory=str(Path(__file__).resolve().parents[2] / "templates"))
ENV = TEMPLATES.env


def render(request: Request, name: str, context: dict[str, Any], **kwargs: Any) -> Response:
    response: Response = TEMPLATES.TemplateResponse(request, name, context, **kwargs)
    return response


def wants_fragment(conn: HTTPConnection) -> bool:
    """htmx (and board.js, which sends the same header) want fragments, not pages."""
    # A history restore wants the whole page back, though htmx asks for it.
    return (
        conn.headers.get("hx-request") == "true"
        and conn.headers.get("hx-history-restore-request") != "true"
    )


def notice_html(message: str, *, level: str = "error") -> Markup:
    """The `#notice` element as an out-of-band fragment."""
    role = "alert" if level in ("error", "warning") else "status"
    return Markup(
        f'<div id="notice" class="notice notice-{escape(level)}" role="{role}" '
        f'hx-swap-oob="true"><p>{escape(message)}</p>'
        '<button type="button" class="notice-close" aria-label="Dismiss">&times;</button></div>'
    )


def refused(request: Request, status: int, message: str) -> Response:
    if wants_fragment(request):
        return HTMLResponse(notice_html(message), status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def unavailable(request: Request) -> Response:
    """The database is away (app/api/errors.py `DatabaseOutage`): a page or a notice says so."""
    return refused(request, 503, "The database cannot be reached right now. Try again in a moment.")


async def on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    if wants_fragment(request):
        # A fragment's own URL is no page to come back to; the page it was asked from is.
        current = urlsplit(request.headers.get("hx-current-url", ""))
        back = safe_next(current.path + (f"?{current.query}" if current.query else ""))
        # htmx follows HX-Redirect with a full navigation to the login page.
        return Response(
            status_code=401, headers={"HX-Redirect": "/login?next=" + quote(back, safe="")}
        )
    return RedirectResponse(exc.next_url, status_code=303)


async def on_page_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefused)
    return refused(request, exc.status, exc.message)


EXCEPTION_HANDLERS = {LoginRequired: on_login_required, PageRefused: on_page_refused}
