"""What every plant page shares: who may edit, the plant's zone, the one way to answer.

The plant pages (jobs and tasks, operators, equipment) are forms over the
services the JSON API uses, so every save goes through the one write path.
A save answers htmx with the form's block re-rendered (and a `#notice`); a
browser without scripts gets a redirect after a save and the whole page with
the problems after a refused one. Schedulers may read these pages (they plan
with what is here); only `resources.manage` (managers, admins) may change them.

A stale save (`VersionMismatch`) is refused as the board refuses a stale move:
by the name of whoever changed it, and the form then shows their version.
Every page's list, create, save and delete go through `listing`, `created`,
`saved` and `deleted` here; a page says only what its form holds
(`PlantForm`) and which service call writes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.services import board as board_service
from app.services.errors import InvalidInput, ServiceError, StateConflict, VersionMismatch
from app.web import board_forms
from app.web.plant_forms import FormInvalid, FormReader, submitted
from app.web.session import PageSession, services_of
from app.web.templates import notice_html, render, wants_fragment

PAGE_SIZE = 50
READ = "plan.read"
MANAGE = "resources.manage"

Refused = FormInvalid | ServiceError
V = TypeVar("V")  # the row a service's update answers
# a form read whole, beside what its page shows (a task's predecessors are its siblings)
Reading = Callable[[FormReader, dict[str, Any]], dict[str, Any]]


def _no_rows(form: FormData, context: dict[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class PlantForm:
    """One plant form: where it stands and how a refused save shows again."""

    template: str
    block: str
    noun: str  # "machine": "Machine saved.", "… changed this machine while you were editing it."
    errors: Callable[[Refused], dict[str, str]]  # the problems by field
    # what else a refused form shows again: as many rows as were sent
    rows: Callable[[FormData, dict[str, Any]], dict[str, Any]] = _no_rows
    # the refusals shown on the form; any other service error is the error page
    refused: tuple[type[Refused], ...] = (FormInvalid, InvalidInput)


async def plant_zone(request: Request) -> ZoneInfo:
    return ZoneInfo(await board_service.plant_timezone(services=services_of(request)))


def when_in(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    """Times as the plant pages show them: plant time, weekday first."""

    def when(value: datetime | None) -> str:
        return "" if value is None else value.astimezone(zone).strftime("%a %d %b %Y %H:%M")

    return when


def base_context(session: PageSession, tab: str, zone: ZoneInfo) -> dict[str, Any]:
    """What every plant page shows: the back office's Plant section (desk.html), one tab."""
    return {
        "when": when_in(zone),
        "session": session,
        "section": "plant",
        "tab": tab,
        "zone": zone,
        "can_edit": session.may(MANAGE),
        "errors": {},
        "values": {},
    }


def answer(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    block: str,
    status: int = 200,
    message: str | None = None,
    level: str = "ok",
    redirect: str | None = None,
) -> Response:
    """The form's block (htmx) or the whole page; a saved form without htmx redirects."""
    if not wants_fragment(request):
        if redirect is not None and status < 400:
            return RedirectResponse(redirect, status_code=303)
        return render(request, template, context, status_code=status)
    html = bytes(render(request, template, context, block_name=block).body).decode()
    if message:
        html += str(notice_html(message, level=level))
    return HTMLResponse(html, status_code=status)


def refusal(request: Request, message: str, status: int) -> Response:
    """A refused delete or action: the notice only; the page stays as it is."""
    if not wants_fragment(request):
        return render(
            request, "error.html", {"status": status, "message": message}, status_code=status
        )
    return HTMLResponse(
        str(notice_html(message)), status_code=status, headers={"HX-Reswap": "none"}
    )


def gone_to(request: Request, url: str, message: str) -> Response:
    """After a create or delete: on to the page it leads to (htmx follows HX-Redirect)."""
    if not wants_fragment(request):
        return RedirectResponse(url, status_code=303)
    return HTMLResponse(str(notice_html(message, level="ok")), headers={"HX-Redirect": url})


async def stale_message(
    request: Request,
    exc: VersionMismatch,
    what: str,
    then: str = "Your change was not saved; the form now shows their version.",
) -> str:
    """The board's words for a stale edit: who changed it, and that nothing was lost."""
    who = await board_service.changed_by_name(services=services_of(request), user_id=exc.changed_by)
    return f"{who or 'Someone else'} changed this {what} while you were editing it. {then}"


