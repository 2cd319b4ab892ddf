"""A small plant with schedulers behind a real server, for the live-feed tests.

`plant` writes into a fresh SQLite database: one mill, one operator (Olga),
one job with three milling tasks, and the users anna and ben (schedulers),
olga (operator). Its day is today in plant time (UTC), from the clock the test
runs under (`tests/clocks.py`): `plant.day`, `plant.at(hour)`, `plant.view`.
`server` starts the app on that database and returns a `Board` handle:
tokens, moves through the REST API, WebSocket connections.

Test modules import the fixtures (`board_fixture` registers as `board`, and so
on); tests/realtime/conftest.py belongs to the Redis hub's tests.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from clocks import PlantTime
from websockets.asyncio.client import ClientConnection, connect

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.security.passwords import hash_password
from app.services.context import SYSTEM, Services
from app.services.write_path import change
from app.settings import Settings
from app.web.session import SESSION_COOKIE

PASSWORD = "takt-test-password"
WAIT_S = 10.0


@dataclass
class Plant:
    mill: int
    olga: int
    job: int
    tasks: list[int]
    day: datetime  # today's midnight, plant time (UTC)

    def at(self, hour: int, minute: int = 0) -> datetime:
        return self.day + timedelta(hours=hour, minutes=minute)

    @property
    def view(self) -> dict[str, str]:
        """The day view of the plant's day, as a board's query or resume message says it."""
        return {"start": self.day.isoformat(), "zoom": "day", "rows": "equipment"}


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


async def build_plant(services: Services, day: datetime | None = None) -> Plant:
    """The plant on `day` (a midnight, UTC; default: today's, from the clock)."""
    day = PlantTime.current().day() if day is None else day
    async with change(services, SYSTEM, "test.plant") as tx:
        s = tx.session
        mill = t.Equipment(name="Mill 1", type="cnc_mill", capabilities=["milling"])
        olga = t.Operator(
            name="Olga Petrova",
            skills=[t.OperatorSkill(skill="milling", level=3)],
            shifts=[t.WeeklyShift(weekday=d, start=time(0), end=time(23, 59)) for d in range(7)],
        )
        job = t.Job(name="Bracket 4711", due=day + timedelta(days=6))
        s.add_all([mill, olga, job])
        await s.flush()
        tasks = [
            t.Task(
                job_id=job.id,
                name=name,
                sequence=n,
                duration_minutes=60,
                required_skill="milling",
                min_level=1,
                required_capability="milling",
            )
            for n, name in enumerate(["Cut", "Drill", "Deburr"], start=1)
        ]
        s.add_all(tasks)
        await s.flush()
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
                ("anna", "Anna Amsel", "scheduler", None),
                ("ben", "Ben Becker", "scheduler", None),
                ("olga", "Olga Petrova", "operator", olga.id),
                ("ada", "Ada Admin", "admin", None),
            ]
        )
    return Plant(mill.id, olga.id, job.id, [task.id for task in tasks], day)


@pytest.fixture(name="var_dir")
def var_dir_fixture(tmp_path: Path) -> Path:
    """The server's var/ (its signing key), shared so tests can mint session cookies."""
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture(name="plant")
async def plant_fixture(sqlite_database_url: str, var_dir: Path) -> AsyncIterator[Plant]:
    settings = Settings(database_url=sqlite_database_url, var_dir=var_dir)
    services = Services(settings=settings, db=Database(sqlite_database_url), hub=MemoryHub())
    try:
        yield await build_plant(services)
    finally:
        await services.db.dispose()


