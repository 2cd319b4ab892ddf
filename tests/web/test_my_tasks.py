"""My tasks, server side: only your own tasks, actions through the API, breakdowns.

The world: the board plant (tests/web/board_plant.py) with Cut booked for Olga
on Mill 1 and Weld for Omar on the weld cell, both an hour from now, and a
login for Omar too. Olga's page calls the API with her session cookie and
CSRF token, as static/my.js does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from board_plant import BoardWorld, board_world, book, log_in, password_hash
from sqlalchemy import func, select

from app import clock
from app.db import tables as t
from app.services import schedule, tasks
from app.services.context import SYSTEM
from app.services.write_path import change


@dataclass
class Floor:
    world: BoardWorld
    olga: httpx.AsyncClient
    csrf: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        found = {"X-CSRF-Token": self.csrf}
        return found | ({"Idempotency-Key": key} if key else {})


@pytest.fixture
async def floor(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with board_world(sqlite_database_url, tmp_path / "var") as world:
        plant = world.plant
        await book(world, plant.cut, plant.olga, plant.mill, 1)
        await book(world, plant.weld, plant.omar, plant.welder, 1)
        async with change(world.services, SYSTEM, "test.users") as tx:
            tx.session.add(
                t.User(
                    username="omar",
                    display_name="Omar Haddad",
                    password_hash=password_hash(),
                    role="operator",
                    operator_id=plant.omar,
                    created_at=clock.now(),
                )
            )
        csrf = await log_in(world.client, "olga", "/my")
        yield Floor(world, world.client, csrf)


async def test_the_page_lists_only_my_own_tasks_in_plant_time(floor: Floor) -> None:
    page = await floor.olga.get("/my")
    assert page.status_code == 200
    assert "Cut" in page.text and "Mill 1" in page.text and "Bracket 4711" in page.text
    assert "Weld" not in page.text and "Weld cell 1" not in page.text
    assert "plant time (UTC)" in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_another_operators_task_is_not_found_by_api_or_page(floor: Floor) -> None:
    weld = floor.world.plant.weld
    for response in [
        await floor.olga.get(f"/api/v1/tasks/{weld}", headers=floor.headers()),
        await floor.olga.post(f"/api/v1/tasks/{weld}/start", headers=floor.headers()),
    ]:
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    listed = await floor.olga.get("/api/v1/tasks", headers=floor.headers())
    assert [item["name"] for item in listed.json()["items"]] == ["Cut"]
    fragment = await floor.olga.get("/my/list")
    assert "Weld" not in fragment.text
    # The board and its live feed are not for operators.
    board = await floor.olga.get("/board", follow_redirects=False)
    assert board.headers["location"] == "/my"
    assert (await floor.olga.get("/board/poll?since=0")).status_code == 403
    untouched = await tasks.get_task(services=floor.world.services, actor=SYSTEM, task_id=weld)
    assert untouched["status"] == "scheduled"


async def test_start_and_complete_record_actual_times(floor: Floor) -> None:
    cut = floor.world.plant.cut
    started = await floor.olga.post(f"/api/v1/tasks/{cut}/start", headers=floor.headers("a"))
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress" and started.json()["actual_start"]
    done = await floor.olga.post(f"/api/v1/tasks/{cut}/complete", headers=floor.headers("b"))
    assert done.json()["status"] == "done" and done.json()["actual_end"]
    page = await floor.olga.get("/my")
    assert 'data-status="done"' in page.text and "Started" in page.text


async def test_the_cookie_alone_does_not_authenticate_the_api(floor: Floor) -> None:
    cut = floor.world.plant.cut
    missing = await floor.olga.post(f"/api/v1/tasks/{cut}/start")
    wrong = await floor.olga.post(f"/api/v1/tasks/{cut}/start", headers={"X-CSRF-Token": "x"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    view = await tasks.get_task(services=floor.world.services, actor=SYSTEM, task_id=cut)
    assert view["status"] == "scheduled"


async def test_a_replayed_action_is_applied_once_and_answers_the_first_result(
    floor: Floor,
) -> None:
    cut = floor.world.plant.cut
    first = await floor.olga.post(f"/api/v1/tasks/{cut}/start", headers=floor.headers("k-1"))
    again = await floor.olga.post(f"/api/v1/tasks/{cut}/start", headers=floor.headers("k-1"))
    assert again.status_code == first.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    async with floor.world.services.db.read() as session:
        starts = await session.scalar(
            select(func.count()).where(t.AuditEntry.action == "task.start")
        )
    assert starts == 1
    other = await floor.olga.post(f"/api/v1/tasks/{cut}/pause", headers=floor.headers("k-1"))
    assert other.status_code == 422


async def test_an_action_on_a_task_reassigned_meanwhile_is_refused(floor: Floor) -> None:
    plant = floor.world.plant
    await book(floor.world, plant.cut, plant.omar, plant.mill, 2)
    refused = await floor.olga.post(f"/api/v1/tasks/{plant.cut}/start", headers=floor.headers("r"))
    assert refused.status_code == 404
    assert "Cut" not in (await floor.olga.get("/my")).text


async def test_a_breakdown_marks_the_booked_tasks_unavailable_and_is_audited(
    floor: Floor,
) -> None:
    plant, services = floor.world.plant, floor.world.services
    response = await floor.olga.post(
        f"/api/v1/equipment/{plant.mill}/breakdown",
        headers=floor.headers("bd"),
        json={"note": "spindle bearing noise"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "down"
    assert response.json()["affected_task_ids"] == [plant.cut]
    conflicts = await schedule.conflicts_of_task(services=services, task_id=plant.cut)
    assert "equipment_unavailable" in {str(c.type) for c in conflicts}
    async with services.db.read() as session:
        audit = (
            await session.execute(
                select(t.AuditEntry).where(t.AuditEntry.action == "equipment.status_changed")
            )
        ).scalar_one()
    assert audit.entity_id == plant.mill and audit.before is not None
    assert audit.after == {"status": "down", "expected_back": None, "note": "spindle bearing noise"}
    assert "machine-down" in (await floor.olga.get("/my")).text


async def test_operators_report_only_machines_they_are_booked_on(floor: Floor) -> None:
    plant = floor.world.plant
    response = await floor.olga.post(
        f"/api/v1/equipment/{plant.welder}/breakdown", headers=floor.headers(), json={}
    )
    assert response.status_code == 403
    maintenance = await floor.olga.put(
        f"/api/v1/equipment/{plant.mill}/status",
        headers=floor.headers(),
        json={"status": "maintenance"},
    )
    assert maintenance.status_code == 403
    await _assert_available(floor, plant.welder, plant.mill)


YESTERDAY = clock.now() - timedelta(days=1)


@pytest.mark.parametrize(
    "body",
    [{"note": "x" * 501}, {"expected_back": YESTERDAY.isoformat()}, {"status": "down"}],
)
async def test_a_bad_breakdown_report_is_a_4xx_and_writes_nothing(
    floor: Floor, body: dict[str, str]
) -> None:
    mill = floor.world.plant.mill
    response = await floor.olga.post(
        f"/api/v1/equipment/{mill}/breakdown", headers=floor.headers(), json=body
    )
    assert response.status_code in (400, 422), response.text
    assert "error" in response.json()
    await _assert_available(floor, mill)


async def test_a_scheduler_sets_maintenance_and_back_with_an_expected_time(floor: Floor) -> None:
    plant = floor.world.plant
    anna = floor.world.another_browser()
    csrf = await log_in(anna, "anna")
    back = (clock.now() + timedelta(hours=3)).isoformat()
    url = f"/api/v1/equipment/{plant.mill}/status"
    headers = {"X-CSRF-Token": csrf}
    down = await anna.put(
        url, headers=headers, json={"status": "maintenance", "expected_back": back}
    )
    assert down.status_code == 200, down.text
    assert down.json()["affected_task_ids"] == [plant.cut]
    up = await anna.put(url, headers=headers, json={"status": "available"})
    assert up.json() == up.json() | {"status": "available", "expected_back": None}
    await _assert_available(floor, plant.mill)
    assert (await anna.get("/my", follow_redirects=False)).headers["location"] == "/board"
    await anna.aclose()


async def _assert_available(floor: Floor, *machines: int) -> None:
    async with floor.world.services.db.read() as session:
        for machine in machines:
            row = await session.get(t.Equipment, machine)
            assert row is not None and row.status == "available"
