"""Bad input of any kind: a 4xx in the one error shape, and nothing written.

Each case is one request the black-box runs once answered with a 500 (or that
stalled the server): numbers beyond what an id or a column holds, explicit
nulls where a value is required, times at the edge of what `datetime` holds,
a body nested 100,000 levels deep, NUL in text, slots of thousands of years.
Every case runs on SQLite and on PostgreSQL, and checks that the plan's
revision (the change log) did not move.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app import clock
from app.api.schemas import ErrorResponse
from app.db.plan_queries import schedule_revision
from app.services.context import Services

BEYOND_64_BITS = 9223372036854775808  # 2**63
HUGE = 10**25
EARLY = "0001-01-01T00:30:00+01:00"  # before year 1 in UTC
LATE = "9999-12-31T23:30:00-01:00"  # after year 9999 in UTC

Case = tuple[str, str, str, Any]  # who, method, path, json body (or None)


def soon(hours: float) -> str:
    return (clock.now() + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def slot(plant: Any, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    return {
        "operator_id": plant.olga,
        "equipment_id": plant.mill,
        "start": start or soon(24),
        "end": end or soon(25),
    }


async def revision_of(services: Services) -> int:
    async with services.db.read() as session:
        return await schedule_revision(session, await services.live_schedule_id())


@pytest.fixture
def refused(
    api: httpx.AsyncClient, login: Any, app_services: tuple[object, Services]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`await refused(who, method, path, status, json=..., content=..., headers=...)`:
    sends the request, checks the status, the error shape and that nothing was
    written; returns the error."""
    services = app_services[1]

    async def send(who: str, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        headers = {**(await login(who) if who else {}), **kwargs.pop("headers", {})}
        before = await revision_of(services)
        response = await api.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, response.text
        error = ErrorResponse.model_validate(response.json()).error
        assert await revision_of(services) == before, "a refused request wrote something"
        return error.model_dump()

    return send


async def version_of(api: httpx.AsyncClient, headers: dict[str, str], path: str) -> str:
    response = await api.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


# --- integers beyond 64 bits, or beyond what a column holds -----------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/tasks/{BEYOND_64_BITS}"),
        ("PATCH", f"/api/v1/tasks/{HUGE}"),
        ("DELETE", f"/api/v1/jobs/{BEYOND_64_BITS}"),
        ("PUT", f"/api/v1/tasks/{BEYOND_64_BITS}/assignment"),
        ("POST", f"/api/v1/tasks/{BEYOND_64_BITS}/start"),
        ("GET", f"/api/v1/jobs/{HUGE}/critical-path"),
        ("POST", f"/api/v1/drafts/{BEYOND_64_BITS}/apply"),
        ("GET", "/api/v1/queue/not-a-run-id"),
    ],
)
async def test_an_id_in_the_path_beyond_any_id_is_not_found(
    refused: Callable[..., Awaitable[dict[str, Any]]], method: str, path: str
) -> None:
    await refused("maria", method, path, 404, headers={"If-Match": '"1"'})


@pytest.mark.parametrize(
    "query",
    [
        f"/api/v1/tasks?offset={HUGE}",
        f"/api/v1/tasks?job_id={BEYOND_64_BITS}",
        f"/api/v1/tasks?operator_id={BEYOND_64_BITS}",
        f"/api/v1/jobs?offset={2**31}",
        f"/api/v1/changes?since={HUGE}",
        "/api/v1/tasks?starts_before=" + EARLY.replace("+", "%2B"),
        "/api/v1/jobs?due_before=" + LATE,
        "/api/v1/operators?skill=weld%00ing",
    ],
)
async def test_a_query_beyond_its_bounds_is_refused(
    refused: Callable[..., Awaitable[dict[str, Any]]], query: str
) -> None:
    error = await refused("anna", "GET", query, 422)
    assert error["code"] == "invalid_query"


def task_body(**changes: Any) -> dict[str, Any]:
    return {"job_id": 1, "name": "x", "duration_minutes": 5, **changes}


def proposal(**changes: Any) -> dict[str, Any]:
    slot = {"operator_id": 1, "equipment_id": 1, "start": soon(24), "end": soon(25)}
    return {"task_id": 1, "assignment": slot, **changes}


def user_body(**changes: Any) -> dict[str, Any]:
    return {"username": "zed", "password": "long-enough", "role": "operator", **changes}


