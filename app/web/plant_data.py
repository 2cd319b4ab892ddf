"""The plant's data page: import spreadsheets, export them (managers and admins).

    GET  /plant/data                    the page: upload form, export links, column layout
    POST /plant/data/preview            multipart `file` (one or more), `kind`: every row
                                        error, or the counts and an "Import" button;
                                        writes nothing (the files are kept for the import)
    POST /plant/data/import             `upload` (from the preview), `kind`: queued;
                                        answers with a progress bar that polls
    GET  /plant/data/runs/{run_id}      the import's progress, then its result
    GET  /plant/data/export/{file}      equipment.csv, operators.csv, jobs.csv, plan.csv,
                                        plant.xlsx (a sheet per kind and the plan)

With htmx the answers are fragments swapped into `#import-result`; without
scripts the same forms post and get the whole page back. A file too large
for an import is refused before it is read (413); files that cannot be read
are listed as row errors (422). Neither writes anything.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.db.board_queries import BoardFilter
from app.domain.bounds import HORIZON_END, HORIZON_START
from app.domain.plan import Interval
from app.domain.plants.layout import COLUMNS, KINDS
from app.http_errors import error_response
from app.services import background, plan_export, plant_export, plant_import
from app.services.errors import ServiceError
from app.services.offload import offload
from app.services.plant_import import MAX_FILE_BYTES, MAX_FILES, PlantFile
from app.web.session import PageSession, page_route, services_of
from app.web.templates import render, wants_fragment

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORTS = {f"{kind}.csv": kind for kind in KINDS}
# The whole request: every file at its largest, and the form around them.
MAX_REQUEST_BYTES = MAX_FILES * MAX_FILE_BYTES + 64 * 1024


@page_route(action="resources.manage")
async def page(request: Request, session: PageSession) -> Response:
    return _answer(request, session, {})


@page_route(action="resources.manage")
async def preview(request: Request, session: PageSession) -> Response:
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) > MAX_REQUEST_BYTES:
        message = f"The upload is too large: at most {MAX_FILE_BYTES // (1024 * 1024)} MB a file."
        return _answer(request, session, {"failure": message}, status=413)
    form = await request.form(max_files=MAX_FILES + 1, max_fields=20)
    kind = str(form.get("kind") or "") or None
    files = []
    for item in form.getlist("file"):
        if isinstance(item, UploadFile) and item.filename:
            files.append(PlantFile(item.filename, await item.read(MAX_FILE_BYTES + 1)))
    services = services_of(request)
    try:
        found = await plant_import.preview_import(
            services=services, actor=session.actor, files=files, kind=kind
        )
    except ServiceError as error:
        status = 413 if "larger than" in error.message else error.status
        return _answer(request, session, {"failure": error.message}, status=status)
    context: dict[str, Any] = {"preview": found, "kind": kind or ""}
    if not found.ok:
        return _answer(request, session, context, status=422)
    context["upload"] = await offload(
        plant_import.keep_upload, services=services, actor=session.actor, files=files
    )
    return _answer(request, session, context)


@page_route(action="resources.manage")
async def start(request: Request, session: PageSession) -> Response:
    form = await request.form()
    try:
        run_id = await plant_import.import_upload(
            services=services_of(request),
            actor=session.actor,
            upload=str(form.get("upload") or ""),
            kind=str(form.get("kind") or "") or None,
        )
    except ServiceError as error:
        return _answer(request, session, {"failure": error.message}, status=error.status)
    run = {"id": run_id, "status": "waiting", "progress": None}
    return _answer(request, session, {"run": run}, status=202)


@page_route(action="resources.manage")
async def run_state(request: Request, session: PageSession) -> Response:
    try:
        found = await background.run_status(
            services=services_of(request), actor=session.actor, run_id=request.path_params["run_id"]
        )
    except ServiceError as error:
        return _answer(request, session, {"failure": error.message}, status=error.status)
    if found.kind != plant_import.KIND or found.created_by != session.actor.user_id:
        return _answer(request, session, {"failure": "No such import of yours."}, status=404)
    run = {
        "id": found.id,
        "status": found.status,
        "progress": found.progress,
        "result": found.result,
        "error": found.error,
    }
    return _answer(request, session, {"run": run})


@page_route(action="resources.manage")
async def export(request: Request, session: PageSession) -> Response:
    name = request.path_params["file"]
    services, actor = services_of(request), session.actor
    if name in EXPORTS:
        body = await plant_export.export_csv(services=services, actor=actor, kind=EXPORTS[name])
        media = "text/csv; charset=utf-8"
    elif name == "plan.csv":
        rows = await plan_export.plan_in_view(
            services=services,
            actor=actor,
            window=Interval(HORIZON_START, HORIZON_END),
            filters=BoardFilter(),
        )
        body, media = await offload(plan_export.csv_bytes, rows), "text/csv; charset=utf-8"
    elif name == "plant.xlsx":
        body, media = await plant_export.export_workbook(services=services, actor=actor), XLSX
    else:
        return _answer(request, session, {"failure": f"No export named {name}."}, status=404)
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="takt-{name}"',
            "Cache-Control": "no-store",
        },
    )


def _answer(
    request: Request, session: PageSession, context: dict[str, Any], *, status: int = 200
) -> Response:
    if status >= 400 and _wants_json(request):
        return _error(status, context)
    full = {
        "session": session,
        "columns": COLUMNS,
        "kinds": KINDS,
        "max_mb": MAX_FILE_BYTES // (1024 * 1024),
        **context,
    }
    blocks = {"block_names": ["result"]} if wants_fragment(request) else {}
    return render(request, "plant/data.html", full, status_code=status, **blocks)


def _wants_json(request: Request) -> bool:
    """A script (not htmx, not a browser) asking for JSON gets the API's one error shape."""
    accept = request.headers.get("accept", "")
    return (
        "application/json" in accept and "text/html" not in accept and not wants_fragment(request)
    )


def _error(status: int, context: dict[str, Any]) -> Response:
    found = context.get("preview")
    if found is not None:
        message = f"{len(found.errors)} problem(s) in the files; nothing was imported"
        return error_response(status, "invalid_input", message, found.details())
    code = {404: "not_found", 413: "too_large"}.get(status, "invalid_input")
    return error_response(status, code, str(context.get("failure", "")), {"field": "file"})


routes = [
    Route("/plant/data", page, methods=["GET"]),
    Route("/plant/data/preview", preview, methods=["POST"]),
    Route("/plant/data/import", start, methods=["POST"]),
    Route("/plant/data/runs/{run_id:run}", run_state, methods=["GET"]),
    Route("/plant/data/export/{file:str}", export, methods=["GET"]),
]
