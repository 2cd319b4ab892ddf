"""Plant data in: preview spreadsheets, then import them all-or-nothing.

    preview_import(files)      every row error (file, sheet, row, column, message)
                               and the counts; writes nothing
    import_plant(files)        the same check, then ONE `load_plant` change
                               (kind `plant.loaded`: one revision, audited, published
                               after commit); any error writes nothing
    start_import(files)        checks, keeps the files, queues `plant.import`;
    run_import(run)            the worker imports them, reporting progress

References resolve within the files imported together (a task's routing to
equipment of the same import); a task's skill or capability may also be one
the plant has already. An import adds to the plant: equipment or operators
whose names the plant has already are row errors, so importing the same
file twice is refused instead of doubling the plant.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.background.queue import ActiveRun, RunFailed
from app.db import tables as t
from app.db.plan_queries import schedule_timezone
from app.domain.plants.layout import KINDS, Kind, RowError, Sheet
from app.domain.plants.plant_data import PlantData
from app.domain.plants.plant_sheets import Known, read_plant
from app.domain.plants.workbook import read_file
from app.services.access import require
from app.services.background import actor_of_run, queue_of, run_actor
from app.services.context import Actor, Services
from app.services.errors import InvalidInput, ServiceError
from app.services.plant_loading import STEPS, LoadedPlant, load_plant

__all__ = [
    "KIND",
    "MAX_FILE_BYTES",
    "PlantFile",
    "Preview",
    "import_plant",
    "import_upload",
    "keep_upload",
    "preview_import",
    "run_import",
    "start_import",
]

KIND = "plant.import"
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES = 10
# Shown in the preview; the rest are counted.
SHOWN_ERRORS = 500


@dataclass(frozen=True, slots=True)
class PlantFile:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Preview:
    plant: PlantData
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        counts = self.plant.counts()
        return {kind: counts[kind] for kind in ("equipment", "operators", "jobs", "tasks")}

    def details(self) -> dict[str, Any]:
        """The errors as the API and the run record carry them."""
        return {
            "errors": [_error_dict(error) for error in self.errors[:SHOWN_ERRORS]],
            "error_count": len(self.errors),
            "counts": self.counts(),
        }


def check_files(files: Sequence[PlantFile], kind: str | None) -> Kind | None:
    """Refuse what is not an import at all (nothing sent, too big, unknown kind): 4xx."""
    if not files:
        raise InvalidInput("choose a file to import", {"field": "file"})
    if len(files) > MAX_FILES:
        raise InvalidInput(f"import at most {MAX_FILES} files at once", {"field": "file"})
    for file in files:
        if len(file.data) > MAX_FILE_BYTES:
            raise InvalidInput(
                f"{file.name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB",
                {"field": "file", "file": file.name, "bytes": len(file.data)},
            )
    return checked_kind(kind)


def checked_kind(kind: str | None) -> Kind | None:
    if kind in (None, ""):
        return None
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", {"field": "kind"})
    return kind


async def preview_import(
    *, services: Services, actor: Actor, files: Sequence[PlantFile], kind: str | None = None
) -> Preview:
    require(actor, "resources.manage")
    chosen = check_files(files, kind)
    sheets: list[Sheet] = []
    errors: list[RowError] = []
    for file in files:
        found, problems = read_file(file.name, file.data, kind=chosen)
        sheets += found
        errors += problems
    known, zone, taken = await _plant_as_is(services)
    plant, row_errors = read_plant(sheets, zone=zone, known=known)
    errors += row_errors.found
    errors += _names_taken(sheets, taken)
    # In the order a manager reads the files: file by file, sheet by sheet, row by row.
    order = {file.name: index for index, file in enumerate(files)}
    errors.sort(key=lambda e: (order.get(e.file, 0), e.sheet, e.row))
    return Preview(plant, errors)


async def import_plant(
    *,
    services: Services,
    actor: Actor,
    files: Sequence[PlantFile],
    kind: str | None = None,
    on_step: Any = None,
) -> tuple[Preview, LoadedPlant]:
    """Check the files and import them in one change; `InvalidInput` lists the row errors."""
    preview = await preview_import(services=services, actor=actor, files=files, kind=kind)
    if not preview.ok:
        raise InvalidInput(
            f"{len(preview.errors)} problem(s) in the files; nothing was imported",
            preview.details(),
        )
    loaded = await load_plant(services=services, actor=actor, plant=preview.plant, on_step=on_step)
    return preview, loaded


async def _plant_as_is(services: Services) -> tuple[Known, ZoneInfo, dict[str, set[str]]]:
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        zone = ZoneInfo(await schedule_timezone(session, schedule_id))
        skills = set((await session.execute(select(t.OperatorSkill.skill).distinct())).scalars())
        equipment = list(await session.execute(select(t.Equipment.name, t.Equipment.capabilities)))
        operators = set((await session.execute(select(t.Operator.name))).scalars())
    capabilities = {tag for _, tags in equipment for tag in tags or ()}
    taken = {"equipment": {name for name, _ in equipment}, "operators": operators}
    return Known(skills, capabilities), zone, taken


def _names_taken(sheets: Sequence[Sheet], taken: dict[str, set[str]]) -> list[RowError]:
    found = []
    for sheet in sheets:
        names = taken.get(sheet.kind, set())
        for row in sheet.rows:
            name = str(row.cells.get("name") or "").strip()
            if name in names:
                what = "equipment" if sheet.kind == "equipment" else "an operator"
                message = f"the plant has {what} named {name!r} already"
                found.append(sheet.error(row.number, "name", message))
    return found


def _error_dict(error: RowError) -> dict[str, Any]:
    return {
        "file": error.file,
        "sheet": error.sheet,
        "row": error.row,
        "column": error.column,
        "message": error.message,
    }


# --- on the queue ----------------------------------------------------------------------------


async def start_import(
    *, services: Services, actor: Actor, files: Sequence[PlantFile], kind: str | None = None
) -> str:
    """Check the files (row errors: `InvalidInput`), keep them, and queue their import."""
    preview = await preview_import(services=services, actor=actor, files=files, kind=kind)
    if not preview.ok:
        raise InvalidInput(
            f"{len(preview.errors)} problem(s) in the files; nothing was imported",
            preview.details(),
        )
    upload = keep_upload(services=services, actor=actor, files=files)
    return await import_upload(services=services, actor=actor, upload=upload, kind=kind)


def keep_upload(*, services: Services, actor: Actor, files: Sequence[PlantFile]) -> str:
    """Keep previewed files until the manager confirms; the upload's id (theirs alone)."""
    require(actor, "resources.manage")
    _forget_old_uploads(services)
    upload = f"{actor.user_id or 0}-{uuid.uuid4().hex}"
    folder = _imports_dir(services) / upload
    folder.mkdir(parents=True)
    for index, file in enumerate(files):
        (folder / str(index)).write_bytes(file.data)
    (folder / "names").write_text("\n".join(file.name for file in files), encoding="utf-8")
    return upload


