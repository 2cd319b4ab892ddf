"""`make bench-apply`: a whole-plant draft (7,000+ changes) applied, and repair drafts, at scale.

What a scheduler's "Apply" does after an "All open jobs" run, without the
browser and without waiting for the solver: the large demo plant (10,200
tasks, ~7,000 of them in the tray) loaded as of now into a throwaway database
(SQLite, or PostgreSQL 15 with `--postgres`), a draft stored beside the live
plan the way an optimizer run stores one, and `apply_draft` timed - the one
write path: every task claimed at the version the draft saw, the live slots
written, one audit entry per task, one change-log row, one revision,
published after commit.

The draft has the shape of the optimizer's whole-plant draft: every tray task
newly scheduled (on a capable machine and a qualified operator, one after
another per machine from tomorrow) and one in four open scheduled tasks moved
by 15 minutes. Apply does not validate the draft (the run did), so the slots
only need to be what a draft holds. `--profile` prints the top of a cProfile
of one apply.

Before the draft is stored, two repair drafts are timed (`propose_repair`, what
`POST /api/v1/repairs` does): the machine with the most open tasks booked in the
next 8 hours down for good, and down for 8 hours.

Prints one markdown row per run; a fresh plant per run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app import clock
from app.db import tables as t
from app.db.migrate import upgrade
from app.db.session import Database
from app.domain.plants.demo_plant import demo_plant
from app.realtime.hub import MemoryHub
from app.services.context import SYSTEM, Actor, Services
from app.services.drafts import apply_draft
from app.services.plant_loading import load_plant
from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from whole_plant_draft import whole_plant_draft  # noqa: E402

ZONE = ZoneInfo("Europe/Berlin")
HEADER = (
    "| database | tasks changed (new / moved) | apply | audit entries | revision "
    "| repair: machine down for good (changes) | repair: machine down 8 h (changes) |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


async def one_run(
    database_url: str, var_dir: Path, label: str, profile: bool, with_repairs: bool = True
) -> str:
    upgrade(database_url)
    settings = Settings(database_url=database_url, redis_url=None, var_dir=var_dir, log_json=False)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        now = datetime.now(ZONE)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        await load_plant(services=services, actor=SYSTEM, plant=demo_plant("large", start=today))
        actor = await _scheduler(services)
        repairs = ["-", "-"]
        if with_repairs:
            repairs = [await _time_repair(services, actor, hours) for hours in (None, 8)]
        draft_id, new, moved = await whole_plant_draft(services, now)
        profiler = cProfile.Profile() if profile else None
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        applied = await apply_draft(services=services, actor=actor, draft_id=draft_id)
        if profiler is not None:
            profiler.disable()
        apply_s = time.perf_counter() - began
        if profiler is not None:
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        async with services.db.read() as session:
            audited = await session.scalar(
                select(t.AuditEntry.id).where(t.AuditEntry.revision == applied.revision).limit(1)
            )
            count = len(
                (
                    await session.scalars(
                        select(t.AuditEntry.id).where(t.AuditEntry.revision == applied.revision)
                    )
                ).all()
            )
        assert audited is not None
    finally:
        await services.db.dispose()
    return (
        f"| {label} | {applied.changes:,} ({new:,} / {moved:,}) | {apply_s:.2f} s "
        f"| {count:,} | {applied.revision} | {repairs[0]} | {repairs[1]} |"
    )


async def _time_repair(services: Services, actor: Actor, hours: int | None) -> str:
    """A repair draft for the machine with the most open tasks in the next 8 hours."""
    from app.domain.repair import MachineDown
    from app.services.repair import propose_repair

    now = clock.now()
    a = t.Assignment
    async with services.db.read() as session:
        machine = await session.scalar(
            select(a.equipment_id)
            .join(t.Task, t.Task.id == a.task_id)
            .where(a.start >= now, a.start < now + timedelta(hours=8), t.Task.status == "scheduled")
            .group_by(a.equipment_id)
            .order_by(func.count().desc(), a.equipment_id)
            .limit(1)
        )
    assert machine is not None
    until = None if hours is None else now + timedelta(hours=hours)
    began = time.perf_counter()
    proposed = await propose_repair(
        services=services, actor=actor, cause=MachineDown(machine, until=until)
    )
    return f"{time.perf_counter() - began:.2f} s ({proposed.changes})"


async def _scheduler(services: Services) -> Actor:
    async with services.db.read() as session:
        anna = (await session.execute(select(t.User).where(t.User.username == "anna"))).scalar_one()
    return Actor(user_id=anna.id, role="scheduler")


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    sys.path.insert(0, str(REPO))
    from tests.servers import start_postgres

    server = start_postgres()
    try:
        yield server.url(server.create_database(prefix="bench"))
    finally:
        server.stop()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL")
    parser.add_argument("--repeat", type=int, default=1, help="runs per database")
    parser.add_argument("--profile", action="store_true", help="cProfile of each apply (stderr)")
    parser.add_argument("--skip-repairs", action="store_true", help="time the apply only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    args = parse_args(argv)
    print(HEADER, flush=True)
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'takt.db'}"
            print(
                asyncio.run(one_run(url, Path(tmp), "SQLite", args.profile, not args.skip_repairs)),
                flush=True,
            )
    if args.postgres:
        for _ in range(args.repeat):
            with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
                url = stack.enter_context(throwaway_postgres())
                row = asyncio.run(
                    one_run(url, Path(tmp), "PostgreSQL 15", args.profile, not args.skip_repairs)
                )
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