@pytest.mark.parametrize(
    ("who", "path", "body"),
    [
        ("maria", "/api/v1/tasks", task_body(job_id=BEYOND_64_BITS)),
        ("maria", "/api/v1/tasks", task_body(sequence=2**31)),
        ("maria", "/api/v1/tasks", task_body(predecessors=[BEYOND_64_BITS])),
        ("anna", "/api/v1/schedule/validate", proposal(task_id=BEYOND_64_BITS)),
        ("anna", "/api/v1/bulk/unschedule-job", {"job_id": BEYOND_64_BITS}),
        ("anna", "/api/v1/bulk/shift-job", {"job_id": 1, "minutes": HUGE}),
        ("anna", "/api/v1/bulk/clear-equipment", {"equipment_id": HUGE}),
        ("anna", "/api/v1/optimizations", {"job_ids": [1, BEYOND_64_BITS]}),
        ("admin", "/api/v1/users", user_body(operator_id=BEYOND_64_BITS)),
        ("maria", "/api/v1/jobs", {"name": "x", "priority": False}),
    ],
)
async def test_a_number_in_a_body_beyond_its_bounds_is_refused(
    refused: Callable[..., Awaitable[dict[str, Any]]], who: str, path: str, body: Any
) -> None:
    error = await refused(who, "POST", path, 422, json=body)
    assert error["code"] == "invalid_input"


async def test_an_assignment_naming_an_operator_beyond_64_bits_is_refused(
    api: httpx.AsyncClient,
    login: Any,
    plant: Any,
    refused: Callable[..., Awaitable[dict[str, Any]]],
) -> None:
    anna = await login("anna")
    version = await version_of(api, anna, f"/api/v1/tasks/{plant.cut}")
    body = {**slot(plant), "operator_id": BEYOND_64_BITS}
    path = f"/api/v1/tasks/{plant.cut}/assignment"
    await refused("anna", "PUT", path, 422, json=body, headers={"If-Match": version})


async def test_predecessors_beyond_64_bits_are_refused_on_patch(
    api: httpx.AsyncClient,
    login: Any,
    plant: Any,
    refused: Callable[..., Awaitable[dict[str, Any]]],
) -> None:
    version = await version_of(api, await login("maria"), f"/api/v1/tasks/{plant.weld}")
    path = f"/api/v1/tasks/{plant.weld}"
    body = {"predecessors": [plant.cut, BEYOND_64_BITS]}
    await refused("maria", "PATCH", path, 422, json=body, headers={"If-Match": version})


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        (f'"{BEYOND_64_BITS}"', 400),  # no ETag this API gives
        ('"4294967296"', 412),  # an ETag's shape, a version no row has
        ("*", 400),  # an edit names the version it changes
        ('"1", "2"', 400),
    ],
)
async def test_if_match_beyond_any_version(
    plant: Any,
    refused: Callable[..., Awaitable[dict[str, Any]]],
    if_match: str,
    status: int,
) -> None:
    path = f"/api/v1/tasks/{plant.cut}"
    await refused(
        "maria", "PATCH", path, status, json={"name": "x"}, headers={"If-Match": if_match}
    )


# --- explicit null where a value is required ---------------------------------------------------


@pytest.mark.parametrize(
    ("noun", "field"),
    [
        ("tasks", "name"),
        ("tasks", "duration_minutes"),
        ("tasks", "min_level"),
        ("tasks", "predecessors"),
        ("tasks", "sequence"),
        ("jobs", "name"),
        ("jobs", "priority"),
        ("jobs", "status"),
        ("equipment", "name"),
        ("equipment", "status"),
        ("operators", "name"),
        ("operators", "skills"),
    ],
)
async def test_null_for_a_required_value_is_refused_on_patch(
    api: httpx.AsyncClient,
    login: Any,
    plant: Any,
    refused: Callable[..., Awaitable[dict[str, Any]]],
    noun: str,
    field: str,
) -> None:
    entity = {
        "tasks": plant.cut,
        "jobs": plant.job,
        "equipment": plant.mill,
        "operators": plant.olga,
    }
    path = f"/api/v1/{noun}/{entity[noun]}"
    version = await version_of(api, await login("maria"), path)
    error = await refused(
        "maria", "PATCH", path, 422, json={field: None}, headers={"If-Match": version}
    )
    assert error["details"][0]["field"] == field


async def test_null_still_clears_what_may_be_empty(
    api: httpx.AsyncClient, login: Any, plant: Any
) -> None:
    maria = await login("maria")
    path = f"/api/v1/jobs/{plant.job}"
    version = await version_of(api, maria, path)
    cleared = await api.patch(path, json={"due": None}, headers={**maria, "If-Match": version})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["due"] is None


