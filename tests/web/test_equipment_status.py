"""Equipment status from the board, server side: the row's form, the panel's tasks to move.

The world: the board plant (tests/web/board_plant.py) with Cut booked for Olga
on Mill 1 an hour from now and Weld for Omar on the weld cell two hours from
now; the board's view is the day from two hours ago, rows by equipment.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

import pytest
from board_plant import BoardWorld, board_world, book, log_in
from sqlalchemy import select

from app import clock
from app.db import tables as t
from app.services import tasks
from app.services.board_view import BoardView
from app.services.context import SYSTEM, Actor
from app.web.board_render import render_message, view_from_query


@pytest.fixture
async def world(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(sqlite_database_url, tmp_path / "var") as world:
        plant = world.plant
        await book(world, plant.cut, plant.olga, plant.mill, 1)
        await book(world, plant.weld, plant.omar, plant.welder, 2)
        yield world


def today_view() -> str:
    start = (clock.now() - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    return f"start={quote(start.isoformat())}&zoom=day&rows=equipment"


async def headers_of(world: BoardWorld, username: str) -> dict[str, str]:
    csrf = await log_in(world.client, username, "/my" if username == "olga" else "/board")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def bar_of(html: str, task_id: int) -> str:
    found = re.search(rf'<div id="bar-{task_id}"[^>]*>', html)
    assert found is not None, f"no bar for task {task_id}"
    return found.group(0)


def version_on(html: str, task_id: int) -> int:
    found = re.search(r'data-version="(\d+)"', bar_of(html, task_id))
    assert found is not None
    return int(found.group(1))


def panel(html: str) -> str:
    return html[html.index('id="conflicts"') :]


async def status_of(world: BoardWorld, machine: int) -> str:
    async with world.services.db.read() as session:
        row = await session.get(t.Equipment, machine)
        assert row is not None
        return row.status


async def set_down(world: BoardWorld, headers: dict[str, str], **fields: str) -> str:
    response = await world.client.post(
        f"/board/equipment/{world.plant.mill}/status?{today_view()}",
        data={"status": "down", **fields},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.text


async def test_schedulers_and_managers_get_the_status_control_on_machine_rows(
    world: BoardWorld,
) -> None:
    mill = world.plant.mill
    await headers_of(world, "anna")
    page = (await world.client.get(f"/board?{today_view()}")).text
    # One shared form for the board, a button per machine row that opens it.
    assert page.count('id="status-form"') == 1
    assert page.count('popovertarget="status-form" aria-label="Set the status of ') == len(
        re.findall(r'class="row-label ', page)
    )
    assert f'data-resource-id="{mill}" data-status="available"' in page
    by_operator = await world.client.get(f"/board?{today_view().replace('equipment', 'operator')}")
    assert "status-form" not in by_operator.text
    async with world.another_browser() as maria:
        await log_in(maria, "maria")
        assert 'id="status-form"' in (await maria.get("/board")).text


async def test_setting_a_status_needs_the_csrf_token(world: BoardWorld) -> None:
    await headers_of(world, "anna")
    response = await world.client.post(
        f"/board/equipment/{world.plant.mill}/status",
        data={"status": "down"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 403
    assert "security token" in response.text
    assert await status_of(world, world.plant.mill) == "available"


async def test_an_operator_may_not_set_status_from_the_board(world: BoardWorld) -> None:
    headers = await headers_of(world, "olga")  # booked on Mill 1, so she may *report* it
    response = await world.client.post(
        f"/board/equipment/{world.plant.mill}/status", data={"status": "down"}, headers=headers
    )
    assert response.status_code == 403
    assert await status_of(world, world.plant.mill) == "available"


async def test_a_scheduler_sets_a_machine_down_and_the_board_offers_the_tasks_to_move(
    world: BoardWorld,
) -> None:
    plant = world.plant
    headers = await headers_of(world, "anna")
    back = (clock.now() + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")  # plant time is UTC
    html = await set_down(world, headers, expected_back=back, note="spindle bearing noise")
    # The whole board comes back out of band: the row, the marked bar, the panel, a notice.
    assert '<main id="board-main"' in html and 'hx-swap-oob="true"' in html
    assert re.search(
        rf'class="row-label status-down[^"]*"[^>]*data-resource-id="{plant.mill}"', html
    )
    assert "has-error" in bar_of(html, plant.cut)
    assert "is down" not in bar_of(html, plant.weld)  # Weld is on another machine
    conflicts = panel(html)
    assert "Equipment out of service" in conflicts and "equipment unavailable" in conflicts
    assert f'data-unschedule-task="{plant.cut}"' in conflicts
    assert f'data-focus-task="{plant.cut}"' in conflicts
    assert f'hx-post="/board/equipment/{plant.mill}/clear"' in conflicts
    assert f'data-unschedule-task="{plant.weld}"' not in conflicts
    assert "Mill 1 is down until" in html and "1 booked task affected" in html
    # Audited, with the note and the expected-back time.
    async with world.services.db.read() as session:
        audit = (
            await session.execute(
                select(t.AuditEntry).where(t.AuditEntry.action == "equipment.status_changed")
            )
        ).scalar_one()
    assert audit.entity_id == plant.mill and audit.after is not None
    assert audit.after["status"] == "down" and audit.after["note"] == "spindle bearing noise"
    assert str(audit.after["expected_back"]).startswith(back)
    # The next render and the live feed's refresh show the same.
    page = (await world.client.get(f"/board?{today_view()}")).text
    assert "has-error" in bar_of(page, plant.cut)
    assert f'data-unschedule-task="{plant.cut}"' in panel(page)
    assert audit.actor_id is not None  # Anna
    anna = Actor(user_id=audit.actor_id, role="scheduler")
    view: BoardView = view_from_query(dict(parse_qsl(today_view())), ZoneInfo("UTC"))
    live = await render_message(
        world.services, anna, view, {"entities": {"equipment": [plant.mill]}, "revision": 9}
    )
    assert f'data-unschedule-task="{plant.cut}"' in panel(live)


async def test_a_manager_sets_maintenance_but_is_not_offered_the_moves(world: BoardWorld) -> None:
    headers = await headers_of(world, "maria")
    response = await world.client.post(
        f"/board/equipment/{world.plant.mill}/status?{today_view()}",
        data={"status": "maintenance", "expected_back": ""},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert await status_of(world, world.plant.mill) == "maintenance"
    assert "Mill 1 is in maintenance: 1 booked task affected" in response.text
    conflicts = panel(response.text)
    assert f'data-focus-task="{world.plant.cut}"' in conflicts
    assert "data-unschedule-task" not in conflicts and "/clear" not in conflicts


YESTERDAY = clock.now() - timedelta(days=1)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"status": "broken"}, "status must be one of"),
        ({"status": "down", "expected_back": f"{YESTERDAY:%Y-%m-%dT%H:%M}"}, "in the future"),
        ({"status": "down", "expected_back": "tomorrow"}, "must be a date and time"),
        ({"status": "down", "note": "x" * 501}, "longer than 500"),
    ],
)
async def test_a_bad_status_form_is_refused_with_a_notice_and_changes_nothing(
    world: BoardWorld, fields: dict[str, str], words: str
) -> None:
    headers = await headers_of(world, "anna")
    response = await world.client.post(
        f"/board/equipment/{world.plant.mill}/status", data=fields, headers=headers
    )
    assert response.status_code == 422, response.text
    assert 'id="notice"' in response.text and words in response.text
    assert await status_of(world, world.plant.mill) == "available"


async def test_a_form_without_scripts_is_sent_back_to_the_board(world: BoardWorld) -> None:
    csrf = (await headers_of(world, "anna"))["X-CSRF-Token"]
    response = await world.client.post(
        f"/board/equipment/{world.plant.mill}/status?{today_view()}",
        data={"status": "down", "csrf_token": csrf},
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/board?start=")
    assert await status_of(world, world.plant.mill) == "down"


async def test_back_to_tray_takes_the_version_the_board_shows(world: BoardWorld) -> None:
    plant = world.plant
    headers = await headers_of(world, "anna")
    html = await set_down(world, headers)
    seen = version_on(html, plant.cut)
    url = f"/board/tasks/{plant.cut}/unschedule?{today_view()}"
    stale = await world.client.post(url, data={"version": str(seen - 1)}, headers=headers)
    assert stale.status_code == 412
    assert "changed this task while you were editing it" in stale.text
    moved = await world.client.post(url, data={"version": str(seen)}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert f'id="tray-task-{plant.cut}"' in moved.text
    assert f'<i id="bar-{plant.cut}" data-gone' in moved.text
    # The out-of-service group comes whole with every change, here emptied.
    assert 'id="out-of-service"' in moved.text
    assert "Equipment out of service" not in moved.text
    task = await tasks.get_task(services=world.services, actor=SYSTEM, task_id=plant.cut)
    assert task["assignment"] is None


async def test_move_all_off_the_machine_is_queued_for_schedulers_only(world: BoardWorld) -> None:
    url = f"/board/equipment/{world.plant.mill}/clear"
    async with world.another_browser() as maria:
        csrf = await log_in(maria, "maria")
        refused = await maria.post(url, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
        assert refused.status_code == 403
    headers = await headers_of(world, "anna")
    assert (await world.client.post(url, headers={"HX-Request": "true"})).status_code == 403
    response = await world.client.post(url, headers=headers)
    assert response.status_code == 200, response.text
    assert "Moving the open tasks off this machine" in response.text
