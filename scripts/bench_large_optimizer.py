"""`make bench-optimizer`: the optimizer on the large demo plant, through the app's path.

What a scheduler does on the board, without the browser: the large demo plant
loaded as of now into a throwaway SQLite database, an optimization of the jobs
on the next 24 hours of the day board ("jobs in view", as the board
works them out) queued with
`start_optimization`, run by the in-process worker, its draft compared with
the live plan (`draft_diff`) and applied (`apply_draft`). One fresh plant per
run, so runs do not feed on each other.

`--stale-hours N` loads the demo as if nobody had reported anything for the
last N hours: the tasks booked then are neither done nor started, and the
draft must move them to now or later - the case where the live plan's
figures flatter it.

Prints one markdown row per run. Each takes the time limit plus ~15 s and
both cores.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.db import tables as t
from app.db.migrate import upgrade
from app.db.session import Database
from app.domain.demo_plant import demo_plant
from app.realtime.hub import MemoryHub
from app.services.board import load_board
from app.services.context import SYSTEM, Actor, Services
from app.services.drafts import apply_draft, draft_diff, start_optimization
from app.services.job_kinds import attach_queue
from app.services.plant_loading import load_plant
from app.settings import Settings
from app.web.board_render import scope_of
from app.web.board_view import BoardView

ZONE = ZoneInfo("Europe/Berlin")
HEADER = (
    "| limit | stale | jobs | tasks changed (moved / reassigned / new / out) "
    "| weighted lateness | makespan | overdue starts | run | apply |\n"
    "|---:|---:|---:|---|---|---|---|---:|---:|"
)


async def one_run(limit: float, stale_hours: float, workers: int) -> str:
    with tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'takt.db'}"
        upgrade(url)
        settings = Settings(database_url=url, redis_url=None, var_dir=Path(tmp), log_json=False)
        services = Services(settings=settings, db=Database(url), hub=MemoryHub())
        queue = attach_queue(services, worker=True)
        try:
            now = datetime.now(ZONE)
            today = now.replace(hour=0, minute=0, second=0, microsecond=0)
            reported = now - timedelta(hours=stale_hours)
            plant = demo_plant("large", start=today, now=reported)
            await load_plant(services=services, actor=SYSTEM, plant=plant)
            actor = await _scheduler(services)
            job_ids = await _jobs_on_the_next_day(services, actor)
            began = time.perf_counter()
            run_id = await start_optimization(
                services=services,
                actor=actor,
                time_limit_s=limit,
                workers=workers,
                job_ids=job_ids,
            )
            finished = await queue.wait(run_id, poll_s=0.5)
            run_s = time.perf_counter() - began
            result = finished.result or {}
            if not result.get("draft_id"):
                failed = f"no draft: {result}"
                return f"| {limit:.0f} s | {stale_hours:g} h | {len(job_ids)} | {failed} |"
            diff = await draft_diff(services=services, actor=actor, draft_id=result["draft_id"])
            began = time.perf_counter()
            await apply_draft(services=services, actor=actor, draft_id=result["draft_id"])
            apply_s = time.perf_counter() - began
        finally:
            await queue.stop()
            await services.db.dispose()
    return _row(limit, stale_hours, len(job_ids), diff, run_s, apply_s)


async def _scheduler(services: Services) -> Actor:
    async with services.db.read() as session:
        anna = (await session.execute(select(t.User).where(t.User.username == "anna"))).scalar_one()
    return Actor(user_id=anna.id, role="scheduler")


async def _jobs_on_the_next_day(services: Services, actor: Actor) -> list[int]:
    """What the board's "jobs in view" sends for a day view from the hour before now:
    the jobs of its bars and of its tray."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    view = BoardView.from_query({"start": start.isoformat(), "zoom": "day"}, default_start=start)
    board = await load_board(services=services, actor=actor, scope=scope_of(view))
    return sorted({bar.job_id for bar in board.bars} | {task.job_id for task in board.tray.tasks})


def _row(
    limit: float, stale: float, jobs: int, diff: dict[str, Any], run_s: float, apply_s: float
) -> str:
    kpis = diff["kpis"]

    def pair(name: str) -> str:
        return f"{kpis[name]['before']:,.0f} → {kpis[name]['after']:,.0f}"

    counts = " / ".join(
        str(len(diff[g])) for g in ("moved", "reassigned", "scheduled", "unscheduled")
    )
    return (
        f"| {limit:.0f} s | {stale:g} h | {jobs} | {diff['changes']} ({counts}) "
        f"| {pair('weighted_lateness')} min | {pair('makespan')} min "
        f"| {pair('overdue_starts')} | {run_s:.1f} s | {apply_s:.1f} s |"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="10,30", help="comma-separated time limits, seconds")
    parser.add_argument("--stale-hours", default="0", help="comma-separated, e.g. 0,12")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting")
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    args = parse_args(argv)
    print(HEADER, flush=True)
    for stale in (float(s) for s in args.stale_hours.split(",")):
        for limit in (float(s) for s in args.limits.split(",")):
            for _ in range(args.repeat):
                print(asyncio.run(one_run(limit, stale, args.workers)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
