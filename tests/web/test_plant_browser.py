"""The plant pages in a real headless Chromium against a real server (uvicorn).

Maria (manager) sets the plant up with the keyboard and the mouse: a job with
two tasks, an operator's skills and time off, a machine's downtime window. A
second manager's stale save is refused by name, and a scheduler's open board
shows a plant edit without a reload. Each page is checked with axe-core.
Screenshots go to docs/screenshots/plant-*.png with TAKT_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axe import grave_violations
from board_plant import PASSWORD, BoardPlant
from browser_login import submit_login
from playwright.async_api import Browser, Page
from test_board_browser import open_board, planted

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture
async def plant_site(
    sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> tuple[str, BoardPlant]:
    plant = await planted(sqlite_database_url, tmp_path / "var")
    return live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var"), plant


async def open_as(browser: Browser, base_url: str, path: str, user: str = "maria") -> Page:
    page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
    page.set_default_timeout(10_000)
    await page.goto(f"{base_url}{path}")  # not logged in: the login form, then back here
    await submit_login(page, user, PASSWORD)
    return page


async def saved(page: Page, says: str) -> None:
    await page.locator("#notice.notice-ok", has_text=says).wait_for()


async def assert_axe_clean(page: Page) -> None:
    assert await grave_violations(page) == []


async def test_a_manager_creates_a_job_with_two_tasks(
    browser: Browser, plant_site: Any, screenshot_dir: Path
) -> None:
    base_url, _ = plant_site
    page = await open_as(browser, base_url, "/board")
    await page.get_by_role("link", name="Plant").click()
    await page.wait_for_url("**/plant/jobs")
    await assert_axe_clean(page)
    form = page.locator("#new-job")
    await form.get_by_label("Reference").fill("J-2001")
    await form.get_by_label("Priority").fill("500")
    await form.get_by_role("button", name="Create job").click()
    # Refused at the fields, and the keyboard lands on the first one to fix.
    problem = page.locator("#new-job-name-error")
    await problem.wait_for()
    assert await problem.inner_text() == "Name is required"
    assert await page.evaluate("document.activeElement.id") == "new-job-name"
    await assert_axe_clean(page)
    await page.keyboard.type("Gearbox housing")
    await page.locator("#new-job-priority").fill("20")
    async with page.expect_navigation():
        await page.locator("#new-job-priority").press("Enter")
    await page.wait_for_selector("h1:has-text('Gearbox housing')")

    for name, minutes, skill in [
        ("Mill housing", "90", "milling"),
        ("Weld flange", "45", "welding"),
    ]:
        await page.locator("#new-task-name").fill(name)
        await page.locator("#new-task-duration_minutes").fill(minutes)
        await page.locator("#new-task-required_skill").fill(skill)
        await page.locator("#new-task-required_capability").fill(skill)
        await page.get_by_role("button", name="Add task").click()
        await saved(page, f"Task {name} added.")
    rows = page.locator("#tasks tbody tr")
    assert await rows.count() == 2
    # The second step follows the first (the form offers the last step as its predecessor).
    assert "Mill housing" in await rows.nth(1).locator("td").nth(5).inner_text()
    await assert_axe_clean(page)
    await page.screenshot(path=str(screenshot_dir / "plant-job.png"), full_page=True)


async def test_a_manager_edits_an_operators_skills_and_time_off(
    browser: Browser, plant_site: Any, screenshot_dir: Path
) -> None:
    base_url, plant = plant_site
    page = await open_as(browser, base_url, "/plant/operators")
    await page.get_by_role("link", name="Omar Haddad").click()
    await page.wait_for_selector("h1:has-text('Omar Haddad')")
    await page.locator("#op-skill-0-level").fill("3")
    await page.locator("#op-skill-1-name").fill("assembly")
    await page.locator("#op-skill-1-level").fill("2")
    away = plant.at(0, days=5)
    await page.locator("#op-off-0-start").fill(away.strftime("%Y-%m-%dT%H:%M"))
    await page.locator("#op-off-0-end").fill(plant.at(0, days=7).strftime("%Y-%m-%dT%H:%M"))
    await page.locator("#op-off-0-reason").fill("holiday")
    await page.get_by_role("button", name="Save operator").click()
    await saved(page, "Operator saved.")
    # Skills come back in name order.
    assert await page.locator("#op-skill-0-name").input_value() == "assembly"
    assert await page.locator("#op-skill-1-name").input_value() == "welding"
    assert await page.locator("#op-off-0-reason").input_value() == "holiday"
    await assert_axe_clean(page)
    await page.screenshot(path=str(screenshot_dir / "plant-operator.png"), full_page=True)
    await page.reload()  # saved, not only shown
    assert await page.locator("#op-skill-1-level").input_value() == "3"


async def test_a_manager_adds_a_downtime_window(
    browser: Browser, plant_site: Any, screenshot_dir: Path
) -> None:
    base_url, plant = plant_site
    page = await open_as(browser, base_url, "/plant/equipment")
    await page.get_by_role("link", name="Mill 2").click()
    await page.wait_for_selector("h1:has-text('Mill 2')")
    await page.locator("#eq-down-0-start").fill(plant.form(6, days=2))
    await page.locator("#eq-down-0-end").fill(plant.form(4, days=2))
    await page.locator("#eq-down-0-reason").fill("spindle service")
    await page.get_by_role("button", name="Save machine").click()
    problem = page.locator("#eq-down-0-end-error")
    await problem.wait_for()
    assert await problem.inner_text() == "Until must be after the start"
    await page.locator("#eq-down-0-end").fill(plant.form(14, days=2))
    await page.get_by_role("button", name="Save machine").click()
    await saved(page, "Machine saved.")
    assert await page.locator("#eq-down-0-reason").input_value() == "spindle service"
    await assert_axe_clean(page)
    await page.screenshot(path=str(screenshot_dir / "plant-equipment.png"), full_page=True)


async def test_a_second_managers_stale_edit_is_refused_by_name(
    browser: Browser, plant_site: Any
) -> None:
    base_url, plant = plant_site
    maria = await open_as(browser, base_url, f"/plant/jobs/{plant.job}")
    other = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    admin = await other.new_page()
    await admin.goto(f"{base_url}/plant/jobs/{plant.job}")
    await submit_login(admin, "admin", PASSWORD)
    await admin.locator("#job-customer").fill("Acme Gears")
    await admin.get_by_role("button", name="Save job").click()
    await saved(admin, "Job saved.")
    await maria.locator("#job-priority").fill("90")
    await maria.get_by_role("button", name="Save job").click()
    notice = maria.locator("#notice.notice-error")
    await notice.wait_for()
    assert "Administrator changed this job while you were editing it" in await notice.inner_text()
    # Their version is on the form now; a second save goes through.
    assert await maria.locator("#job-customer").input_value() == "Acme Gears"
    await maria.locator("#job-priority").fill("90")
    await maria.get_by_role("button", name="Save job").click()
    await saved(maria, "Job saved.")
    await other.close()


async def test_an_open_board_shows_a_plant_edit_without_a_reload(
    browser: Browser, plant_site: Any
) -> None:
    base_url, plant = plant_site
    board = await open_board(browser, base_url, plant, "anna")
    assert await board.locator(f"#bar-{plant.cut} .bar-name").inner_text() == "Cut"
    page = await open_as(browser, base_url, f"/plant/tasks/{plant.cut}")
    await page.locator("#task-name").fill("Cut to length")
    await page.get_by_role("button", name="Save task").click()
    await saved(page, "Task saved.")
    renamed = board.locator(f"#bar-{plant.cut} .bar-name:has-text('Cut to length')")
    await renamed.wait_for(state="attached")  # a short bar may hide its label
    # A new duration of a task in the tray: its card says so at once.
    drill = board.locator(f"#tray-task-{plant.drill}")
    assert await drill.get_attribute("data-duration-minutes") == "45"
    await page.goto(f"{base_url}/plant/tasks/{plant.drill}")
    await page.locator("#task-duration_minutes").fill("90")
    await page.get_by_role("button", name="Save task").click()
    await saved(page, "Task saved.")
    await board.locator(f"#tray-task-{plant.drill}[data-duration-minutes='90']").wait_for()
    assert "1 h 30 min" in await drill.locator(".tray-meta").inner_text()