# --- times outside what the plant (and `datetime`) can hold ----------------------------------


@pytest.mark.parametrize("moment", [EARLY, LATE, "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
@pytest.mark.parametrize("field", ["release", "due"])
async def test_a_job_time_outside_the_horizon_is_refused(
    refused: Callable[..., Awaitable[dict[str, Any]]], moment: str, field: str
) -> None:
    error = await refused("maria", "POST", "/api/v1/jobs", 422, json={"name": "x", field: moment})
    assert "horizon" in error["details"][0]["message"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (EARLY, soon(1)),
        (soon(1), LATE),
        # The slot that held every request for 12 s and grew memory by 340 MiB.
        (soon(1), soon(6000 * 365 * 24)),
        # Inside the horizon, but longer than a slot may be.
        (soon(1), soon(32 * 24)),
    ],
    # Ids that do not read the clock: every xdist process must collect the same tests.
    ids=["from-before-year-1", "to-after-year-9999", "6000-years", "32-days"],
)
async def test_an_assignment_outside_the_horizon_or_too_long_is_refused(
    api: httpx.AsyncClient,
    login: Any,
    plant: Any,
    refused: Callable[..., Awaitable[dict[str, Any]]],
    start: str,
    end: str,
) -> None:
    version = await version_of(api, await login("anna"), f"/api/v1/tasks/{plant.cut}")
    body = slot(plant, start, end)
    path = f"/api/v1/tasks/{plant.cut}/assignment"
    await refused("anna", "PUT", path, 422, json=body, headers={"If-Match": version})
    proposal = {"task_id": plant.cut, "assignment": body}
    await refused("anna", "POST", "/api/v1/schedule/validate", 422, json=proposal)


def window(start: str | None = None, end: str | None = None, **extra: str) -> dict[str, str]:
    return {"start": start or soon(24), "end": end or soon(48), **extra}


SAW = {"name": "Saw", "type": "saw"}
ZED = {"name": "Zed"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/equipment", {**SAW, "expected_back": LATE}),
        ("/api/v1/equipment", {**SAW, "downtime": [window(start=EARLY)]}),
        ("/api/v1/operators", {**ZED, "exceptions": [window(end=LATE, kind="time_off")]}),
        (
            "/api/v1/operators",
            {**ZED, "shifts": [{"weekday": 0, "start": "06:00+01:00", "end": "14:00"}]},
        ),
        (
            "/api/v1/operators",
            {**ZED, "skills": [{"skill": "a", "level": 1}, {"skill": "a", "level": 2}]},
        ),
    ],
    ids=["expected-back", "downtime", "time-off", "shift-with-offset", "skill-twice"],
)
async def test_resource_times_outside_the_horizon_are_refused(
    refused: Callable[..., Awaitable[dict[str, Any]]], path: str, body: Any
) -> None:
    await refused("maria", "POST", path, 422, json=body)


# --- bodies no model should ever see ------------------------------------------------------------


async def test_a_body_nested_100000_levels_deep_is_refused(
    refused: Callable[..., Awaitable[dict[str, Any]]],
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for headers in ({}, {"Idempotency-Key": "deep-1"}):
        error = await refused(
            "maria",
            "POST",
            "/api/v1/jobs",
            400,
            content=deep,
            headers={"Content-Type": "application/json", **headers},
        )
        assert error["code"] == "malformed_json"


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ('{"name": "x", "priority": NaN}', 400),
        ('{"name": "x", "priority": Infinity}', 400),
        ('{"name": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}", 400),
        (json.dumps({"name": "x" * 2_000_000}), 413),
    ],
)
async def test_json_that_is_not_json_or_too_much_of_it_is_refused(
    refused: Callable[..., Awaitable[dict[str, Any]]], content: str, status: int
) -> None:
    headers = {"Content-Type": "application/json"}
    await refused("maria", "POST", "/api/v1/jobs", status, content=content, headers=headers)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/jobs", {"name": "Bracket\u00004712"}),
        ("/api/v1/jobs", {"name": "Bracket", "customer": "\u0000"}),
        ("/api/v1/equipment", {**SAW, "downtime": [window(reason="oil\u0000")]}),
        ("/api/v1/auth/token", {"username": "anna\u0000", "password": "x"}),
    ],
)
async def test_nul_in_any_text_is_refused(
    refused: Callable[..., Awaitable[dict[str, Any]]], path: str, body: Any
) -> None:
    error = await refused("maria", "POST", path, 422, json=body)
    assert "NUL" in error["message"]
