"""`make bench-repair`: repair drafts on the large demo, per cause, and a breakdown from a phone.

    .venv/bin/python scripts/bench_repair.py [--repeat 3] [--no-browser]

Makes a throwaway SQLite database with `takt demo --size large` (10,200 tasks,
as scripts/bench.py does), then:

- **causes**, in process: `propose_repair` (what `POST /api/v1/repairs` and the
  board's "Review repair" do: read the live plan and every version, work out
  the fewest changes, store the draft) timed `--repeat` times for each cause
  the board offers: the machine with the most open tasks booked in the next
  8 hours down for good; the operator with the most of them away for those 8
  hours; and a task running an hour late (the in-progress task with the most
  booked after it on its machine, else the next booked task there). Each
  repair only stores a draft, so every run sees the same live plan.
- **phone to board**, unless `--no-browser`: uvicorn on the plant, two Chromium
  pages over real WebSockets: Anna's board (the day from an hour ago) and
  Olga's phone (My tasks). Olga reports the machine of her next task down;
  timed from her tap to "Review repair" showing beside the machine on Anna's
  board (the live feed, no reload), and from Anna's click to the draft in
  the panel. One run: the machine stays down afterwards.

Prints the machine, then one markdown table per part.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
from bench import app_env, load_plant, machine, uvicorn_server

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.domain.repair import Disruption, MachineDown, OperatorAbsent, TaskLate
from app.realtime.hub import MemoryHub
from app.services.context import Actor, Services
from app.services.repair import propose_repair
from app.settings import Settings

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
WINDOW = timedelta(hours=8)
PASSWORD = "takt-demo"


async def causes(database_url: str, var_dir: Path, repeat: int) -> None:
    settings = Settings(database_url=database_url, redis_url=None, var_dir=var_dir, log_json=False)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        actor = await _scheduler(services)
        now = clock.now()
        machine_id = await _busiest(services, t.Assignment.equipment_id)
        operator_id = await _busiest(services, t.Assignment.operator_id)
        late = await _late_task(services, machine_id)
        chosen: list[tuple[str, Disruption]] = [
            (f"machine #{machine_id} down for good", MachineDown(machine_id)),
            (f"operator #{operator_id} away 8 h", OperatorAbsent(operator_id, now, now + WINDOW)),
            (f"task #{late[0]} running 1 h late", TaskLate(late[0], late[1])),
        ]
        print("\n| cause | propose_repair, each run | median | tasks changed (hit) |")
        print("|---|---|---:|---:|")
        for label, cause in chosen:
            seconds, changes, hit = [], 0, 0
            for _ in range(repeat):
                began = time.perf_counter()
                proposed = await propose_repair(services=services, actor=actor, cause=cause)
                seconds.append(time.perf_counter() - began)
                changes, hit = proposed.changes, len(proposed.hit)
            runs = " / ".join(f"{s:.2f} s" for s in seconds)
            print(f"| {label} | {runs} | {statistics.median(seconds):.2f} s | {changes} ({hit}) |")
    finally:
        await services.db.dispose()


async def _scheduler(services: Services) -> Actor:
    async with services.db.read() as session:
        anna = (await session.execute(select(t.User).where(t.User.username == "anna"))).scalar_one()
    return Actor(user_id=anna.id, role="scheduler")


async def _busiest(services: Services, column: object) -> int:
    """The resource with the most open tasks booked to start in the next 8 hours."""
    now = clock.now()
    a = t.Assignment
    async with services.db.read() as session:
        found = await session.scalar(
            select(column)  # type: ignore[call-overload]
            .join(t.Task, t.Task.id == a.task_id)
            .where(a.start >= now, a.start < now + WINDOW, t.Task.status == "scheduled")
            .group_by(column)
            .order_by(func.count().desc(), column)
            .limit(1)
        )
    assert found is not None, "nothing booked in the next 8 hours"
    return int(found)


async def _late_task(services: Services, machine_id: int) -> tuple[int, object]:
    """(task, expected end): the in-progress task with the most booked after it on its
    machine, else the next booked task on `machine_id`; an hour past its booked end."""
    a, tk = t.Assignment, t.Task
    async with services.db.read() as session:
        running = (
            await session.execute(
                select(a.task_id, a.equipment_id, a.end)
                .join(tk, tk.id == a.task_id)
                .where(tk.status == "in_progress")
            )
        ).all()
        best: tuple[int, int, object] | None = None
        for task_id, equipment_id, end in running:
            after = await session.scalar(
                select(func.count())
                .select_from(a)
                .where(a.equipment_id == equipment_id, a.start >= end, a.start < end + WINDOW)
            )
            if best is None or (after or 0) > best[0]:
                best = (after or 0, task_id, end)
        if best is None:
            row = (
                await session.execute(
                    select(a.task_id, a.end)
                    .join(tk, tk.id == a.task_id)
                    .where(a.equipment_id == machine_id, tk.status == "scheduled")
                    .where(a.start >= clock.now())
                    .order_by(a.start)
                    .limit(1)
                )
            ).one()
            best = (0, row.task_id, row.end)
    _, task_id, end = best
    return task_id, clock.as_utc(end) + timedelta(hours=1)  # type: ignore[arg-type]


async def phone_to_board(base_url: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=FLAGS
        )
        try:
            start = clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            view = urlencode({"start": start.isoformat(), "zoom": "day", "rows": "equipment"})
            board = await _signed_in(browser, base_url, "anna", "/board?" + view, 1600, 1000)
            await board.wait_for_selector("#bars .bar")
            await _connected(board)
            phone = await _signed_in(browser, base_url, "olga", "/my", 360, 740)
            await _connected(phone)
            form = phone.locator(".my-breakdown-form").first
            task = phone.locator(".my-card", has=form).first
            machine_id = await form.get_attribute("data-equipment-id")
            await task.locator(".my-breakdown summary").click()
            await task.locator("textarea").fill("Spindle stopped")
            offer = board.locator(
                f'.out-of-service-machine[data-equipment-id="{machine_id}"] .review-repair'
            )
            tapped = time.perf_counter()
            await form.locator("button").click()
            await offer.wait_for(timeout=60_000)
            offered = time.perf_counter()
            assert await board.evaluate("performance.getEntriesByType('navigation').length") == 1
            await offer.click()
            await board.wait_for_selector("#optimizer[data-state=draft]", timeout=60_000)
            drafted = time.perf_counter()
            changes = await board.locator("#optimizer button", has_text="Apply").text_content()
        finally:
            await browser.close()
    print("\n| machine | tap → offer on the board | click → draft shown | tap → draft | draft |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| #{machine_id} | {offered - tapped:.2f} s | {drafted - offered:.2f} s "
        f"| {drafted - tapped:.2f} s | {(changes or '').strip()} |"
    )


async def _signed_in(browser, base_url: str, who: str, path: str, width: int, height: int):  # type: ignore[no-untyped-def]
    page = await browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(60_000)
    await page.goto(f"{base_url}/login?" + urlencode({"next": path}))
    await page.fill("input[name=username]", who)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    return page


async def _connected(page) -> None:  # type: ignore[no-untyped-def]
    await page.wait_for_function(
        "window.taktLive && window.taktLive.transport === 'websocket'", timeout=60_000
    )


def _run(step: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(step())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="takt-bench-repair-") as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        env = app_env(database_url, Path(tmp) / "var")
        print("load:", load_plant(env), file=sys.stderr)
        print("machine:", machine())
        with open("/proc/loadavg") as load:
            print("load average:", load.read().split()[:3])
        _run(lambda: causes(database_url, Path(tmp) / "var", args.repeat))
        if not args.no_browser:
            with uvicorn_server(env, Path(tmp) / "server.log") as (base_url, _pid):
                _run(lambda: phone_to_board(base_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