@dataclass
class Board:
    """A running server with the plant, and what the tests do to it."""

    url: str
    plant: Plant
    http: httpx.AsyncClient
    settings: Settings

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/board/ws"

    async def token(self, username: str) -> str:
        response = await self.http.post(
            "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def log_in(self, client: httpx.AsyncClient, username: str) -> str:
        """Log `client` in through the login form (a server-side session); its CSRF token."""
        form = await client.get(f"{self.url}/login")
        sent = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert sent is not None
        response = await client.post(
            f"{self.url}/login",
            data={"username": username, "password": PASSWORD, "csrf_token": sent.group(1)},
        )
        assert response.status_code == 303, response.text
        page = await client.get(f"{self.url}/board")
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert csrf is not None, page.text[:300]
        return csrf.group(1)

    async def session_cookie(self, username: str) -> str:
        """A `Cookie:` header value of a fresh session of `username`."""
        async with httpx.AsyncClient() as client:
            await self.log_in(client, username)
            return f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"

    async def user(self, admin_token: str, username: str) -> tuple[int, str]:
        """A user's id and ETag, as an administrator reads them."""
        for candidate in range(1, 20):
            found = await self.http.get(
                f"/api/v1/users/{candidate}", headers={"Authorization": f"Bearer {admin_token}"}
            )
            if found.status_code == 200 and found.json()["username"] == username:
                return candidate, found.headers["etag"]
        raise AssertionError(f"no user {username}")

    async def change_user(self, username: str, **changes: object) -> httpx.Response:
        """The administrator (ada) changes a user through the API (If-Match: its ETag)."""
        admin = await self.token("ada")
        user_id, etag = await self.user(admin, username)
        return await self.http.patch(
            f"/api/v1/users/{user_id}",
            json=changes,
            headers={"Authorization": f"Bearer {admin}", "If-Match": etag},
        )

    async def move(self, token: str, task_id: int, hour: int) -> int:
        """Place a task at `hour` on the plant's day through the API; returns the new revision."""
        await self.book(token, task_id, self.plant.at(hour), self.plant.at(hour + 1))
        return await self.revision(token)

    async def book(self, token: str, task_id: int, start: datetime, end: datetime) -> None:
        """Book Olga on the mill for a task through the API (If-Match: its ETag)."""
        auth = {"Authorization": f"Bearer {token}"}
        current = await self.http.get(f"/api/v1/tasks/{task_id}", headers=auth)
        response = await self.http.put(
            f"/api/v1/tasks/{task_id}/assignment",
            headers={**auth, "If-Match": current.headers["etag"]},
            json={
                "operator_id": self.plant.olga,
                "equipment_id": self.plant.mill,
                "start": start.isoformat(),
                "end": end.isoformat(),
            },
        )
        assert response.status_code == 200, response.text

    async def revision(self, token: str) -> int:
        feed = await self.http.get(
            "/api/v1/changes?since=0", headers={"Authorization": f"Bearer {token}"}
        )
        revision: int = feed.json()["revision"]
        return revision

    def socket(self, token: str | None = None, **options: Any) -> Any:
        url = self.ws_url + (f"?{urlencode({'access_token': token})}" if token else "")
        return connect(url, open_timeout=WAIT_S, **options)


@pytest.fixture(name="board")
async def board_fixture(
    plant: Plant, sqlite_database_url: str, var_dir: Path, live_server: Callable[..., str]
) -> AsyncIterator[Board]:
    async with serve_board(plant, sqlite_database_url, var_dir, live_server) as board:
        yield board


@asynccontextmanager
async def serve_board(
    plant: Plant,
    sqlite_database_url: str,
    var_dir: Path,
    live_server: Callable[..., str],
    **env: str,
) -> AsyncIterator[Board]:
    """A live server on the plant (`env`: more of its settings, e.g.
    TAKT_BOARD_CONFLICTS_PAGE), and a client for it."""
    env = {"TAKT_RATE_LIMIT_USER": "100000/minute", **env}
    url = live_server(database_url=sqlite_database_url, var_dir=var_dir, env=env)
    settings = Settings(database_url=sqlite_database_url, var_dir=var_dir)
    async with httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
        yield Board(url, plant, http, settings)


async def resume(socket: ClientConnection, since: int, view: dict[str, str]) -> None:
    await socket.send(_json({"type": "resume", "since": since, "view": view}))


async def frame_with(socket: ClientConnection, needle: str) -> str:
    """The first frame containing `needle` (others, like heartbeats, are skipped)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = await socket.recv()
            assert isinstance(frame, str)
            if needle in frame:
                return frame


def _json(data: Any) -> str:
    return json.dumps(data)