def pager(path: str, search: str, offset: int, total: int) -> dict[str, Any]:
    """Links to the pages before and after, keeping the search."""

    def link(at: int) -> str:
        query = {k: v for k, v in (("q", search), ("offset", str(at))) if v and v != "0"}
        return path + ("?" + urlencode(query) if query else "")

    return {
        "first": offset + 1 if total else 0,
        "last": min(offset + PAGE_SIZE, total),
        "total": total,
        "prev": link(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
        "next": link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    }


def list_query(request: Request) -> tuple[str, int]:
    """The search text and page offset of a list page (bad offsets start at the top)."""
    search = request.query_params.get("q", "").strip()[:100].replace("\x00", "")
    raw = request.query_params.get("offset", "")
    offset = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 8 else 0
    return search, offset


async def deleted(
    request: Request,
    noun: str,
    delete: Callable[..., Awaitable[None]],
    *,
    back: str,
    done: str,
) -> Response:
    """The answer to a delete form: the service's `delete(expected_version=)` with the version
    the page showed; refused by name when someone changed it meanwhile, or with what still
    depends on it."""
    form = await request.form()
    try:
        await delete(expected_version=board_forms.version(form))
    except VersionMismatch as exc:
        message = await stale_message(request, exc, noun, then="Nothing was deleted.")
        return refusal(request, message, exc.status)
    except StateConflict as exc:
        return refusal(request, f"Not deleted: {exc.message}.", exc.status)
    return gone_to(request, back, done)


async def listing(
    request: Request,
    session: PageSession,
    tab: str,
    key: str,
    fetch: Callable[[str | None, int], Awaitable[tuple[Sequence[object], int]]],
) -> dict[str, Any]:
    """A list page's context: `fetch(search, offset)` a page of rows (as `key`) and the total."""
    search, offset = list_query(request)
    found, total = await fetch(search or None, offset)
    zone = await plant_zone(request)
    return base_context(session, tab, zone) | {
        key: found,
        "search": search,
        "pages": pager(f"/plant/{tab}", search, offset, total),
    }


async def created(
    request: Request,
    form: PlantForm,
    load: Callable[[], Awaitable[dict[str, Any]]],
    *,
    read: Reading,
    write: Callable[[dict[str, Any]], Awaitable[tuple[str, str]]],
) -> Response:
    """The answer to a "new" form on the page `load()` shows: `write(data)` answers where the
    new row's page is and what to say; a refused form comes back with its problems by field."""
    sent = await request.form()
    context = await load()
    try:
        url, message = await write(read(FormReader(sent, context["zone"]), context))
    except form.refused as exc:
        context |= {"values": submitted(sent), "errors": form.errors(exc)}
        return answer(request, form.template, context, block=form.block, status=422)
    return gone_to(request, url, message)


async def saved(
    request: Request,
    form: PlantForm,
    load: Callable[[], Awaitable[dict[str, Any]]],
    *,
    read: Reading,
    update: Callable[..., Awaitable[V]],
    url: str,
    shown: Callable[[V, dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """The answer to an edit form on the page `load()` shows: the form read whole, then the
    service's `update(expected_version=, changes=)` with the version the page showed. The
    saved row is shown by `load()` again, or by `shown(row, context)` from what `update`
    answered. A refused form comes back with its problems by field; a stale one by the name
    of whoever changed it meanwhile."""
    sent = await request.form()
    context = await load()
    try:
        data = read(FormReader(sent, context["zone"]), context)
        row = await update(expected_version=board_forms.version(sent), changes=data)
    except form.refused as exc:
        context |= {"values": submitted(sent), "errors": form.errors(exc)}
        context |= form.rows(sent, context)
        return answer(request, form.template, context, block=form.block, status=422)
    except VersionMismatch as exc:
        message = await stale_message(request, exc, form.noun)
        return answer(request, form.template, context, block=form.block, status=412,
                      message=message, level="error")  # fmt: skip
    fresh = await load() if shown is None else shown(row, context)
    message = f"{form.noun.capitalize()} saved."
    return answer(request, form.template, fresh, block=form.block, message=message, redirect=url)
