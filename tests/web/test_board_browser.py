"""The board in a real headless Chromium against a real server (uvicorn).

Drags are real mouse moves (pointer events); what a drop did is read back
through the API, as another client would see it.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from board_plant import PASSWORD, BoardPlant, build_board_plant
from browser_login import submit_login
from clocks import BERLIN, PlantTime, iso_z
from playwright.async_api import Browser, Page
from servers import load_demo
from sqlalchemy import update

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import Services
from app.settings import Settings

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1400, "height": 800}
SPAN = timedelta(days=1)  # the day zoom of the plant's day view


async def planted(database_url: str, var_dir: Path) -> BoardPlant:
    settings = Settings(database_url=database_url, redis_url=None, var_dir=var_dir)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        return await build_board_plant(services)
    finally:
        await services.db.dispose()


@pytest.fixture
async def board(
    sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> tuple[str, BoardPlant]:
    plant = await planted(sqlite_database_url, tmp_path / "var")
    return live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var"), plant


async def open_board(
    browser: Browser, base_url: str, plant: BoardPlant, user: str = "anna"
) -> Page:
    page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
    page.set_default_timeout(10_000)
    await page.goto(f"{base_url}/board?{plant.day_view}")  # not logged in: the login form
    await submit_login(page, user, PASSWORD)
    await page.wait_for_selector("#bars .bar")
    # The bars can be painted before the deferred board scripts have run (board.js,
    # then the tools, the links...): "complete" comes after every one of them.
    await page.wait_for_function("document.readyState === 'complete' && window.taktTools")
    return page


async def api_task(base_url: str, task_id: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        token = await client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        found: dict[str, Any] = (
            await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
        ).json()
        return found


async def lane_point(
    page: Page, plant: BoardPlant, moment: datetime, row: int
) -> tuple[float, float]:
    """Where on screen `moment` is in row `row` of the plant's day view."""
    box = await page.locator("#bars").bounding_box()
    rows = await page.locator("#rows .row-label").count()
    assert box is not None
    x = box["x"] + (moment - plant.day) / SPAN * box["width"]
    return x, box["y"] + (row + 0.5) * box["height"] / rows


async def grab(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + 6, box["y"] + box["height"] / 2)
    await page.mouse.down()


