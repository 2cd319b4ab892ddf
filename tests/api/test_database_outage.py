"""The database away: requests answer 503 with Retry-After, and a committed write says so.

The database "goes away" here by swapping the app's session factories for ones
that fail as the drivers do; tests/db/test_postgres_restart.py does it for real.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asyncpg.exceptions import AdminShutdownError, CannotConnectNowError
from sqlalchemy import exc

from app import clock
from app.db.session import database_unavailable
from app.services.context import Services

Failure = Callable[[], BaseException]
# The world of tests/api/conftest.py: its `plant`, and `login(name)` for headers.
Plant = Any
Login = Callable[[str], Awaitable[dict[str, str]]]
PASSWORD = "takt-test-password"

FAILURES: dict[str, Failure] = {
    "connection refused": lambda: ConnectionRefusedError(111, "Connection refused"),
    "connection reset": lambda: ConnectionResetError(104, "Connection reset by peer"),
    "admin shutdown": lambda: _wrapped(AdminShutdownError("terminating connection")),
    "starting up": lambda: _wrapped(CannotConnectNowError("the database system is starting up")),
    "operational": lambda: exc.OperationalError("SELECT 1", {}, Exception("server closed")),
    "interface": lambda: exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    "pool timeout": lambda: exc.TimeoutError("QueuePool limit of size 20 overflow 10 reached"),
    "sqlite locked": lambda: exc.OperationalError(
        "BEGIN IMMEDIATE", {}, Exception("database is locked")
    ),
}


def _wrapped(error: Exception) -> BaseException:
    """As SQLAlchemy hands an asyncpg error on: a DBAPIError whose cause is the driver's."""
    wrapper = exc.DBAPIError("SELECT 1", {}, error)
    wrapper.__cause__ = error
    return wrapper


@contextmanager
def database_away(
    services: Services, failure: Failure, *, when: Callable[[], bool]
) -> Iterator[None]:
    """Every new session fails with `failure()` while `when()` holds."""
    db = services.db
    read, write = db.read, db.write

    def failing(real: Callable[[], Any]) -> Callable[[], Any]:
        @asynccontextmanager
        async def session() -> AsyncIterator[Any]:
            if when():
                raise failure()
            async with real() as opened:
                yield opened

        return session

    db.read, db.write = failing(read), failing(write)  # type: ignore[method-assign]
    try:
        yield
    finally:
        db.read, db.write = read, write  # type: ignore[method-assign]


@pytest.fixture
def services(app_services: tuple[object, Services]) -> Services:
    return app_services[1]


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
def test_database_failures_are_recognised_as_unavailable(failure: Failure) -> None:
    assert database_unavailable(failure())


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        exc.ProgrammingError("SELECT", {}, Exception("syntax error")),
    ],
)
def test_other_errors_are_not_an_outage(error: Exception) -> None:
    assert not database_unavailable(error)


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
async def test_api_requests_during_an_outage_answer_503_with_retry_after(
    api: httpx.AsyncClient, login: Login, plant: Plant, services: Services, failure: Failure
) -> None:
    anna = await login("anna")
    with database_away(services, failure, when=lambda: True):
        read = await api.get(f"/api/v1/tasks/{plant.cut}", headers=anna)
        write = await api.put(
            f"/api/v1/tasks/{plant.cut}/assignment",
            headers={**anna, "If-Match": '"1"'},
            json={"operator_id": plant.olga, "equipment_id": plant.mill, **_slot(8)},
        )
        ready = await api.get("/health/ready")
    for response in (read, write):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"].isdigit()
        assert response.json()["error"]["code"] == "database_unavailable"
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("error")


async def test_pages_during_an_outage_answer_503_with_retry_after(
    api: httpx.AsyncClient, services: Services
) -> None:
    form = await api.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    fields = {"username": "anna", "password": PASSWORD, "csrf_token": csrf.group(1)}
    with database_away(services, FAILURES["connection refused"], when=lambda: True):
        page = await api.post("/login", data=fields)
        fragment = await api.post("/login", data=fields, headers={"HX-Request": "true"})
    assert page.status_code == 503, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"].isdigit()
    assert fragment.status_code == 503 and 'id="notice"' in fragment.text


# --- a committed write is answered as committed --------------------------------------------


def _slot(hour: int) -> dict[str, str]:
    day = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = day + timedelta(days=1, hours=hour)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}


WRITES: dict[str, Callable[[Plant], tuple[str, str, dict[str, Any] | None]]] = {
    "place a task": lambda p: (
        "PUT",
        f"/api/v1/tasks/{p.cut}/assignment",
        {"operator_id": p.olga, "equipment_id": p.mill, **_slot(8)},
    ),
    "edit a task": lambda p: ("PATCH", f"/api/v1/tasks/{p.cut}", {"name": "Cut twice"}),
    "add a task": lambda p: (
        "POST",
        "/api/v1/tasks",
        {"job_id": p.job, "name": "Deburr", "sequence": 3, "duration_minutes": 30},
    ),
    "add equipment": lambda p: (
        "POST",
        "/api/v1/equipment",
        {"name": "Mill 2", "type": "cnc_mill", "capabilities": ["milling"]},
    ),
    "edit equipment": lambda p: ("PATCH", f"/api/v1/equipment/{p.mill}", {"name": "Mill 1a"}),
    "edit an operator": lambda p: ("PATCH", f"/api/v1/operators/{p.olga}", {"name": "Olga P."}),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
async def test_a_write_whose_commit_is_followed_by_an_outage_still_answers_2xx(
    api: httpx.AsyncClient,
    login: Login,
    plant: Plant,
    services: Services,
    write: Callable[[Plant], tuple[str, str, dict[str, Any] | None]],
) -> None:
    """The database goes away the moment the write commits (its publish is the sign):
    the answer is built from what the transaction wrote, so it still says "done"."""
    admin = await login("admin")
    method, path, body = write(plant)
    headers = dict(admin)
    if method in ("PUT", "PATCH"):
        item = path.removesuffix("/assignment")
        headers["If-Match"] = (await api.get(item, headers=admin)).headers["etag"]
    committed = False
    publish = services.hub.publish

    async def publish_then_fail(channel: str, message: dict[str, Any]) -> None:
        nonlocal committed
        committed = True
        await publish(channel, message)

    services.hub.publish = publish_then_fail  # type: ignore[method-assign]
    with database_away(services, FAILURES["admin shutdown"], when=lambda: committed):
        response = await api.request(method, path, json=body, headers=headers)
    services.hub.publish = publish  # type: ignore[method-assign]

    assert committed
    assert response.status_code in (200, 201), response.text
    answer = response.json()
    view = answer.get("task", answer)
    assert response.headers["etag"] == f'"{view["version"]}"'
    fresh = await api.get(path.removesuffix("/assignment") if method != "POST" else
                          f"{path}/{view['id']}", headers=admin)  # fmt: skip
    assert fresh.json() == view
