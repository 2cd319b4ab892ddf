"""The board's conflicts panel a page at a time: the first page with the page, the
rest by "Show more" (GET /board/conflicts), every conflict's mark with the page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pytest
from board_plant import BoardWorld, board_world, log_in


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path, board_conflicts_page=1) as world:
        yield world


@pytest.fixture
async def anna(world: BoardWorld) -> dict[str, str]:
    csrf = await log_in(world.client, "anna")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


async def three_conflicts(world: BoardWorld, anna: dict[str, str]) -> None:
    """Weld before Cut ends (a dependency violation), and Drill onto Cut's machine and
    operator at the same hour (both double-booked)."""
    plant = world.plant
    moves = (
        (plant.weld, {"starts_at": plant.form(8, 30), "ends_at": plant.form(10)}),
        (
            plant.drill,
            {
                "operator_id": str(plant.olga),
                "equipment_id": str(plant.mill),
                "starts_at": plant.form(8),
                "ends_at": plant.form(8, 45),
            },
        ),
    )
    for task_id, fields in moves:
        answer = await world.client.post(
            f"/board/tasks/{task_id}/place?{plant.day_view}",
            data={"version": "1", **fields},
            headers=anna,
        )
        assert answer.status_code == 200, answer.text


def orders(html: str) -> list[str]:
    return [
        unescape(o) for o in re.findall(r'<li class="conflict[^"]*"[^>]*data-order="([^"]*)"', html)
    ]


def more_of(html: str) -> tuple[str, bool]:
    found = re.search(r'<p id="conflicts-more"[^>]*data-through="([^"]*)"[^>]*>', html)
    assert found is not None, "no Show more"
    return unescape(found.group(1)), " hidden" in found.group(0)


async def test_the_page_lists_a_first_page_and_marks_every_conflict(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    await three_conflicts(world, anna)
    page = (await world.client.get(f"/board?{world.plant.day_view}")).text
    found = re.search(r'<script type="application/json" id="conflict-marks">(.*?)</script>', page)
    assert found is not None
    marks = json.loads(found.group(1))
    every = [order for order, _severity, _job in marks]
    assert len(every) >= 3 and every == sorted(every)
    panel = page[page.index('id="conflicts"') :]
    # One item shown (the first in order), the rest counted in "Show more".
    assert orders(panel) == every[:1]
    through, hidden = more_of(panel)
    assert through == every[0] and not hidden
    assert "Show 1 more" in panel and f"of {len(every) - 1} not shown" in panel
    # The bars of every conflict are marked, shown in the panel or not.
    for task_id in (world.plant.cut, world.plant.weld, world.plant.drill):
        bar = re.search(rf'<div id="bar-{task_id}"[^>]*>', page)
        assert bar is not None and "has-error" in bar.group(0)


async def test_show_more_pages_through_the_rest_in_order(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    await three_conflicts(world, anna)
    page = (await world.client.get(f"/board?{world.plant.day_view}")).text
    found = re.search(r'id="conflict-marks">(.*?)</script>', page)
    assert found is not None
    every = [order for order, _severity, _job in json.loads(found.group(1))]
    seen = orders(page[page.index('id="conflicts"') :])
    while True:
        answer = await world.client.get(
            f"/board/conflicts?{world.plant.day_view}&{urlencode({'after': seen[-1]})}"
        )
        assert answer.status_code == 200
        assert int(answer.headers["X-Takt-Revision"]) >= 1
        seen += orders(answer.text)
        through, hidden = more_of(answer.text)
        assert 'hx-swap-oob="true"' in answer.text
        if hidden:
            assert through == ""
            break
        assert through == seen[-1]
    assert seen == every


async def test_show_more_goes_on_after_the_last_item_shown_when_the_list_changed_before_it(
    world: BoardWorld, anna: dict[str, str]
) -> None:
    """The race an offset lost: between two pages a change takes away an item already
    shown; the next page still starts right after the last item shown."""
    await three_conflicts(world, anna)
    page = (await world.client.get(f"/board?{world.plant.day_view}")).text
    found = re.search(r'id="conflict-marks">(.*?)</script>', page)
    assert found is not None
    before = [order for order, _severity, _job in json.loads(found.group(1))]
    shown = orders(page[page.index('id="conflicts"') :])
    assert shown == before[:1] and shown[0].startswith("dependency")
    # Weld after Cut again: the dependency item (the one shown) is gone from the list.
    weld = await world.client.post(
        f"/board/tasks/{world.plant.weld}/place?{world.plant.day_view}",
        data={
            "version": "2",
            "starts_at": world.plant.form(9),
            "ends_at": world.plant.form(10, 30),
        },
        headers=anna,
    )
    assert weld.status_code == 200, weld.text
    fresh = (await world.client.get(f"/board?{world.plant.day_view}")).text
    assert shown[0] not in unescape(fresh) and before[1] in unescape(fresh)
    answer = await world.client.get(
        f"/board/conflicts?{world.plant.day_view}&{urlencode({'after': shown[-1]})}"
    )
    assert answer.status_code == 200
    assert orders(answer.text) == before[1:2]  # by offset (1) it was before[2]: one skipped


@pytest.mark.parametrize(
    "query", ["", "after=" + "x" * 4001, "after=%00", "after=a%0Ab", "offset=1"]
)
async def test_a_bad_cursor_is_refused(world: BoardWorld, anna: dict[str, str], query: str) -> None:
    answer = await world.client.get(f"/board/conflicts?{world.plant.day_view}&{query}")
    assert answer.status_code == 422
    assert answer.json()["error"]["details"] == {"field": "after"}


async def test_signed_out_gets_no_conflicts(world: BoardWorld) -> None:
    answer = await world.client.get(
        f"/board/conflicts?{world.plant.day_view}&after=", follow_redirects=False
    )
    assert answer.status_code in (302, 303, 401)
