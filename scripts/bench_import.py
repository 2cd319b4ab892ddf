"""Import the large demo (10,200 tasks) from its own export into an empty plant.

The large demo is loaded into a SQLite plant and exported as CSV files and
as one Excel workbook (`services.plant_export`); each is then imported into
an empty plant, on SQLite and (with `--postgres`) on a throwaway PostgreSQL,
the way the page does it: `start_import` (the preview's checks, the files
kept) and the queue's worker running `plant.import` to the end. Prints a
Markdown table: export times, then per database and format the import's
wall time from upload to done, and the rows it wrote.

    .venv/bin/python scripts/bench_import.py --postgres      (make bench-import)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app import clock
from app.db import tables as t
from app.db.migrate import upgrade
from app.db.session import Database
from app.domain.plants.demo_plant import demo_plant
from app.domain.plants.layout import KINDS
from app.realtime.hub import MemoryHub
from app.services import plant_export, plant_import
from app.services.context import SYSTEM, Actor, Services
from app.services.plant_import import PlantFile
from app.services.plant_loading import load_plant
from app.services.run_kinds import attach_queue
from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ZONE = "Europe/Berlin"
MANAGER = Actor(user_id=None, role="manager")


def services_for(url: str, var_dir: Path) -> Services:
    settings = Settings(database_url=url, var_dir=var_dir, redis_url=None, plant_timezone=ZONE)
    return Services(settings=settings, db=Database(url), hub=MemoryHub())


async def exported(var_dir: Path) -> tuple[dict[str, list[PlantFile]], dict[str, float]]:
    url = f"sqlite+aiosqlite:///{var_dir / 'source.db'}"
    upgrade(url)
    services = services_for(url, var_dir)
    try:
        now = clock.now().astimezone(ZoneInfo(ZONE))
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        plant = demo_plant("large", start=today, now=now)
        await load_plant(services=services, actor=SYSTEM, plant=plant, timezone=ZONE)
        began = time.perf_counter()
        csv_files = []
        for kind in KINDS:
            data = await plant_export.export_csv(services=services, actor=MANAGER, kind=kind)
            csv_files.append(PlantFile(f"{kind}.csv", data))
        csv_s = time.perf_counter() - began
        began = time.perf_counter()
        book = await plant_export.export_workbook(services=services, actor=MANAGER, with_plan=True)
        xlsx_s = time.perf_counter() - began
    finally:
        await services.db.dispose()
    files = {"CSV": csv_files, "Excel": [PlantFile("plant.xlsx", book)]}
    return files, {"CSV (3 files)": csv_s, "Excel (4 sheets, with the plan)": xlsx_s}


async def queued_import(url: str, var_dir: Path, files: list[PlantFile]) -> tuple[float, int]:
    services = services_for(url, var_dir)
    queue = attach_queue(services, worker=True)
    try:
        began = time.perf_counter()
        run_id = await plant_import.start_import(services=services, actor=MANAGER, files=files)
        await queue.wait(run_id)
        seconds = time.perf_counter() - began
        record = await queue.status(run_id)
        if record is None or record.status != "done":
            raise SystemExit(f"the import did not finish: {record}")
        async with services.db.read() as session:
            tasks = int(await session.scalar(select(func.count()).select_from(t.Task)) or 0)
    finally:
        await queue.stop()
        await services.db.dispose()
    return seconds, tasks


@contextmanager
def throwaway_postgres() -> Iterator[Any]:
    sys.path.insert(0, str(REPO))
    from tests.servers import start_postgres

    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL")
    parser.add_argument("--repeat", type=int, default=1, help="imports per database and format")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="takt-bench-import-") as tmp:
        files, exports = asyncio.run(exported(Path(tmp)))
        print("| export of the large demo | seconds |\n|---|---|")
        for what, seconds in exports.items():
            print(f"| {what} | {seconds:.2f} |", flush=True)
        print("\n| database | format | import, upload to done (median) | runs | tasks |")
        print("|---|---|---|---|---|", flush=True)
        with ExitStack() as stack:
            targets: list[tuple[str, Any]] = [("SQLite", None)]
            if args.postgres:
                targets.append(("PostgreSQL", stack.enter_context(throwaway_postgres())))
            for database, server in targets:
                for fmt, chosen in files.items():
                    times, tasks = [], 0
                    for run in range(args.repeat):
                        folder = Path(tmp) / f"{database}-{fmt}-{run}"
                        folder.mkdir()
                        url = (
                            f"sqlite+aiosqlite:///{folder / 'takt.db'}"
                            if server is None
                            else server.url(server.create_database(prefix="bench"))
                        )
                        upgrade(url)
                        seconds, tasks = asyncio.run(queued_import(url, folder, chosen))
                        times.append(seconds)
                    median = statistics.median(times)
                    print(f"| {database} | {fmt} | {median:.2f} s | {len(times)} | {tasks} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