async def test_drag_a_bar_to_another_time_and_row(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await grab(page, f"#bar-{plant.cut}")
    # Over the welding cell (row 2) first: a mill job there is a conflict, shown before the drop.
    x, y = await lane_point(page, plant, plant.at(12), 2)
    await page.mouse.move(x, y, steps=8)
    await page.wait_for_selector(".bar.ghost.preview-error")
    assert "capability" in (await page.locator(".ghost-tip").inner_text()).lower()
    # Then onto Mill 2 (row 1) an hour earlier, free and still before Weld: green, dropped.
    x, y = await lane_point(page, plant, plant.at(7), 1)
    await page.mouse.move(x + 2, y, steps=8)
    await page.wait_for_selector(".bar.ghost.preview-ok")
    await page.mouse.up()
    await page.wait_for_selector("#notice.notice-ok")
    task = await api_task(base_url, plant.cut)
    assert task["assignment"]["equipment_id"] == plant.mill2
    assert task["assignment"]["operator_id"] == plant.olga
    assert task["assignment"]["start"].startswith(plant.form(7))
    bar = page.locator(f"#bar-{plant.cut}")
    assert await bar.get_attribute("data-row") == "1"
    await page.wait_for_function("() => !document.querySelector('.bar.ghost')")


COUNT_PASSES_JS = """() => {
  const marks = window.taktConflicts.marks;
  window.markPasses = 0;
  window.taktConflicts.marks = function () {
    window.markPasses++;
    return marks.apply(this, arguments);
  };
}"""


async def test_a_drop_re_marks_the_bars_once_not_once_per_fragment(
    browser: Browser, board: Any
) -> None:
    """The answer and the live frame of a drop are many fragments (bars, panel, counters,
    load strips, tray...), and htmx fires an event for every fragment swapped so far
    after each one: the board re-marks its bars and lays out the touched rows once per
    swap, not per event (on the large plant, 120 passes over every bar were most of a
    week drag's time in the browser)."""
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.wait_for_function("() => window.taktLive && window.taktLive.transport")
    answers: list[str] = []

    async def keep(response: Any) -> None:
        if "/place" in response.url:
            answers.append(await response.text())

    page.on("response", keep)
    await page.evaluate(COUNT_PASSES_JS)
    await grab(page, f"#bar-{plant.cut}")
    x, y = await lane_point(page, plant, plant.at(7), 1)
    await page.mouse.move(x + 2, y, steps=8)
    await page.wait_for_selector(".bar.ghost.preview-ok")
    await page.evaluate("window.markPasses = 0")
    await page.mouse.up()
    await page.wait_for_selector("#notice.notice-ok")
    await page.wait_for_function("() => !document.querySelector('.bar.ghost')")
    await page.wait_for_timeout(1000)  # the live frame of the move, and htmx's settle
    assert answers and answers[0].count("hx-swap-oob") >= 8
    # The answer, its settle, the live frame and its settle: a pass each at most.
    assert 1 <= await page.evaluate("window.markPasses") <= 4
    bar = page.locator(f"#bar-{plant.cut}")
    assert await bar.get_attribute("data-row") == "1"
    assert "drag-source" not in (await bar.get_attribute("class") or "")


async def test_a_bar_under_the_now_line_takes_the_click(
    browser: Browser, sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> None:
    # A bar running now has the now line across it: the line is drawn over
    # the bar, and a click or a drag there is still the bar's (seen at 08:30,
    # when the board plant's 08:00 Cut was under it and could not be clicked).
    plant = await planted(sqlite_database_url, tmp_path / "var")
    now = clock.now().replace(second=0, microsecond=0)
    database = Database(sqlite_database_url)
    try:
        async with database.write() as session:
            await session.execute(
                update(t.Assignment)
                .where(t.Assignment.task_id == plant.cut)
                .values(start=now - timedelta(minutes=30), end=now + timedelta(minutes=30))
            )
    finally:
        await database.dispose()
    base_url = live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var")
    page = await open_board(browser, base_url, plant)
    line = await page.locator(".now-line").bounding_box()
    bar = await page.locator(f"#bar-{plant.cut}").bounding_box()
    assert line is not None and bar is not None
    assert bar["x"] < line["x"] < bar["x"] + bar["width"]
    await page.mouse.click(line["x"] + line["width"] / 2, bar["y"] + bar["height"] / 2)
    await page.wait_for_selector("#detail form.edit-form")


async def test_a_stale_drop_shows_who_changed_it_and_snaps_back(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await grab(page, f"#bar-{plant.cut}")
    x, y = await lane_point(page, plant, plant.at(14), 0)
    await page.mouse.move(x, y, steps=4)
    # Meanwhile Ben moves the same task through the API.
    async with httpx.AsyncClient(base_url=base_url) as client:
        token = await client.post(
            "/api/v1/auth/token", json={"username": "ben", "password": PASSWORD}
        )
        moved = await client.put(
            f"/api/v1/tasks/{plant.cut}/assignment",
            json={
                "operator_id": plant.olga,
                "equipment_id": plant.mill,
                "start": iso_z(plant.at(10)),
                "end": iso_z(plant.at(11)),
            },
            headers={"Authorization": f"Bearer {token.json()['access_token']}", "If-Match": '"1"'},
        )
        assert moved.status_code == 200, moved.text
    await page.mouse.move(x + 3, y, steps=2)
    await page.mouse.up()
    notice = page.locator("#notice.notice-error")
    await notice.wait_for()
    assert "Ben Hoffmann changed this task" in await notice.inner_text()
    bar = page.locator(f"#bar-{plant.cut}")
    assert (await bar.get_attribute("data-start") or "").startswith(plant.form(10))
    assert (await api_task(base_url, plant.cut))["assignment"]["start"].startswith(plant.form(10))


async def test_arrow_keys_move_the_focused_bar(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.focus(f"#bar-{plant.cut}")
    for _ in range(4):  # four snaps of 15 minutes earlier
        await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("ArrowDown")  # Mill 1 -> Mill 2
    await page.wait_for_selector(".bar.ghost.preview-ok")
    assert "Enter to place" in await page.locator("#announce").inner_text()
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#notice.notice-ok")
    task = await api_task(base_url, plant.cut)
    assert task["assignment"]["start"].startswith(plant.form(7))
    assert task["assignment"]["equipment_id"] == plant.mill2
    focused = await page.evaluate("document.activeElement.id")
    assert focused == f"bar-{plant.cut}"
    # Escape cancels a move: nothing is sent.
    await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("Escape")
    await page.wait_for_function("() => !document.querySelector('.bar.ghost')")
    assert (await api_task(base_url, plant.cut))["version"] == task["version"]


async def test_a_task_dragged_from_the_tray_is_scheduled(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await grab(page, f"#tray-task-{plant.drill}")
    x, y = await lane_point(page, plant, plant.at(13), 1)
    await page.mouse.move(x, y, steps=12)
    await page.wait_for_selector(".bar.ghost.preview-ok")
    await page.mouse.up()
    await page.wait_for_selector(f"#bar-{plant.drill}")
    assert await page.locator(f"#tray-task-{plant.drill}").count() == 0
    task = await api_task(base_url, plant.drill)
    assert task["assignment"]["equipment_id"] == plant.mill2
    assert task["assignment"]["operator_id"] == plant.olga  # picked: the qualified operator
    assert task["assignment"]["start"].startswith(plant.form(13))


async def test_the_demo_board(
    browser: Browser,
    sqlite_database_url: str,
    live_server: Any,
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    """The small demo plant as a scheduler sees it (docs/screenshots/board*.png):
    the next 24 hours, where the demo puts some of its disturbances."""
    load_demo(sqlite_database_url, tmp_path, "small")
    base_url = live_server(database_url=sqlite_database_url)
    page = await browser.new_page(viewport={"width": 1600, "height": 900})
    hour = PlantTime.current().hour() - timedelta(hours=1)
    board = "/board?" + urlencode({"start": hour.isoformat(), "zoom": "day"})
    await page.goto(f"{base_url}/login?" + urlencode({"next": board}))
    await submit_login(page, "anna", "takt-demo")
    await page.wait_for_selector("#bars .bar")
    assert await page.locator("#conflicts .conflict").count() > 0
    assert await page.locator("#tray-list .tray-task").count() == 50
    await page.screenshot(path=str(screenshot_dir / "board.png"))
    first = page.locator("#bars .bar.has-error").first
    await first.click()
    await page.wait_for_selector("#detail form.edit-form")
    await page.wait_for_selector("#bars .bar.critical")
    await page.screenshot(path=str(screenshot_dir / "board-detail.png"))
    await page.click("text=Operators")
    await page.wait_for_selector('#board-main[data-rows="operator"]')
    await page.screenshot(path=str(screenshot_dir / "board-operators.png"))


@pytest.mark.skipif(
    os.environ.get("TAKT_UPDATE_SCREENSHOTS") != "1",
    reason="the large demo is for the screenshot only (TAKT_UPDATE_SCREENSHOTS=1)",
)
async def test_the_large_demo_board(
    browser: Browser,
    sqlite_database_url: str,
    live_server: Any,
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    load_demo(sqlite_database_url, tmp_path, "large")
    base_url = live_server(database_url=sqlite_database_url)
    page = await browser.new_page(viewport={"width": 1600, "height": 900})
    await page.goto(f"{base_url}/login?next=/board%3Fzoom%3Dshift")
    await submit_login(page, "anna", "takt-demo")
    await page.wait_for_selector("#bars .bar")
    await page.screenshot(path=str(screenshot_dir / "board-large.png"))
    # A week: rows shaded where machines are down, thin bars grouped, order references.
    await page.goto(f"{base_url}/board?zoom=week")
    await page.wait_for_selector("#bars .bar-group")
    await page.screenshot(path=str(screenshot_dir / "board-large-week.png"))
    # The week's conflicts a page at a time; the job filter suggests jobs as one types.
    assert await page.locator("#conflict-list li.conflict").count() <= 50
    await page.focus("#job-filter-input")
    await page.keyboard.type("SO-2")
    await page.wait_for_selector("#job-filter-results .job-hit")
    await page.screenshot(path=str(screenshot_dir / "board-job-filter.png"))
    # By operator: shifts and time off shaded on every row, each row's load at its foot.
    await page.goto(f"{base_url}/board?zoom=day&rows=operator")
    await page.wait_for_selector("#bars .bar")
    await page.screenshot(path=str(screenshot_dir / "board-large-operators.png"))


async def in_berlin(database_url: str) -> PlantTime:
    """The plant's clocks set to Europe/Berlin: its days, shifts and weeks are Berlin's."""
    database = Database(database_url)
    try:
        async with database.write() as session:
            await session.execute(update(t.Schedule).values(timezone="Europe/Berlin"))
    finally:
        await database.dispose()
    return PlantTime.current(BERLIN)


async def test_the_week_opens_on_now_and_day_lands_on_today_or_the_focused_bar(
    browser: Browser, board: Any, sqlite_database_url: str
) -> None:
    base_url, plant = board
    when = await in_berlin(sqlite_database_url)
    later = when.at(10, days=2)  # Weld, two days on: in this week, not today
    async with httpx.AsyncClient(base_url=base_url) as client:
        token = await client.post(
            "/api/v1/auth/token", json={"username": "ben", "password": PASSWORD}
        )
        moved = await client.put(
            f"/api/v1/tasks/{plant.weld}/assignment",
            json={
                "operator_id": plant.omar,
                "equipment_id": plant.welder,
                "start": iso_z(later),
                "end": iso_z(later + timedelta(minutes=90)),
            },
            headers={"Authorization": f"Bearer {token.json()['access_token']}", "If-Match": '"1"'},
        )
        assert moved.status_code == 200, moved.text
    page = await open_board(browser, base_url, plant)
    await page.click("[data-zoom-links] >> text=Week")
    await page.wait_for_selector('#board-main[data-snap-minutes="60"]')
    # Now is in sight, early in the window: yesterday, then the days ahead.
    lanes, now_line = page.locator("#lanes"), page.locator("#lanes .now-line")
    lanes_box, line_box = await lanes.bounding_box(), await now_line.bounding_box()
    assert lanes_box is not None and line_box is not None
    share = (line_box["x"] - lanes_box["x"]) / lanes_box["width"]
    assert 1 / 7 - 0.01 <= share < 2 / 7 + 0.01, share
    assert line_box["x"] + line_box["width"] <= VIEWPORT["width"]
    assert await page.get_attribute("#board-main", "data-start") == when.day(-1).isoformat()
    # Week -> Day: the day that holds now, with the now line.
    await page.click("[data-zoom-links] >> text=Day")
    await page.wait_for_selector('#board-main[data-snap-minutes="15"]')
    assert await page.get_attribute("#board-main", "data-start") == when.day().isoformat()
    await page.wait_for_selector("#lanes .now-line")
    assert "zoom=day" in page.url and "focus" not in page.url
    # Back to the week, focus Weld's bar: Day now lands on Weld's day.
    await page.click("[data-zoom-links] >> text=Week")
    await page.wait_for_selector('#board-main[data-snap-minutes="60"]')
    await page.focus(f"#bar-{plant.weld}")
    await page.click("[data-zoom-links] >> text=Day")
    await page.wait_for_selector(f'#board-main[data-start="{when.day(2).isoformat()}"]')
    assert await page.locator(f"#bar-{plant.weld}").count() == 1
    assert "focus" not in page.url
