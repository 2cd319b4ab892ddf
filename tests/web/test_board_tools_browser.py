"""The scheduler's tools and the board's fixes in a real headless Chromium:
search that jumps, the plant's conflicts, notices, the keyboard way through
the tray, and axe-core on the board, My tasks and the wall."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from axe import described, grave_violations
from board_plant import PASSWORD, BoardPlant
from browser_login import submit_login
from clocks import iso_z
from playwright.async_api import Browser, Page
from servers import load_demo
from sqlalchemy import update
from test_board_browser import VIEWPORT, api_task, open_board, planted

from app.db import tables as t
from app.db.session import Database

pytestmark = pytest.mark.browser


@pytest.fixture
async def board(
    sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> tuple[str, BoardPlant]:
    plant = await planted(sqlite_database_url, tmp_path / "var")
    return live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var"), plant


# board_tools.js, board_edits.js and board_links.js have run (deferred scripts).
SCRIPTS_READY = "() => !!(window.taktTools && window.taktTools.selected)"


def view_on(plant: BoardPlant, days: int) -> str:
    start = plant.day + timedelta(days=days)
    return "start=" + quote(start.isoformat()) + "&zoom=day&rows=equipment"


async def log_in_at(
    browser: Browser, base_url: str, url: str, user: str, password: str = PASSWORD
) -> Page:
    page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
    page.set_default_timeout(10_000)
    await page.goto(f"{base_url}{url}")
    await submit_login(page, user, password)
    return page


async def with_reference(database_url: str, job_id: int, reference: str) -> None:
    database = Database(database_url)
    try:
        async with database.write() as session:
            await session.execute(
                update(t.Job).where(t.Job.id == job_id).values(reference=reference)
            )
    finally:
        await database.dispose()


async def focused_id(page: Page) -> str:
    return str(await page.evaluate("document.activeElement && document.activeElement.id"))


async def test_search_by_order_reference_jumps_to_the_bar(
    browser: Browser, board: Any, sqlite_database_url: str
) -> None:
    base_url, plant = board
    await with_reference(sqlite_database_url, plant.job, "SO-4711")
    # Three days on: the job's bars are not in this window.
    page = await log_in_at(browser, base_url, f"/board?{view_on(plant, 3)}", "anna")
    await page.wait_for_selector("#board-main")
    assert await page.locator(f"#bar-{plant.cut}").count() == 0
    await page.wait_for_function(SCRIPTS_READY)
    await page.keyboard.press("/")  # the search box's key
    assert await focused_id(page) == "board-search-input"
    await page.keyboard.type("so-4711")
    hit = page.locator("#board-search-results .search-hit").first
    await hit.wait_for()
    assert "SO-4711" in await hit.inner_text()
    await page.keyboard.press("Enter")
    await page.wait_for_function(f"document.activeElement.id === 'bar-{plant.cut}'")
    start = await page.get_attribute("#board-main", "data-start") or ""
    assert start.startswith(plant.day.strftime("%Y-%m-%d"))
    assert "start=" in page.url  # the window is in the address bar
    await page.wait_for_selector(f"#detail[data-task-id='{plant.cut}']")


async def test_search_shows_an_operators_row(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.wait_for_function(SCRIPTS_READY)
    await page.fill("#board-search-input", "omar")
    await page.locator("#board-search-results .search-hit.kind-operator").click()
    await page.wait_for_selector('#board-main[data-rows="operator"]')
    await page.wait_for_function(
        "(id) => (document.activeElement.dataset || {}).resourceId === id", arg=str(plant.omar)
    )


async def test_the_plant_conflict_list_goes_to_a_conflict_outside_the_window(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await log_in_at(browser, base_url, f"/board?{plant.day_view}", "anna")
    await page.wait_for_selector(f"#bar-{plant.weld}")
    # Weld dropped into Cut's hour: saved, with a warning naming the conflict.
    await page.click(f"#bar-{plant.weld}")
    form = page.locator("#detail form.edit-form")
    await form.wait_for()
    await form.locator("input[name=starts_at]").fill(plant.form(8, 30))
    await form.locator("input[name=ends_at]").fill(plant.form(10))
    await form.locator("button[type=submit]").click()
    notice = page.locator("#notice.notice-warning")
    await notice.wait_for()
    assert "before its predecessor Cut ends" in await notice.inner_text()
    # The notice sits at the foot of the screen, clear of the toolbar.
    toolbar, box = await page.locator(".toolbar").bounding_box(), await notice.bounding_box()
    assert toolbar is not None and box is not None
    assert box["y"] >= toolbar["y"] + toolbar["height"]
    # Three days on, the window's panel is empty; the plant's list is not.
    await page.goto(f"{base_url}/board?{view_on(plant, 3)}")
    await page.click("[data-open-plant-conflicts]")
    item = page.locator("#plant-conflicts .conflict").first
    await item.wait_for()
    assert "dependency violation" in (await item.inner_text()).lower()
    await item.locator("[data-goto-task]").click()
    await page.wait_for_function(
        f"['bar-{plant.cut}', 'bar-{plant.weld}'].includes(document.activeElement.id)"
    )
    assert not await page.locator("#plant-conflicts-dialog").evaluate("d => d.open")


async def test_notices_other_than_errors_go_away(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.evaluate(
        """() => window.taktBoard.apply('<div id="notice" class="notice notice-ok" role="status" '
            + 'hx-swap-oob="true"><p>Saved.</p></div>')"""
    )
    await page.wait_for_selector("#notice.notice-ok")
    await page.wait_for_function(
        "!document.querySelector('#notice').textContent.trim()", timeout=15_000
    )
    await page.evaluate(
        """() => window.taktBoard.apply('<div id="notice" class="notice notice-error" role="alert" '
            + 'hx-swap-oob="true"><p>Refused.</p></div>')"""
    )
    await page.wait_for_timeout(6_500)  # longer than an ok notice stays
    assert await page.locator("#notice.notice-error").inner_text() == "Refused."


async def test_a_tray_task_is_scheduled_with_the_keyboard_alone(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.wait_for_function(SCRIPTS_READY)
    # Connected and caught up: the live frame that may redraw the tray has come.
    await page.wait_for_function("window.taktLive && window.taktLive.transport === 'websocket'")
    await page.locator("body").focus()
    for _ in range(6):  # the skip links come first
        await page.keyboard.press("Tab")
        if (await page.evaluate("document.activeElement.getAttribute('href')")) == "#tray":
            break
    assert await page.evaluate("document.activeElement.getAttribute('href')") == "#tray"
    await page.keyboard.press("Enter")
    await page.wait_for_function("location.hash === '#tray'")  # the skip link followed
    await page.keyboard.press("Tab")
    assert await focused_id(page) == f"tray-task-{plant.drill}"
    await page.keyboard.press("Enter")
    # The detail opens with focus in its form: pick Olga, Mill 2, keep the start, schedule.
    await page.wait_for_function("document.activeElement.name === 'operator_id'")
    await page.keyboard.press("ArrowDown")  # the first qualified operator
    await page.keyboard.press("Tab")
    await page.keyboard.press("ArrowDown")  # the first capable machine
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # in the start field: submits the form
    await page.wait_for_selector("#notice.notice-ok, #notice.notice-warning")
    task = await api_task(base_url, plant.drill)
    assert task["assignment"] is not None
    assert task["assignment"]["operator_id"] == plant.olga
    assert task["assignment"]["equipment_id"] in (plant.mill, plant.mill2)


async def test_a_presence_name_on_a_bar_is_not_clipped(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    bar = page.locator(f"#bar-{plant.cut}")
    # Marked and read in one go: a live frame may replace the bar's element in between.
    style = await bar.evaluate(
        """b => (b.setAttribute('data-dragged-by', 'Ben Hoffmann'), {
                   overflow: getComputedStyle(b).overflow,
                   after: getComputedStyle(b, '::after').content,
                   top: getComputedStyle(b, '::after').top,
                   barHeight: b.getBoundingClientRect().height })"""
    )
    assert style["overflow"] == "visible"
    assert "Ben Hoffmann" in style["after"]
    # Cut is on the first row: its name goes below the bar, inside the lanes.
    assert float(style["top"].removesuffix("px")) >= style["barHeight"] / 2


async def test_no_serious_accessibility_violations(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    assert not (found := await grave_violations(page)), described(found)
    await page.click(f"#bar-{plant.cut}")
    await page.wait_for_selector("#detail form.edit-form")
    await page.fill("#board-search-input", "o")
    await page.locator("#board-search-results .search-hit").first.wait_for()
    assert not (found := await grave_violations(page)), described(found)
    await page.keyboard.press("Escape")
    # The job filter with its suggestions open.
    await page.fill("#job-filter-input", "4711")
    await page.locator("#job-filter-results .job-hit").first.wait_for()
    assert not (found := await grave_violations(page)), described(found)
    await page.keyboard.press("Escape")
    await page.click("[data-open-plant-conflicts]")
    await page.wait_for_selector("#plant-conflicts .pager")
    assert not (found := await grave_violations(page)), described(found)
    for user, url, ready in [("olga", "/my", "#main"), ("maria", "/wall", "#wall-tiles")]:
        other = await log_in_at(browser, base_url, url, user)
        await other.wait_for_selector(ready)
        assert not (found := await grave_violations(other)), f"{url}: {described(found)}"


async def test_undo_and_redo_a_move_then_an_undo_refused_after_someone_else(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.focus(f"#bar-{plant.cut}")
    for _ in range(4):  # an hour earlier
        await page.keyboard.press("ArrowLeft")
    await page.wait_for_selector(".bar.ghost.preview-ok")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#notice.notice-ok")
    await page.wait_for_selector("[data-undo]:not([disabled])")
    assert (await api_task(base_url, plant.cut))["assignment"]["start"].startswith(plant.form(7))
    await page.click("[data-undo]")
    await page.wait_for_selector("[data-redo]:not([disabled])")
    assert (await api_task(base_url, plant.cut))["assignment"]["start"].startswith(plant.form(8))
    await page.locator("body").focus()
    await page.keyboard.press("Control+y")  # redo
    await page.wait_for_function(
        "(id) => document.getElementById(id).dataset.start.indexOf('T07:00') > 0",
        arg=f"bar-{plant.cut}",
    )
    moved = await api_task(base_url, plant.cut)
    assert moved["assignment"]["start"].startswith(plant.form(7))
    # Ben moves it meanwhile: undoing Anna's redo now would overwrite his change.
    async with httpx.AsyncClient(base_url=base_url) as client:
        token = await client.post(
            "/api/v1/auth/token", json={"username": "ben", "password": PASSWORD}
        )
        response = await client.put(
            f"/api/v1/tasks/{plant.cut}/assignment",
            json={
                "operator_id": plant.olga,
                "equipment_id": plant.mill,
                "start": iso_z(plant.at(13)),
                "end": iso_z(plant.at(14)),
            },
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "If-Match": f'"{moved["version"]}"',
            },
        )
        assert response.status_code == 200, response.text
    await page.keyboard.press("Control+z")
    notice = page.locator("#notice.notice-error")
    await notice.wait_for()
    assert "Not undone: Ben Hoffmann changed this task" in await notice.inner_text()
    assert (await api_task(base_url, plant.cut))["assignment"]["start"].startswith(plant.form(13))


async def test_export_downloads_the_plan_in_view_and_print_shows_only_the_plan(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.click(".export-menu summary")
    async with page.expect_download() as info:
        await page.click(".export-menu a[href^='/board/export.csv']")
    download = await info.value
    assert download.suggested_filename.endswith("-day.csv")
    saved = Path(await download.path())
    text = await asyncio.to_thread(saved.read_text, encoding="utf-8-sig")
    assert "Cut" in text and "Weld" in text and "Drill" not in text
    await page.emulate_media(media="print")
    assert not await page.locator("aside.side").is_visible()
    assert not await page.locator(".topbar").is_visible()
    assert await page.locator(f"#bar-{plant.cut}").is_visible()
    overflow = await page.locator("#gantt-body").evaluate("b => getComputedStyle(b).overflowY")
    assert overflow == "visible"  # every row on paper, not a scroll box


@pytest.mark.skipif(
    os.environ.get("TAKT_UPDATE_SCREENSHOTS") != "1",
    reason="the large demo is for the screenshots only (TAKT_UPDATE_SCREENSHOTS=1)",
)
async def test_the_tools_on_the_large_demo(
    browser: Browser,
    sqlite_database_url: str,
    live_server: Any,
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    """docs/screenshots/board-search.png, board-all-conflicts.png, board-dependencies.png,
    board-export.png, board-print.png: the large demo plant, in a shift view."""
    load_demo(sqlite_database_url, tmp_path, "large")
    base_url = live_server(database_url=sqlite_database_url)
    shift_view = "/login?next=/board%3Fzoom%3Dshift"
    page = await log_in_at(browser, base_url, shift_view, "anna", "takt-demo")
    page.set_default_timeout(60_000)  # the large plant, on a shared machine
    await page.set_viewport_size({"width": 1600, "height": 900})
    await page.wait_for_selector("#bars .bar")
    await page.fill("#board-search-input", "SO-241")
    await page.locator("#board-search-results .search-hit").first.wait_for()
    await page.screenshot(path=str(screenshot_dir / "board-search.png"))
    await page.keyboard.press("Escape")
    await page.click("[data-open-plant-conflicts]")
    await page.wait_for_selector("#plant-conflicts .pager")
    await page.screenshot(path=str(screenshot_dir / "board-all-conflicts.png"))
    await page.click("[data-close-dialog]")
    await page.emulate_media(media="print")
    await page.screenshot(
        path=str(screenshot_dir / "board-print.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1600, "height": 1200},
    )
    await page.emulate_media(media="screen")
    # A job with several bars in view on nearby rows, selected: its arrows, critical
    # path and slack.
    job = await page.evaluate(
        """() => { const rows = {};
            document.querySelectorAll('#bars .bar').forEach((b) => {
                const id = b.dataset.jobId;
                (rows[id] = rows[id] || []).push(Number(b.dataset.row)); });
            const spread = (r) => Math.max(...r) - Math.min(...r);
            return Object.entries(rows).filter(([, r]) => r.length >= 3)
                .sort((a, b) => spread(a[1]) - spread(b[1]) || b[1].length - a[1].length)
                [0][0]; }"""
    )
    first = page.locator(f"#bars .bar[data-job-id='{job}']").first
    await first.scroll_into_view_if_needed()
    await first.click()
    await page.locator("#job-links path").first.wait_for(state="attached")
    await page.screenshot(path=str(screenshot_dir / "board-dependencies.png"))
    await page.click(".export-menu summary")
    await page.screenshot(path=str(screenshot_dir / "board-export.png"))


async def test_dragging_a_bars_edge_changes_its_duration(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    bar = page.locator(f"#bar-{plant.cut}")
    box = await bar.bounding_box()
    assert box is not None
    edge_x, y = box["x"] + box["width"] - 3, box["y"] + box["height"] / 2
    lanes = await page.locator("#bars").bounding_box()
    assert lanes is not None
    half_hour = lanes["width"] / 48  # the day view spans 24 hours
    await page.wait_for_function(SCRIPTS_READY)
    await page.mouse.move(edge_x - 1, y)
    await page.mouse.move(edge_x, y)
    await page.wait_for_selector(f"#bar-{plant.cut}.at-edge")  # the cursor says "resize"
    # Cut (08:00-09:00) shortened to 08:30: Weld still starts after it, no conflict.
    await page.mouse.down()
    await page.mouse.move(edge_x - half_hour / 2, y, steps=3)
    await page.mouse.move(edge_x - half_hour - 1, y, steps=3)
    await page.mouse.up()
    await page.wait_for_selector("#notice.notice-ok")
    task = await api_task(base_url, plant.cut)
    assert task["assignment"]["start"].startswith(plant.form(8))  # the start stays
    assert task["assignment"]["end"].startswith(plant.form(8, 30))
    assert await page.locator("#detail[data-task-id]").count() == 0  # a resize is not a click
    # Shift+→ lengthens it by one snap (15 minutes), from the keyboard.
    await page.focus(f"#bar-{plant.cut}")
    await page.keyboard.press("Shift+ArrowRight")
    await page.wait_for_function(
        "(id) => document.getElementById(id).dataset.end.indexOf('T08:45') > 0",
        arg=f"bar-{plant.cut}",
    )
    assert (await api_task(base_url, plant.cut))["assignment"]["end"].startswith(plant.form(8, 45))


async def test_selected_bars_move_together_and_the_move_is_undone(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.click(f"#bar-{plant.cut}", modifiers=["Shift"])
    await page.click(f"#bar-{plant.weld}", modifiers=["Shift"])
    assert await page.locator("#bars .bar.selected").count() == 2
    assert "2 tasks selected" in await page.locator("#selection-bar").inner_text()
    # Drag Weld an hour later: Cut comes along.
    box = await page.locator(f"#bar-{plant.weld}").bounding_box()
    lanes = await page.locator("#bars").bounding_box()
    assert box is not None and lanes is not None
    hour = lanes["width"] / 24
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + hour / 2, y, steps=4)
    await page.mouse.move(x + hour + 2, y, steps=4)
    await page.mouse.up()
    notice = page.locator("#notice.notice-ok")
    await notice.wait_for(timeout=20_000)
    assert "Moved 2 tasks later by 60 min" in await notice.inner_text()
    cut, weld = await api_task(base_url, plant.cut), await api_task(base_url, plant.weld)
    assert cut["assignment"]["start"].startswith(plant.form(9))
    assert weld["assignment"]["start"].startswith(plant.form(10))
    # Undo: both back, in one more bulk run.
    await page.locator("body").focus()
    await page.keyboard.press("Control+z")
    await page.wait_for_function(
        "() => /Undone: 2 tasks/.test(document.querySelector('#notice').textContent)",
        timeout=20_000,
    )
    cut = await api_task(base_url, plant.cut)
    assert cut["assignment"]["start"].startswith(plant.form(8))


async def test_a_lasso_selects_the_bars_it_covers(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    lanes = await page.locator("#bars").bounding_box()
    assert lanes is not None
    hour = lanes["width"] / 24
    # From 07:00 above the first row to 11:00 below the third: Cut and Weld.
    await page.keyboard.down("Shift")
    await page.mouse.move(lanes["x"] + 7 * hour, lanes["y"] + 2)
    await page.mouse.down()
    await page.mouse.move(lanes["x"] + 11 * hour, lanes["y"] + lanes["height"] - 2, steps=6)
    await page.mouse.up()
    await page.keyboard.up("Shift")
    selected = await page.evaluate("Object.keys(window.taktTools.selected()).map(Number).sort()")
    assert selected == sorted([plant.cut, plant.weld])
    await page.keyboard.press("Escape")
    assert await page.locator("#bars .bar.selected").count() == 0


async def test_a_selected_jobs_links_critical_path_and_slack_are_drawn(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.click(f"#bar-{plant.weld}")
    link = page.locator(f'#job-links path[data-link="{plant.cut}-{plant.weld}"]')
    await link.wait_for(state="attached")
    assert "critical" in (await link.get_attribute("class") or "")
    # The arrow runs from Cut's end to Weld's start.
    cut = await page.locator(f"#bar-{plant.cut}").bounding_box()
    weld = await page.locator(f"#bar-{plant.weld}").bounding_box()
    lanes = await page.locator("#bars").bounding_box()
    assert cut is not None and weld is not None and lanes is not None
    route = await link.get_attribute("d") or ""
    start_x = float(route.split(",")[0].removeprefix("M"))
    end_x = float(route.rsplit("H", 1)[1])
    assert abs(lanes["x"] + start_x - (cut["x"] + cut["width"])) < 2
    assert abs(lanes["x"] + end_x - weld["x"]) < 3
    label = page.locator(f'#job-links .slack-label[data-task-id="{plant.weld}"]')
    assert await label.text_content() == "critical"
    facts = page.locator("#detail dl.facts")
    await facts.locator("dt.cpm").first.wait_for()
    text = await facts.inner_text()
    assert "Earliest start" in text and "Latest start" in text and "on the critical path" in text
    # A click on empty lanes deselects the job: the arrows go.
    await page.mouse.click(lanes["x"] + lanes["width"] - 20, lanes["y"] + lanes["height"] - 10)
    await page.wait_for_selector("#job-links", state="detached")
