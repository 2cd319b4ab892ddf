"""The board's pages take the same bad input the API does: never a 500, never a write.

Forms and queries of the board, the equipment status form and the optimizer
panel, with numbers beyond any id, digits `int()` refuses, times at the edge
of what `datetime` holds, NUL in text. A form is refused (4xx) and the plan's
revision does not move; a view's query that makes no sense falls back to the
default view (200), as an unreadable one always did. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from board_plant import BoardWorld, board_world, log_in

from app import clock
from app.db.plan_queries import schedule_revision

BEYOND_64_BITS = "9223372036854775808"


def local(hours: float) -> str:
    """A datetime-local field's value, `hours` from now (the board plant's zone is UTC)."""
    return (clock.now() + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


SLOT = {"starts_at": local(24), "ends_at": local(25)}


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path) as world:
        yield world


@pytest.fixture
async def anna(world: BoardWorld) -> dict[str, str]:
    csrf = await log_in(world.client, "anna")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


async def revision(world: BoardWorld) -> int:
    services = world.services
    async with services.db.read() as session:
        return await schedule_revision(session, await services.live_schedule_id())


@pytest.mark.parametrize(
    "form",
    [
        {"version": "1", **SLOT, "operator_id": BEYOND_64_BITS},
        {"version": "1", **SLOT, "equipment_id": "1" * 5000},
        {"version": "1", **SLOT, "operator_id": "\u00b2"},  # "²".isdigit(), int() refuses
        {"version": BEYOND_64_BITS, **SLOT},
        {"version": "1", "starts_at": "0001-01-01T00:30+01:00", "ends_at": local(25)},
        {"version": "1", "starts_at": local(24), "ends_at": "9999-12-31T23:30-01:00"},
        {"version": "1", "starts_at": "9999-12-31T23:00", "ends_at": "9999-12-31T23:59"},
        {"version": "1", "starts_at": local(24), "ends_at": local(24 * 33)},
    ],
)
async def test_a_bad_placement_form_is_refused(
    world: BoardWorld, anna: dict[str, str], form: dict[str, str]
) -> None:
    before = await revision(world)
    response = await world.client.post(
        f"/board/tasks/{world.plant.cut}/place", data=form, headers=anna
    )
    assert response.status_code in (412, 422, 428), response.text
    assert await revision(world) == before


@pytest.mark.parametrize(
    "form",
    [
        {"task_id": BEYOND_64_BITS, **SLOT},
        {"task_id": "1", "starts_at": "0001-01-01T00:30+01:00", "ends_at": local(25)},
        {"task_id": "1", **SLOT, "equipment_id": "\u0661"},  # an Arabic-Indic one
    ],
)
async def test_a_bad_preview_is_refused(
    world: BoardWorld, anna: dict[str, str], form: dict[str, str]
) -> None:
    response = await world.client.post("/board/preview", data=form, headers=anna)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/board/tasks/{BEYOND_64_BITS}"),
        ("GET", f"/board/jobs/{BEYOND_64_BITS}/critical"),
        ("POST", f"/board/tasks/{BEYOND_64_BITS}/place"),
        ("POST", f"/board/equipment/{BEYOND_64_BITS}/status"),
        ("POST", f"/board/optimizer/drafts/{BEYOND_64_BITS}/apply"),
    ],
)
async def test_an_id_in_a_page_path_beyond_any_id_is_not_found(
    world: BoardWorld, anna: dict[str, str], method: str, path: str
) -> None:
    response = await world.client.request(method, path, headers=anna, data={"version": "1"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "start=0001-01-01T00:30:00%2B01:00",
        "start=9999-12-31T23:30:00-01:00&zoom=week",
        "start=9999-12-31T23:59:59&zoom=week",
        f"job={BEYOND_64_BITS}",
        "job=%C2%B2",
        "skill=mill%00ing",
        "type=cnc%00mill&rows=equipment",
        "skill=" + "x" * 5000,
    ],
)
async def test_a_view_that_makes_no_sense_falls_back(
    world: BoardWorld, anna: dict[str, str], query: str
) -> None:
    page = await world.client.get(f"/board?{query}")
    assert page.status_code == 200, page.text[:500]
    tray = await world.client.get(f"/board/tray?{query}&offset=99999999999999999999")
    assert tray.status_code == 200, tray.text[:500]


@pytest.mark.parametrize(
    "form",
    [
        {"status": "down", "note": "oil\u0000leak"},
        {"status": "down\u0000"},
        {"status": "down", "expected_back": "9999-12-31T23:30"},
        {"status": "down", "expected_back": "0001-01-01T00:00"},
        {"status": "down", "note": "x" * 100_000},
    ],
)
async def test_a_bad_equipment_status_form_is_refused(
    world: BoardWorld, anna: dict[str, str], form: dict[str, Any]
) -> None:
    before = await revision(world)
    response = await world.client.post(
        f"/board/equipment/{world.plant.mill}/status", data=form, headers=anna
    )
    assert response.status_code == 422, response.text[:500]
    assert await revision(world) == before


@pytest.mark.parametrize("limit", ["\u00b2", "1" * 5000, "-1", "99999999999999999999"])
async def test_a_bad_optimizer_time_limit_is_refused(
    world: BoardWorld, anna: dict[str, str], limit: str
) -> None:
    response = await world.client.post(
        "/board/optimizer/runs", data={"time_limit": limit, "scope": "all"}, headers=anna
    )
    assert response.status_code == 422, response.text[:500]
    options = await world.client.get(f"/board/optimizer?time_limit={limit}", headers=anna)
    assert options.status_code == 200


async def test_a_login_form_with_nul_in_the_name_is_a_wrong_login(world: BoardWorld) -> None:
    form = await world.client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    data = {"username": "anna\x00", "password": "x", "csrf_token": csrf.group(1)}
    response = await world.client.post("/login", data=data)
    assert response.status_code == 401, response.text[:500]
