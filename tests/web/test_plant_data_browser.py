"""The plant data page in a real headless Chromium, by keyboard: files with problems are
listed row by row, good files import through the queue with a progress bar, axe-clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axe import described, grave_violations
from board_plant import BoardPlant
from playwright.async_api import Browser, Page
from test_board_browser import planted
from test_board_tools_browser import log_in_at
from test_plant_data import EQUIPMENT, JOBS, OPERATORS

pytestmark = pytest.mark.browser

BAD_JOBS = JOBS.replace("Press 1: 40", "Press 7: 40").replace(",10,,", ",99,,") + (
    "\nSO-901,Hinge,ACME,SO-901,1,,next friday,10,Bend,0,bending,1,,,,"
)


@pytest.fixture
async def plant(
    sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> tuple[str, BoardPlant]:
    built = await planted(sqlite_database_url, tmp_path / "var")
    return live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var"), built


def files_in(folder: Path, **contents: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, body in contents.items():
        path = folder / f"{name}.csv"
        path.write_text(body)
        paths.append(str(path))
    return paths


async def check_by_keyboard(page: Page, paths: list[str]) -> None:
    """Choose the files (a file dialog is the system's), then Tab to the button and Enter."""
    await page.set_input_files("#import-files", paths)
    await page.focus("#import-files")
    await page.keyboard.press("Tab")  # the kind
    await page.keyboard.press("Tab")  # "Check the files"
    assert await page.evaluate("document.activeElement.textContent") == "Check the files"
    await page.keyboard.press("Enter")


async def test_a_manager_sees_the_problems_then_imports_with_progress(
    browser: Browser, plant: Any, tmp_path: Path, screenshot_dir: Path
) -> None:
    base_url, _ = plant
    page = await log_in_at(browser, base_url, "/plant/data", "maria")
    assert await page.get_attribute('a[href="/plant/data"]', "aria-current") == "page"
    violations = await grave_violations(page)
    assert violations == [], described(violations)

    bad = files_in(tmp_path / "bad", equipment=EQUIPMENT, operators=OPERATORS, jobs=BAD_JOBS)
    await check_by_keyboard(page, bad)
    await page.wait_for_selector("table.row-errors")
    rows = await page.locator("table.row-errors tbody tr").all_inner_texts()
    assert len(rows) == 5, rows
    assert any("routings" in row and "Press 7" in row for row in rows)
    assert any("due" in row and "next friday" in row for row in rows)
    assert await page.locator('input[name="upload"]').count() == 0
    violations = await grave_violations(page)
    assert violations == [], described(violations)
    await page.screenshot(path=str(screenshot_dir / "plant-data-errors.png"), full_page=True)

    good = files_in(tmp_path / "good", equipment=EQUIPMENT, operators=OPERATORS, jobs=JOBS)
    await check_by_keyboard(page, good)
    button = page.get_by_role("button", name="Import 2 tasks, 1 equipment, 1 operators")
    await button.wait_for()
    await button.focus()
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#import-result >> text=are in the plant", timeout=20_000)
    text = await page.inner_text("#import-result")
    assert "1 equipment, 1 operators, 1 jobs and 2 tasks are in the plant" in text
    violations = await grave_violations(page)
    assert violations == [], described(violations)
    await page.screenshot(path=str(screenshot_dir / "plant-data-imported.png"), full_page=True)


async def test_the_progress_bar_shows_while_the_import_runs(
    browser: Browser, plant: Any, tmp_path: Path
) -> None:
    """The answer to "Import" is a progress bar that asks for its run until it is done."""
    base_url, _ = plant
    page = await log_in_at(browser, base_url, "/plant/data", "maria")
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/plant/data/runs/" in r.url else None)
    good = files_in(tmp_path / "good", equipment=EQUIPMENT, operators=OPERATORS, jobs=JOBS)
    await check_by_keyboard(page, good)
    await page.get_by_role("button", name="Import 2 tasks, 1 equipment, 1 operators").click()
    await page.wait_for_selector("#import-progress", state="attached")
    await page.wait_for_selector("#import-result >> text=are in the plant", timeout=20_000)
    assert seen, "the page never asked how far the import is"
    assert await page.locator("#import-progress").count() == 0
