"""POST /board/repairs, server side: the three causes the board offers, and bad input.

The world: the board plant (tests/web/board_plant.py). An absence: Cut booked
for Olga (the only miller) an hour from now, Olga off from 30 minutes to 3
hours from now. A task running late: Cut started 2 hours ago and booked to end
an hour ago, Weld (after Cut) booked from 15 minutes from now.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from board_plant import BoardWorld, board_world, book, log_in
from sqlalchemy import func, select

from app import clock
from app.db import tables as t
from app.services import drafts, execution, resources, tasks
from app.services.context import SYSTEM, Actor
from app.web.board_render import render_changes, view_from_query


@pytest.fixture
async def world(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(sqlite_database_url, tmp_path / "var") as world:
        yield world


def _minute() -> datetime:
    return clock.now().replace(second=0, microsecond=0)


def view() -> str:
    start = (clock.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    return f"start={quote(start.isoformat())}&zoom=day&rows=equipment"


async def headers_of(world: BoardWorld, username: str) -> dict[str, str]:
    csrf = await log_in(world.client, username, "/my" if username == "olga" else "/board")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


async def olga_away(world: BoardWorld) -> datetime:
    """Olga off from 30 minutes to 3 hours from now, over Cut (booked 1 h from now)."""
    plant = world.plant
    await book(world, plant.cut, plant.olga, plant.mill, 1)
    olga = await resources.get_operator(
        services=world.services, actor=SYSTEM, operator_id=plant.olga
    )
    back = _minute() + timedelta(hours=3)
    away = {"start": _minute() + timedelta(minutes=30), "end": back, "kind": "time_off"}
    await resources.update_operator(
        services=world.services,
        actor=SYSTEM,
        operator_id=plant.olga,
        expected_version=olga["version"],
        changes={"exceptions": [away]},
    )
    return back


async def cut_late(world: BoardWorld) -> None:
    plant, services = world.plant, world.services
    began = _minute() - timedelta(hours=2)
    soon = _minute() + timedelta(minutes=15)
    placed = [
        (plant.cut, plant.olga, plant.mill, began, timedelta(hours=1)),
        (plant.weld, plant.omar, plant.welder, soon, timedelta(hours=1, minutes=30)),
    ]
    for task_id, operator, machine, start, length in placed:
        await tasks.assign_task(
            services=services,
            actor=SYSTEM,
            task_id=task_id,
            expected_version=1,
            placement=tasks.Placement(operator, machine, start, start + length),
        )
    await execution.run_task_action(
        services=services, actor=SYSTEM, task_id=plant.cut, action="start", at=began
    )


async def drafted(world: BoardWorld, html: str) -> dict[int, datetime]:
    """The repair draft the panel shows: each task it moves and its new start."""
    found = re.search(r'data-draft-id="(\d+)"', html)
    assert found is not None, html[:500]
    draft_id = int(found.group(1))
    async with world.services.db.read() as session:
        rows = await session.execute(
            select(t.Assignment.task_id, t.Assignment.start).where(
                t.Assignment.schedule_id == draft_id
            )
        )
        starts = {task_id: clock.as_utc(start) for task_id, start in rows}
    diff = await drafts.draft_diff(services=world.services, actor=SYSTEM, draft_id=draft_id)
    assert diff.changes == len(starts)
    return starts


async def drafts_stored(world: BoardWorld) -> int:
    async with world.services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(t.Draft)) or 0)


async def test_an_absence_repair_moves_the_task_out_of_the_time_off(world: BoardWorld) -> None:
    back = await olga_away(world)
    response = await world.client.post(
        f"/board/repairs?{view()}",
        data={"operator_id": str(world.plant.olga), "task_id": str(world.plant.cut)},
        headers=await headers_of(world, "anna"),
    )
    assert response.status_code == 200, response.text
    moved = await drafted(world, response.text)
    # Olga is the only miller: Cut waits until she is back (the whole time off, not
    # only the hour it was booked in).
    assert world.plant.cut in moved and moved[world.plant.cut] >= back


@pytest.mark.parametrize("minutes", [None, 120])
async def test_a_late_repair_moves_what_follows_after_the_minutes_it_still_needs(
    world: BoardWorld, minutes: int | None
) -> None:
    await cut_late(world)
    form = {"late_task_id": str(world.plant.cut)}
    if minutes is not None:
        form["minutes"] = str(minutes)
    asked = _minute()
    response = await world.client.post(
        f"/board/repairs?{view()}", data=form, headers=await headers_of(world, "anna")
    )
    assert response.status_code == 200, response.text
    moved = await drafted(world, response.text)
    needs = timedelta(minutes=minutes or 30)
    # Cut's own slot now ends when it is expected to; Weld, after it, moves behind it.
    assert moved.keys() == {world.plant.cut, world.plant.weld}
    assert moved[world.plant.weld] >= asked + needs


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"equipment_id": "mill"},
        {"operator_id": "1"},
        {"late_task_id": "-3"},
        {"late_task_id": "{cut}", "minutes": "0"},
        {"late_task_id": "{cut}", "minutes": "99999"},
        {"operator_id": "{omar}", "task_id": "{cut}"},
        {"late_task_id": "{drill}"},
        {"equipment_id": "987654"},
    ],
)
async def test_bad_repair_requests_are_4xx_and_store_no_draft(
    world: BoardWorld, form: dict[str, str]
) -> None:
    await cut_late(world)
    ids = {"cut": world.plant.cut, "omar": world.plant.omar, "drill": world.plant.drill}
    filled = {key: value.format(**ids) for key, value in form.items()}
    response = await world.client.post(
        f"/board/repairs?{view()}", data=filled, headers=await headers_of(world, "anna")
    )
    assert 400 <= response.status_code < 500, response.text
    assert await drafts_stored(world) == 0


async def test_an_operator_may_not_ask_for_a_repair(world: BoardWorld) -> None:
    await cut_late(world)
    response = await world.client.post(
        f"/board/repairs?{view()}",
        data={"late_task_id": str(world.plant.cut)},
        headers=await headers_of(world, "olga"),
    )
    assert response.status_code == 403
    assert await drafts_stored(world) == 0


async def test_the_running_late_list_is_on_the_page_and_in_the_live_feeds_fragments(
    world: BoardWorld,
) -> None:
    await cut_late(world)
    anna = await headers_of(world, "anna")
    page = await world.client.get(
        f"/board?{view()}", headers={"X-CSRF-Token": anna["X-CSRF-Token"]}
    )
    late = f'class="running-late-task offers-repair" data-task-id="{world.plant.cut}"'
    assert late in page.text
    # What every open board gets when something else changes (here Weld): the panel,
    # re-rendered, still lists Cut running late.
    start = (clock.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    board = view_from_query({"start": start.isoformat(), "zoom": "day"}, zone=ZoneInfo("UTC"))
    scheduler = Actor(user_id=None, role="scheduler")
    html = await render_changes(world.services, scheduler, board, {world.plant.weld}, 9)
    assert late in html
    # A board of another job does not list it (Cut is no bar of that board).
    query = {"start": start.isoformat(), "zoom": "day", "job": str(world.plant.frame)}
    frame_only = view_from_query(query, zone=ZoneInfo("UTC"))
    html = await render_changes(world.services, scheduler, frame_only, {world.plant.weld}, 9)
    assert 'id="running-late"' in html and late not in html
    # Done, it is not late any more.
    await execution.run_task_action(
        services=world.services, actor=SYSTEM, task_id=world.plant.cut, action="complete"
    )
    html = await render_changes(world.services, scheduler, board, {world.plant.cut}, 10)
    assert 'id="running-late"' in html and "running-late-task" not in html