async def import_upload(
    *, services: Services, actor: Actor, upload: str, kind: str | None = None
) -> str:
    """Queue the import of files kept by `keep_upload`; the run id."""
    require(actor, "resources.manage")
    owner, _, token = upload.partition("-")
    folder = _imports_dir(services) / upload
    if owner != str(actor.user_id or 0) or not token.isalnum() or not (folder / "names").is_file():
        raise InvalidInput("this upload is gone: choose the files again", {"field": "upload"})
    checked_kind(kind)
    payload = {"folder": upload, "kind": kind or None, "actor": run_actor(actor)}
    return await queue_of(services).enqueue(
        KIND, payload, priority=6, timeout_s=600, max_retries=0, created_by=actor.user_id
    )


def _forget_old_uploads(services: Services) -> None:
    """Uploads previewed but never imported go after a day."""
    folder = _imports_dir(services)
    if not folder.is_dir():
        return
    cutoff = time.time() - 24 * 3600
    for kept in folder.iterdir():
        if kept.is_dir() and kept.stat().st_mtime < cutoff:
            shutil.rmtree(kept, ignore_errors=True)


async def run_import(services: Services, run: ActiveRun) -> dict[str, Any]:
    folder = _imports_dir(services) / Path(str(run.payload["folder"])).name
    total = len(STEPS) + 1
    run.report({"done": 0, "total": total, "step": "checking the files"})
    try:
        names = (folder / "names").read_text(encoding="utf-8").split("\n")
        files = [PlantFile(name, (folder / str(i)).read_bytes()) for i, name in enumerate(names)]
    except OSError:
        raise RunFailed("the uploaded files are gone; upload them again") from None

    def on_step(step: str) -> None:
        run.report({"done": STEPS.index(step) + 1, "total": total, "step": f"writing {step}"})

    try:
        preview, loaded = await import_plant(
            services=services,
            actor=actor_of_run(run),
            files=files,
            kind=run.payload.get("kind"),
            on_step=on_step,
        )
    except ServiceError as error:
        raise RunFailed(error.message) from error
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    run.report({"done": total, "total": total, "step": "done"})
    return {"revision": loaded.revision, "counts": preview.counts()}


def _imports_dir(services: Services) -> Path:
    return Path(services.settings.var_dir) / "imports"
