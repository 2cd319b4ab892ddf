"""A small plant on a board, for the board's tests (imported by the test modules).

`build_board_plant(services)` writes: three machines (Mill 1 and Mill 2 mill,
Weld cell 1 welds), two operators working 06-22 every day (Olga: milling 3;
Omar: welding 2), job "Bracket 4711" with Cut (Mill 1 / Olga, today
08:00-09:00 UTC) then Weld (Weld cell 1 / Omar, 09:00-10:30), job "Frame 12"
with Drill still in the tray, and users anna/ben (schedulers), maria
(manager), olga (operator), admin. The schedule's time zone is UTC.

"Today" is the plant-time day of now (`tests/clocks.py`): the world is built
around the clock the test runs under, never on a calendar date. The day is
kept on the plant (`plant.day`), with `plant.at(hour)` and `plant.day_view`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from clocks import PlantTime

from app import clock
from app.db import tables as t
from app.main import create_app
from app.security.passwords import hash_password
from app.services import tasks
from app.services.context import SYSTEM, Services
from app.services.write_path import change
from app.settings import Settings

PASSWORD = "takt-test-password"


@dataclass(frozen=True)
class BoardPlant:
    mill: int
    mill2: int
    welder: int
    olga: int
    omar: int
    job: int
    cut: int
    weld: int
    frame: int
    drill: int
    day: datetime  # today's midnight, plant time (UTC)

    def at(self, hour: int, minute: int = 0, *, days: int = 0) -> datetime:
        """`hour:minute` on the plant's day (or `days` after it), aware UTC."""
        return self.day + timedelta(days=days, hours=hour, minutes=minute)

    def form(self, hour: int, minute: int = 0, *, days: int = 0) -> str:
        """That moment as the board's forms send it (plant time is UTC here)."""
        return self.at(hour, minute, days=days).strftime("%Y-%m-%dT%H:%M")

    @property
    def day_view(self) -> str:
        """The query of the day view of the plant's day, rows by equipment."""
        return "start=" + quote(self.day.isoformat()) + "&zoom=day&rows=equipment"


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def _task(job: int, name: str, sequence: int, minutes: int, skill: str) -> t.Task:
    return t.Task(
        job_id=job,
        name=name,
        sequence=sequence,
        duration_minutes=minutes,
        required_skill=skill,
        min_level=2,
        required_capability=skill,
    )


async def build_board_plant(services: Services, day: datetime | None = None) -> BoardPlant:
    """The plant on `day` (a midnight, UTC; default: today's, from the clock)."""
    day = PlantTime.current().day() if day is None else day
    async with change(services, SYSTEM, "test.plant") as tx:
        s = tx.session
        mill = t.Equipment(name="Mill 1", type="cnc_mill", capabilities=["milling"])
        mill2 = t.Equipment(name="Mill 2", type="cnc_mill", capabilities=["milling"])
        welder = t.Equipment(name="Weld cell 1", type="welding_cell", capabilities=["welding"])
        olga, omar = (
            t.Operator(
                name=name,
                skills=[t.OperatorSkill(skill=skill, level=level)],
                shifts=[t.WeeklyShift(weekday=d, start=time(6), end=time(22)) for d in range(7)],
            )
            for name, skill, level in [
                ("Olga Petrova", "milling", 3),
                ("Omar Haddad", "welding", 2),
            ]
        )
        job = t.Job(name="Bracket 4711", due=day + timedelta(days=7))
        frame = t.Job(name="Frame 12", due=day + timedelta(days=8))
        s.add_all([mill, mill2, welder, olga, omar, job, frame])
        await s.flush()
        cut = _task(job.id, "Cut", 1, 60, "milling")
        weld = _task(job.id, "Weld", 2, 90, "welding")
        drill = _task(frame.id, "Drill", 1, 45, "milling")
        cut.status = weld.status = "scheduled"
        s.add_all([cut, weld, drill])
        await s.flush()
        s.add(t.TaskDependency(task_id=weld.id, predecessor_id=cut.id))
        for task, operator, machine, start, end in [
            (cut, olga, mill, time(8), time(9)),
            (weld, omar, welder, time(9), time(10, 30)),
        ]:
            s.add(
                t.Assignment(
                    schedule_id=tx.schedule_id,
                    task_id=task.id,
                    operator_id=operator.id,
                    equipment_id=machine.id,
                    start=datetime.combine(day.date(), start, UTC),
                    end=datetime.combine(day.date(), end, UTC),
                    assigned_at=clock.now(),
                )
            )
        s.add_all(
            t.User(
                username=name,
                display_name=display,
                password_hash=password_hash(),
                role=role,
                operator_id=operator,
                created_at=clock.now(),
            )
            for name, display, role, operator in [
                ("admin", "Administrator", "admin", None),
                ("anna", "Anna Weber", "scheduler", None),
                ("ben", "Ben Hoffmann", "scheduler", None),
                ("maria", "Maria Schneider", "manager", None),
                ("olga", "Olga Petrova", "operator", olga.id),
            ]
        )
    return BoardPlant(
        mill.id,
        mill2.id,
        welder.id,
        olga.id,
        omar.id,
        job.id,
        cut.id,
        weld.id,
        frame.id,
        drill.id,
        day,
    )


async def log_in(client: httpx.AsyncClient, username: str, next_url: str = "/board") -> str:
    """Log in through the form; returns the session's CSRF token (from the board's meta)."""
    form = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    response = await client.post(
        "/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf.group(1),
            "next": next_url,
        },
    )
    assert response.status_code == 303, response.text
    page = await client.get(response.headers["location"])
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


@dataclass
class BoardWorld:
    services: Services
    plant: BoardPlant
    client: httpx.AsyncClient
    transport: httpx.ASGITransport

    def another_browser(self) -> httpx.AsyncClient:
        """A second client on the same app, with cookies of its own."""
        return httpx.AsyncClient(transport=self.transport, base_url="http://takt.test")


@asynccontextmanager
async def board_world(
    database_url: str, var_dir: Path, **overrides: Any
) -> AsyncIterator[BoardWorld]:
    """The app in-process on `database_url` with the board plant, and an httpx client
    (`overrides`: other settings, e.g. board_conflicts_page=1)."""
    settings = Settings(
        database_url=database_url,
        redis_url=None,
        var_dir=var_dir,
        log_json=True,
        rate_limit_user="10000/minute",
        **overrides,
    )
    app = create_app(settings)
    services: Services = app.state.services
    plant = await build_board_plant(services)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://takt.test") as client:
            yield BoardWorld(services, plant, client, transport)
    finally:
        await services.db.dispose()


async def book(world: BoardWorld, task_id: int, operator: int, machine: int, hours: int) -> None:
    """Place a task through the service, `hours` from now, for one hour."""
    now = clock.now().replace(second=0, microsecond=0)
    current = await tasks.get_task(services=world.services, actor=SYSTEM, task_id=task_id)
    await tasks.assign_task(
        services=world.services,
        actor=SYSTEM,
        task_id=task_id,
        expected_version=current["version"],
        placement=tasks.Placement(
            operator, machine, now + timedelta(hours=hours), now + timedelta(hours=hours + 1)
        ),
    )
