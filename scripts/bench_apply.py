"""`make bench-apply`: applying a whole-plant draft (7,000+ changes) on the large demo.

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
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from app.db import tables as t
from app.db.migrate import upgrade
from app.db.plan_queries import load_plan, schedule_revision
from app.db.session import Database
from app.domain.demo_plant import demo_plant
from app.domain.plan import Assignment, Plan, TaskStatus
from app.realtime.hub import MemoryHub
from app.services.context import SYSTEM, Actor, Services
from app.services.drafts import apply_draft
from app.services.plant_loading import load_plant
from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Europe/Berlin")
HEADER = (
    "| database | tasks changed (new / moved) | apply | audit entries | revision |\n"
    "|---|---:|---:|---:|---:|"
)


async def one_run(database_url: str, var_dir: Path, label: str, profile: bool) -> str:
    upgrade(database_url)
    settings = Settings(database_url=database_url, redis_url=None, var_dir=var_dir, log_json=False)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        now = datetime.now(ZONE)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        await load_plant(services=services, actor=SYSTEM, plant=demo_plant("large", start=today))
        actor = await _scheduler(services)
        draft_id, new, moved = await _whole_plant_draft(services, now)
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
        f"| {count:,} | {applied.revision} |"
    )


async def _scheduler(services: Services) -> Actor:
    async with services.db.read() as session:
        anna = (await session.execute(select(t.User).where(t.User.username == "anna"))).scalar_one()
    return Actor(user_id=anna.id, role="scheduler")


async def _whole_plant_draft(services: Services, now: datetime) -> tuple[int, int, int]:
    """Store a draft of the optimizer's shape: every tray task placed, a quarter moved."""
    schedule_id = await services.live_schedule_id()
    async with services.db.read() as session, session.begin():
        revision = await schedule_revision(session, schedule_id)
        rows = await session.execute(select(t.Task.id, t.Task.version))
        versions = {task_id: version for task_id, version in rows}
        plan = await load_plan(session, schedule_id)
    proposal = dict(plan.assignments)
    changed: dict[int, Assignment | None] = {}
    for index, task in enumerate(
        sorted(plan.tasks.values(), key=lambda task: task.id)
    ):  # moved: every fourth open scheduled task
        slot = plan.assignments.get(task.id)
        if slot is not None and task.status == TaskStatus.SCHEDULED and index % 4 == 0:
            shift = timedelta(minutes=15)
            proposal[task.id] = Assignment(
                task.id, slot.operator_id, slot.equipment_id, slot.start + shift, slot.end + shift
            )
            changed[task.id] = slot
    moved = len(changed)
    for task_id, slot in _tray_slots(plan, now):
        proposal[task_id] = slot
        changed[task_id] = None
    async with services.db.write() as session:
        draft = t.Schedule(
            name="Bench draft",
            kind="draft",
            revision=0,
            timezone=plan.timezone,
            base_revision=revision,
            created_at=now,
        )
        session.add(draft)
        await session.flush()
        session.add(
            t.Draft(
                schedule_id=draft.id,
                run_id="bench",
                solver_status="feasible",
                kpis={},
                created_by=None,
                created_at=now,
            )
        )
        await session.execute(
            insert(t.Assignment), [_row(draft.id, s, now) for s in proposal.values()]
        )
        bases = [
            {
                "schedule_id": draft.id,
                "task_id": task_id,
                "base_version": versions[task_id],
                "before": None if before is None else _json(before),
            }
            for task_id, before in changed.items()
        ]
        await session.execute(insert(t.DraftTask), bases)
        return draft.id, len(changed) - moved, moved


def _tray_slots(plan: Plan, now: datetime) -> Iterator[tuple[int, Assignment]]:
    """Each tray task on a capable machine and a qualified operator, back to back per machine."""
    free_from: dict[int, datetime] = {}
    start = (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    machines = sorted(plan.equipment.values(), key=lambda m: m.id)
    operators = sorted(plan.operators.values(), key=lambda o: o.id)
    for task in sorted(plan.tasks.values(), key=lambda task: task.id):
        if task.id in plan.assignments or task.status != TaskStatus.PENDING:
            continue
        machine = next(
            (m for m in machines if task.required_capability in (None, *m.capabilities)), None
        )
        operator = next(
            (
                o
                for o in operators
                if task.required_skill is None
                or o.skills.get(task.required_skill, 0) >= task.min_level
            ),
            None,
        )
        if machine is None or operator is None:
            continue
        begin = free_from.get(machine.id, start)
        end = begin + timedelta(minutes=task.duration_minutes)
        free_from[machine.id] = end
        yield task.id, Assignment(task.id, operator.id, machine.id, begin, end)


def _row(schedule_id: int, slot: Assignment, now: datetime) -> dict[str, Any]:
    return {
        "schedule_id": schedule_id,
        "task_id": slot.task_id,
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start,
        "end": slot.end,
        "assigned_by": None,
        "assigned_at": now,
    }


def _json(slot: Assignment) -> dict[str, Any]:
    return {
        "operator_id": slot.operator_id,
        "equipment_id": slot.equipment_id,
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
    }


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
    return parser.parse_args(argv)


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    args = parse_args(argv)
    print(HEADER, flush=True)
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'takt.db'}"
            print(asyncio.run(one_run(url, Path(tmp), "SQLite", args.profile)), flush=True)
    if args.postgres:
        for _ in range(args.repeat):
            with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
                url = stack.enter_context(throwaway_postgres())
                row = asyncio.run(one_run(url, Path(tmp), "PostgreSQL 15", args.profile))
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
