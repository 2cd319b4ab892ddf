"""`takt import` and `takt export`: the plant's data as spreadsheets (docs/plant-data.md).

takt import FILE... [--kind KIND] [--dry-run]
    CSV files (one kind each) or Excel workbooks (a sheet per kind); every
    row error is listed and nothing is written unless there are none. The
    import is one change (one revision, audited) as the system.
takt export [--to DIR | --to FILE.xlsx]
    DIR (default: the current directory): equipment.csv, operators.csv,
    jobs.csv and plan.csv; FILE.xlsx: one workbook with a sheet of each.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from app.cli.common import CommandFailed, add_command, services_for
from app.db.board_queries import BoardFilter
from app.domain.bounds import HORIZON_END, HORIZON_START
from app.domain.plan import Interval
from app.domain.plants.layout import KINDS
from app.services import plan_export, plant_export, plant_import
from app.services.context import SYSTEM, Services
from app.services.errors import InvalidInput, ServiceError
from app.services.plant_import import PlantFile, Preview
from app.settings import Settings

# Errors printed before "... and N more".
SHOWN = 50


def add_commands(commands: Any) -> None:
    reading = add_command(
        commands, "import", _import, "import equipment, operators and jobs from CSV or Excel"
    )
    reading.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help="CSV files or .xlsx workbooks"
    )
    reading.add_argument(
        "--kind", choices=KINDS, help="what the CSV files hold (default: told by their header)"
    )
    reading.add_argument(
        "--dry-run",
        action="store_true",
        help="check the files and list every problem; write nothing",
    )
    writing = add_command(commands, "export", _export, "export the plant's data and plan")
    writing.add_argument(
        "--to",
        type=Path,
        default=Path("."),
        metavar="DIR|FILE.xlsx",
        help="a folder for CSV files, or an Excel workbook (default: the current folder)",
    )


def _import(args: argparse.Namespace, settings: Settings) -> int:
    files = []
    for path in args.files:
        try:
            files.append(PlantFile(path.name, path.read_bytes()))
        except OSError as error:
            raise CommandFailed(f"{path}: cannot read it ({error.strerror or error})") from None
    return asyncio.run(_run_import(settings, files, args.kind, args.dry_run))


async def _run_import(
    settings: Settings, files: list[PlantFile], kind: str | None, dry_run: bool
) -> int:
    async with services_for(settings) as services:
        try:
            preview = await plant_import.preview_import(
                services=services, actor=SYSTEM, files=files, kind=kind
            )
            if not preview.ok:
                raise CommandFailed(_problems(preview))
            if dry_run:
                print(f"The files are fine: {_counted(preview)}. Nothing was written (--dry-run).")
                return 0
            preview, loaded = await plant_import.import_plant(
                services=services, actor=SYSTEM, files=files, kind=kind
            )
        except InvalidInput as error:
            raise CommandFailed(error.message) from None
        except ServiceError as error:
            raise CommandFailed(error.message) from None
    print(f"Imported {_counted(preview)} (revision {loaded.revision}).")
    return 0


def _counted(preview: Preview) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in preview.counts().items())


def _problems(preview: Preview) -> str:
    lines = [f"{len(preview.errors)} problem(s) in the files; nothing was imported:"]
    lines += [f"  {error}" for error in preview.errors[:SHOWN]]
    if len(preview.errors) > SHOWN:
        lines.append(f"  ... and {len(preview.errors) - SHOWN} more")
    return "\n".join(lines)


def _export(args: argparse.Namespace, settings: Settings) -> int:
    target: Path = args.to
    files = asyncio.run(_exported(settings, workbook=target.suffix.lower() == ".xlsx"))
    if target.suffix.lower() == ".xlsx":
        written = [target]
        _write(target, files["workbook"])
    else:
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandFailed(f"{target}: cannot make the folder ({error.strerror})") from None
        written = [target / name for name in files]
        for path in written:
            _write(path, files[path.name])
    print(f"Exported {', '.join(str(path) for path in written)}.")
    return 0


async def _exported(settings: Settings, *, workbook: bool) -> dict[str, bytes]:
    """File name -> content: one workbook, or a CSV file per kind and the plan."""
    async with services_for(settings) as services:
        try:
            if workbook:
                return {
                    "workbook": await plant_export.export_workbook(services=services, actor=SYSTEM)
                }
            return await _csv_files(services)
        except ServiceError as error:
            raise CommandFailed(error.message) from None


async def _csv_files(services: Services) -> dict[str, bytes]:
    files = {
        f"{kind}.csv": await plant_export.export_csv(services=services, actor=SYSTEM, kind=kind)
        for kind in KINDS
    }
    rows = await plan_export.plan_in_view(
        services=services,
        actor=SYSTEM,
        window=Interval(HORIZON_START, HORIZON_END),
        filters=BoardFilter(),
    )
    return {**files, "plan.csv": plan_export.csv_bytes(rows)}


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise CommandFailed(f"{path}: cannot write it ({error.strerror or error})") from None
