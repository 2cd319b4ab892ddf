"""A small plant behind the real app, reached in-process through httpx.

`plant` builds: two machines (a CNC mill and a welding cell), two operators
(Olga: milling 3; Omar: welding 2, both 06-22 every day), one job with two
chained tasks due in a week, and one user per role. Its day is today in plant
time (UTC): tests place tasks at `plant.at(hour)`, never on a calendar date.
`api` is an httpx client on the app; `await login(name)` gives the
Authorization header of that user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from pathlib import Path

import httpx
import pytest
from clocks import PlantTime

from app import clock
from app.db import tables as t
from app.main import create_app
from app.security.passwords import hash_password
from app.services.context import SYSTEM, Services
from app.services.write_path import change
from app.settings import Settings

PASSWORD = "takt-test-password"


@dataclass
class Plant:
    mill: int
    welder: int
    olga: int
    omar: int
    job: int
    cut: int
    weld: int
    day: datetime  # today's midnight, plant time (UTC): the tests' slots are on it

    def at(self, hour: int, minute: int = 0, *, days: int = 0) -> datetime:
        return self.day + timedelta(days=days, hours=hour, minutes=minute)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=None,
        var_dir=tmp_path,
        log_json=True,
        rate_limit_user="10000/minute",
    )


@pytest.fixture
async def app_services(settings: Settings) -> AsyncIterator[tuple[object, Services]]:
    app = create_app(settings)
    services: Services = app.state.services
    yield app, services
    await services.db.dispose()


@pytest.fixture
async def plant(app_services: tuple[object, Services]) -> Plant:
    _, services = app_services
    day = PlantTime.current().day()
    async with change(services, SYSTEM, "test.plant") as tx:
        s = tx.session
        mill = t.Equipment(name="Mill 1", type="cnc_mill", capabilities=["milling"])
        welder = t.Equipment(name="Weld cell 1", type="welding_cell", capabilities=["welding"])
        day_shifts = [t.WeeklyShift(weekday=d, start=time(6), end=time(22)) for d in range(7)]
        olga = t.Operator(
            name="Olga Petrova",
            skills=[t.OperatorSkill(skill="milling", level=3)],
            shifts=day_shifts,
        )
        omar = t.Operator(
            name="Omar Haddad",
            skills=[t.OperatorSkill(skill="welding", level=2)],
            shifts=[t.WeeklyShift(weekday=d, start=time(6), end=time(22)) for d in range(7)],
        )
        job = t.Job(name="Bracket 4711", due=day + timedelta(days=7))
        s.add_all([mill, welder, olga, omar, job])
        await s.flush()
        cut = t.Task(
            job_id=job.id,
            name="Cut",
            sequence=1,
            duration_minutes=60,
            required_skill="milling",
            min_level=2,
            required_capability="milling",
        )
        weld = t.Task(
            job_id=job.id,
            name="Weld",
            sequence=2,
            duration_minutes=90,
            required_skill="welding",
            min_level=2,
            required_capability="welding",
        )
        s.add_all([cut, weld])
        await s.flush()
        s.add(t.TaskDependency(task_id=weld.id, predecessor_id=cut.id))
        # One argon2 hash for every account keeps the fixture fast.
        s.add_all(
            t.User(
                username=name,
                display_name=name.title(),
                password_hash=password_hash(),
                role=role,
                operator_id=operator,
                created_at=clock.now(),
            )
            for name, role, operator in [
                ("admin", "admin", None),
                ("anna", "scheduler", None),
                ("ben", "scheduler", None),
                ("maria", "manager", None),
                ("olga", "operator", olga.id),
                ("omar", "operator", omar.id),
            ]
        )
    return Plant(mill.id, welder.id, olga.id, omar.id, job.id, cut.id, weld.id, day)


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
async def api(
    app_services: tuple[object, Services], plant: Plant
) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = app_services
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://takt.test") as client:
        yield client


Login = Callable[[str], Awaitable[dict[str, str]]]


@pytest.fixture
def login(api: httpx.AsyncClient) -> Login:
    """`await login("anna")` -> the Authorization header of that user."""

    async def headers_of(username: str) -> dict[str, str]:
        response = await api.post(
            "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return headers_of
