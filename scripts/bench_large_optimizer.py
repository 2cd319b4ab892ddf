"""`make bench-optimizer`: the optimizer on the large demo plant, through the app's path.

What a scheduler does on the board, without the browser: the large demo plant
(10,200 tasks, about 7,000 in the tray) loaded as of now into a throwaway
SQLite database, Optimize -> "All open jobs" queued with `start_optimization`
and run by the in-process worker, its progress watched as the panel watches it, its
draft compared with the live plan (`draft_diff`). One fresh plant per seed,
so runs do not feed on each other.

Per seed, one markdown row:
- tasks placed of the open ones, and error conflicts in the proposal;
- weighted lateness of the jobs the live plan had complete (every task with a
  slot), live plan -> draft: like with like;
- weighted lateness of all jobs the run planned, first (constructive) plan ->
  final draft, on the search's own footing;
- time to first plan (from pressing Optimize to the panel's first figures) and
  to the draft (run done, draft stored);
- apply time: `n/a` here (measured by the apply benchmark).

Each run takes the time limit plus ~30 s (loading the plant) and both cores.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.db import tables as t
from app.db.migrate import upgrade
from app.db.session import Database
from app.domain.plants.demo_plant import demo_plant
from app.realtime.hub import MemoryHub
from app.services.context import SYSTEM, Actor, Services
from app.services.drafts import DraftDiff, draft_diff
from app.services.optimizer_runs import start_optimization
from app.services.plant_loading import load_plant
from app.services.run_kinds import attach_queue
from app.services.run_watch import once_planned
from app.settings import Settings
from app.web.optimizer_pages import FIRST_PLAN_WAIT_S

ZONE = ZoneInfo("Europe/Berlin")
HEADER = (
    "| seed | limit | tasks placed | error conflicts "
    "| weighted lateness, jobs complete before (live → draft) "
    "| weighted lateness, all planned jobs (first plan → draft) "
    "| improvements | reached | first plan | draft | apply |\n"
    "|---:|---:|---:|---:|---|---|---:|---|---:|---:|---:|"
)


async def one_run(seed: int, limit: float, workers: int) -> str:
    with tempfile.TemporaryDirectory(prefix="takt-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'takt.db'}"
        upgrade(url)
        settings = Settings(database_url=url, redis_url=None, var_dir=Path(tmp), log_json=False)
        services = Services(settings=settings, db=Database(url), hub=MemoryHub())
        queue = attach_queue(services, worker=True)
        try:
            now = datetime.now(ZONE)
            today = now.replace(hour=0, minute=0, second=0, microsecond=0)
            plant = demo_plant("large", start=today, seed=seed, now=now)
            await load_plant(services=services, actor=SYSTEM, plant=plant)
            actor = await _scheduler(services)
            began = time.perf_counter()
            run_id = await start_optimization(
                services=services, actor=actor, time_limit_s=limit, workers=workers
            )
            first_s = await _first_plan(services, actor, run_id, began)
            finished = await queue.wait(run_id, poll_s=0.2)
            draft_s = time.perf_counter() - began
            result = finished.result or {}
            if not result.get("draft_id"):
                return f"| {seed} | {limit:.0f} s | no draft: {result} |"
            diff = await draft_diff(services=services, actor=actor, draft_id=result["draft_id"])
            open_tasks = await _open_tasks(services)
        finally:
            await queue.stop()
            await services.db.dispose()
    return _row(seed, limit, result, diff, open_tasks, first_s, draft_s)


async def _scheduler(services: Services) -> Actor:
    async with services.db.read() as session:
        anna = (await session.execute(select(t.User).where(t.User.username == "anna"))).scalar_one()
    return Actor(user_id=anna.id, role="scheduler")


async def _first_plan(services: Services, actor: Actor, run_id: str, began: float) -> float | None:
    """Seconds until the run's progress carries a plan, looked at as the panel looks
    (asked again at once, each answer waiting for the plan up to the panel's wait):
    what the scheduler sees."""
    while True:
        run = await once_planned(
            services=services, actor=actor, run_id=run_id, within_s=FIRST_PLAN_WAIT_S
        )
        if run.progress.get("weighted_lateness_minutes") is not None:
            return time.perf_counter() - began
        if run.status not in ("queued", "running"):
            return None


async def _open_tasks(services: Services) -> int:
    async with services.db.read() as session:
        rows = await session.scalars(
            select(t.Task.id).where(t.Task.status.in_(("pending", "scheduled")))
        )
        return len(rows.all())


def _row(
    seed: int,
    limit: float,
    result: dict[str, Any],
    diff: DraftDiff,
    open_tasks: int,
    first_s: float | None,
    draft_s: float,
) -> str:
    kpis = diff.kpis
    complete = kpis["weighted_lateness"]
    unplaced = len(result.get("unplaceable") or {})
    first = (result.get("first_plan") or {}).get("weighted_lateness_minutes")
    final = result.get("weighted_lateness_minutes")
    reached = result.get("reached", result.get("solver_status"))
    first_label = "n/a" if first_s is None else f"{first_s:.1f} s"
    return (
        f"| {seed} | {limit:.0f} s | {open_tasks - unplaced:,} of {open_tasks:,} "
        f"| {result.get('error_conflicts', 'n/a')} "
        f"| {_hours(complete['before'])} → {_hours(complete['after'])} "
        f"| {_hours(first)} → {_hours(final)} "
        f"| {result.get('improvements', 'n/a')} | {reached} "
        f"| {first_label} | {draft_s:.1f} s | n/a |"
    )


def _hours(minutes: float | None) -> str:
    if minutes is None:
        return "n/a"
    return f"{timedelta(minutes=minutes).total_seconds() / 3600:,.0f} h"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,8,9", help="comma-separated demo plant seeds")
    parser.add_argument("--limit", type=float, default=60.0, help="time limit, seconds")
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    args = parse_args(argv)
    print(HEADER, flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        print(asyncio.run(one_run(seed, args.limit, args.workers)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
