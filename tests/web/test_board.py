"""The board, server side: what a view shows, and the edits made from it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from board_plant import BoardWorld, board_world, log_in
from clocks import iso_z
from sqlalchemy import select

from app.db import tables as t
from app.services.board_view import BoardView
from app.services.context import Actor
from app.web.board_render import render_changes, render_message, view_from_query


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path) as world:
        yield world


@pytest.fixture
async def anna(world: BoardWorld) -> dict[str, str]:
    """Anna logged in: the headers board.js sends with every edit."""
    csrf = await log_in(world.client, "anna")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def bar_of(html: str, task_id: int) -> str:
    found = re.search(rf'<div id="bar-{task_id}"[^>]*>', html)
    assert found is not None, f"no bar for task {task_id}"
    return found.group(0)


def attr(tag: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', tag)
    assert found is not None, f"no {name} in {tag}"
    return found.group(1)


async def assignment_of(world: BoardWorld, task_id: int) -> t.Assignment | None:
    async with world.services.db.read() as session:
        query = select(t.Assignment).where(t.Assignment.task_id == task_id)
        return (await session.execute(query)).scalar_one_or_none()


async def test_bars_sit_in_their_rows_at_their_time(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    page = (await world.client.get(f"/board?{world.plant.day_view}")).text
    cut, weld = bar_of(page, world.plant.cut), bar_of(page, world.plant.weld)
    # Rows by equipment, by type then name: Mill 1, Mill 2, Weld cell 1.
    assert "--row:0;--x:33.3333%;--w:4.1667%" in cut  # 08:00-09:00 of a 24 h window
    assert "--row:2;" in weld
    assert attr(cut, "data-version") == "1"
    assert 'tabindex="0"' in cut and 'role="button"' in cut and "aria-label=" in cut
    by_operator = await world.client.get(
        f"/board?{world.plant.day_view.replace('equipment', 'operator')}"
    )
    assert "--row:0;" in bar_of(by_operator.text, world.plant.cut)  # Olga before Omar
    assert "--row:1;" in bar_of(by_operator.text, world.plant.weld)


async def test_only_the_window_is_rendered(world: BoardWorld, anna: dict[str, str]) -> None:
    tomorrow = quote(world.plant.at(0, days=1).isoformat())
    page = (await world.client.get(f"/board?start={tomorrow}&zoom=day")).text
    assert 'id="bar-' not in page
    hour = quote(world.plant.at(8, 30).isoformat())
    page = (await world.client.get(f"/board?start={hour}&zoom=hour")).text
    assert "clipped-start" in bar_of(page, world.plant.cut)
    assert f'id="bar-{world.plant.weld}"' in page


async def test_filters_narrow_rows_and_bars(world: BoardWorld, anna: dict[str, str]) -> None:
    page = (await world.client.get(f"/board?{world.plant.day_view}&type=welding_cell")).text
    assert f'id="bar-{world.plant.cut}"' not in page
    assert "--row:0;" in bar_of(page, world.plant.weld)
    page = (await world.client.get(f"/board?{world.plant.day_view}&job={world.plant.frame}")).text
    assert 'id="bar-' not in page
    assert f'id="tray-task-{world.plant.drill}"' in page


async def test_the_tray_holds_the_unscheduled_tasks(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    page = (await world.client.get(f"/board?{world.plant.day_view}")).text
    assert f'id="tray-task-{world.plant.drill}"' in page
    assert f'id="tray-task-{world.plant.cut}"' not in page
    assert '<span id="tray-total" class="muted">1</span>' in page
    more = await world.client.get("/board/tray?offset=1")
    assert more.status_code == 200 and "tray-task" not in more.text


async def test_conflicts_are_listed_and_marked(world: BoardWorld, anna: dict[str, str]) -> None:
    # Weld before Cut ends: a dependency violation on both.
    response = await world.client.post(
        f"/board/tasks/{world.plant.weld}/place?{world.plant.day_view}",
        data={
            "version": "1",
            "starts_at": world.plant.form(8, 30),
            "ends_at": world.plant.form(10),
        },
        headers=anna,
    )
    assert response.status_code == 200, response.text
    assert "1 conflict" in response.text
    page = (await world.client.get(f"/board?{world.plant.day_view}")).text
    assert "has-error" in bar_of(page, world.plant.weld)
    panel = page[page.index('id="conflicts"') :]
    assert "dependency violation" in panel
    assert f'data-task-ids="{world.plant.weld} {world.plant.cut}"' in panel or (
        f'data-task-ids="{world.plant.cut} {world.plant.weld}"' in panel
    )
    assert "<strong>1</strong> conflict" in page


async def test_placing_moves_the_bar_and_answers_with_fragments(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    response = await world.client.post(
        f"/board/tasks/{plant.cut}/place?{world.plant.day_view}",
        data={
            "version": "1",
            "equipment_id": str(plant.mill2),
            "starts_at": world.plant.at(12).isoformat(),
            "ends_at": world.plant.at(13).isoformat(),
        },
        headers=anna,
    )
    assert response.status_code == 200, response.text
    bar = bar_of(response.text, plant.cut)
    assert "--row:1;--x:50.0%" in bar and attr(bar, "data-version") == "2"
    assert 'hx-swap-oob="beforeend:#bars"' in response.text
    # Of the conflicts panel, only the moved task's items (board.js replaces them).
    assert 'hx-swap-oob="beforeend:#conflict-list"' in response.text
    assert f'data-conflicts-of="{plant.cut}"' in response.text
    assert 'id="conflicts" class="panel conflicts"' not in response.text
    # The load strips of the row it left and the row it went to, and of no other.
    strips = set(re.findall(r'id="row-load-(\d+)"', response.text))
    assert strips == {str(plant.mill), str(plant.mill2)}
    assert 'id="counters"' in response.text
    assert 'id="board-revision"' not in response.text  # only the live feed moves it
    placed = await assignment_of(world, plant.cut)
    assert placed is not None
    assert (placed.equipment_id, placed.operator_id) == (plant.mill2, plant.olga)  # Olga stays


async def test_a_stale_drop_is_refused_and_names_who_changed_it(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    async with world.another_browser() as bens_browser:
        ben = {"X-CSRF-Token": await log_in(bens_browser, "ben"), "HX-Request": "true"}
        first = await bens_browser.post(
            f"/board/tasks/{plant.cut}/place?{world.plant.day_view}",
            data={
                "version": "1",
                "starts_at": world.plant.form(11),
                "ends_at": world.plant.form(12),
            },
            headers=ben,
        )
    assert first.status_code == 200
    stale = await world.client.post(
        f"/board/tasks/{plant.cut}/place?{world.plant.day_view}",
        data={"version": "1", "starts_at": world.plant.form(14), "ends_at": world.plant.form(15)},
        headers=anna,
    )
    assert stale.status_code == 412
    assert "Ben Hoffmann changed this task" in stale.text
    assert stale.headers["HX-Reswap"] == "none"
    fresh = bar_of(stale.text, plant.cut)  # the bar as Ben left it: 11:00, version 2
    assert attr(fresh, "data-version") == "2" and "11:00:00" in attr(fresh, "data-start")
    placed = await assignment_of(world, plant.cut)
    assert placed is not None and placed.start.hour == 11


async def test_bad_edits_get_a_4xx_and_write_nothing(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    url = f"/board/tasks/{world.plant.cut}/place?{world.plant.day_view}"
    slot = {"starts_at": world.plant.form(12), "ends_at": world.plant.form(13)}
    missing_version = await world.client.post(url, data=slot, headers=anna)
    assert missing_version.status_code == 428
    bad_time = await world.client.post(
        url, data={"version": "1", "starts_at": "noon", "ends_at": "x"}, headers=anna
    )
    assert bad_time.status_code == 422 and "starts_at" in bad_time.text
    backwards = await world.client.post(
        url,
        data={"version": "1", "starts_at": world.plant.form(13), "ends_at": world.plant.form(12)},
        headers=anna,
    )
    assert backwards.status_code == 422
    bad_id = await world.client.post(
        url, data={"version": "1", "operator_id": "-3", **slot}, headers=anna
    )
    assert bad_id.status_code == 422
    unknown = await world.client.post(
        url, data={"version": "1", "operator_id": "999", "equipment_id": "1", **slot}, headers=anna
    )
    assert unknown.status_code == 422
    gone = await world.client.post(
        f"/board/tasks/999/place?{world.plant.day_view}",
        data={"version": "1", **slot},
        headers=anna,
    )
    assert gone.status_code == 404
    placed = await assignment_of(world, world.plant.cut)
    assert placed is not None and placed.start.hour == 8


async def test_a_tray_drop_picks_the_other_resource(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    response = await world.client.post(
        f"/board/tasks/{plant.drill}/place?{world.plant.day_view}",
        data={
            "version": "1",
            "equipment_id": str(plant.mill2),
            "starts_at": iso_z(world.plant.at(8)),
            "ends_at": iso_z(world.plant.at(8, 45)),
        },
        headers=anna,
    )
    assert response.status_code == 200, response.text
    assert f'<i id="tray-task-{plant.drill}" data-gone' in response.text
    placed = await assignment_of(world, plant.drill)
    assert placed is not None and (placed.equipment_id, placed.operator_id) == (
        plant.mill2,
        plant.olga,
    )


async def test_unscheduling_puts_the_task_back_in_the_tray(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    response = await world.client.post(
        f"/board/tasks/{world.plant.weld}/unschedule?{world.plant.day_view}",
        data={"version": "1"},
        headers=anna,
    )
    assert response.status_code == 200
    assert f'<i id="bar-{world.plant.weld}" data-gone' in response.text
    assert f'id="tray-task-{world.plant.weld}"' in response.text
    assert await assignment_of(world, world.plant.weld) is None


async def test_preview_says_what_a_placement_would_conflict_with(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    plant = world.plant
    fine = await world.client.post(
        "/board/preview",
        data={
            "task_id": str(plant.cut),
            "equipment_id": str(plant.mill2),
            "operator_id": str(plant.olga),
            "starts_at": iso_z(world.plant.at(7)),
            "ends_at": iso_z(world.plant.at(8)),
        },
        headers=anna,
    )
    assert fine.status_code == 200 and fine.json()["level"] == "ok"
    welder = await world.client.post(
        "/board/preview",
        data={
            "task_id": str(plant.cut),
            "equipment_id": str(plant.welder),
            "starts_at": iso_z(world.plant.at(7)),
            "ends_at": iso_z(world.plant.at(8)),
        },
        headers=anna,
    )
    body = welder.json()
    assert body["level"] == "error" and body["operator_id"] == plant.olga
    assert "capability_mismatch" in {c["type"] for c in body["conflicts"]}
    bad = await world.client.post("/board/preview", data={"task_id": "x"}, headers=anna)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    placed = await assignment_of(world, plant.cut)
    assert placed is not None and placed.equipment_id == plant.mill


async def test_detail_and_critical_path(world: BoardWorld, anna: dict[str, str]) -> None:
    detail = await world.client.get(f"/board/tasks/{world.plant.cut}?{world.plant.day_view}")
    assert detail.status_code == 200
    assert 'name="version" value="1"' in detail.text
    assert f'value="{world.plant.form(8)}"' in detail.text  # plant time (UTC here)
    critical = await world.client.get(f"/board/jobs/{world.plant.job}/critical")
    assert critical.json()["critical_task_ids"] == [world.plant.cut, world.plant.weld]
    assert (await world.client.get("/board/jobs/999/critical")).status_code == 404


async def test_render_changes_for_the_live_feed(world: BoardWorld) -> None:
    plant = world.plant
    actor = Actor(user_id=1, role="scheduler")
    today = view_from_query({"start": plant.day.isoformat(), "zoom": "day"}, zone=ZoneInfo("UTC"))
    html = await render_changes(world.services, actor, today, {plant.cut}, 7)
    assert "--row:0;" in bar_of(html, plant.cut)
    assert '<meta id="board-revision" name="board-revision" data-revision="7"' in html
    tomorrow = BoardView(start=plant.at(0, days=1))
    html = await render_changes(world.services, actor, tomorrow, {plant.cut}, 8)
    assert f'<i id="bar-{plant.cut}" data-gone' in html
    manager = Actor(user_id=4, role="manager")
    assert "movable" not in await render_changes(world.services, manager, today, {plant.cut}, 9)
    refresh = await render_message(
        world.services, actor, today, {"kind": "equipment.updated", "revision": 10,
                                       "entities": {"equipment": [plant.mill]}}
    )  # fmt: skip
    # The whole board is swapped: the main area itself and both side panels.
    main_tag = refresh[refresh.index('<main id="board-main"') :].split(">", 1)[0]
    assert 'hx-swap-oob="true"' in main_tag
    assert 'id="conflicts"' in refresh and 'id="tray"' in refresh
    quiet = await render_message(
        world.services, actor, today, {"kind": "user.created", "revision": 11,
                                       "entities": {"user": [9]}}
    )  # fmt: skip
    assert 'id="bar-' not in quiet and 'data-revision="11"' in quiet


async def test_a_placement_committed_just_before_the_database_went_away_says_it_was_saved(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    """The redraw after the commit fails on the database; the answer is still "placed"."""
    plant, db, hub = world.plant, world.services.db, world.services.hub
    committed = False
    read, snapshot, publish = db.read, db.snapshot, hub.publish

    async def publish_then_fail(channel: str, message: dict[str, object]) -> None:
        nonlocal committed
        committed = True
        await publish(channel, message)

    def failing_after_commit(open_session: Any) -> Any:
        @asynccontextmanager
        async def failing() -> AsyncIterator[object]:
            if committed:
                raise ConnectionRefusedError(111, "Connection refused")
            async with open_session() as session:
                yield session

        return failing

    hub.publish = publish_then_fail  # type: ignore[method-assign]
    db.read = failing_after_commit(read)  # type: ignore[method-assign]
    db.snapshot = failing_after_commit(snapshot)  # type: ignore[method-assign]
    try:
        response = await world.client.post(
            f"/board/tasks/{plant.cut}/place?{plant.day_view}",
            data={
                "version": "1",
                "equipment_id": str(plant.mill2),
                "starts_at": plant.at(12).isoformat(),
                "ends_at": plant.at(13).isoformat(),
            },
            headers=anna,
        )
    finally:
        hub.publish, db.read, db.snapshot = publish, read, snapshot  # type: ignore[method-assign]
    assert committed
    assert response.status_code == 200, response.text
    assert "placed" in response.text and "catch up" in response.text
    placed = await assignment_of(world, plant.cut)
    assert placed is not None and placed.equipment_id == plant.mill2
