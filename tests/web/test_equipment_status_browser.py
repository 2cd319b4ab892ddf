"""A machine goes down from its row on the board, in a real headless Chromium.

Anna opens Mill 1's status popover from its row header and sets it down; the
row and Cut's bar are marked, the conflicts panel lists Cut under "Equipment
out of service", and its "Back to tray" puts Cut in the tray. No timing
assertions: every wait is for a condition.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from board_plant import PASSWORD, BoardPlant, build_board_plant
from browser_login import submit_login
from playwright.async_api import Browser

from app import clock
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services import tasks
from app.services.context import SYSTEM, Services
from app.settings import Settings

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1400, "height": 800}


async def planted_for_today(database_url: str, var_dir: Path) -> BoardPlant:
    """The board plant with Cut moved to an hour from now on Mill 1 (so a breakdown blocks it)."""
    settings = Settings(database_url=database_url, redis_url=None, var_dir=var_dir)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        plant = await build_board_plant(services)
        start = clock.now().replace(second=0, microsecond=0) + timedelta(hours=1)
        await tasks.assign_task(
            services=services,
            actor=SYSTEM,
            task_id=plant.cut,
            expected_version=1,
            placement=tasks.Placement(plant.olga, plant.mill, start, start + timedelta(hours=1)),
        )
        return plant
    finally:
        await services.db.dispose()


async def assignment_of(base_url: str, task_id: int) -> Any:
    """The task's assignment through the API, as another client sees it."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        token = await client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return (await client.get(f"/api/v1/tasks/{task_id}", headers=headers)).json()["assignment"]


@pytest.fixture
async def board(
    sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> tuple[str, BoardPlant]:
    plant = await planted_for_today(sqlite_database_url, tmp_path / "var")
    return live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var"), plant


async def test_a_scheduler_sets_a_machine_down_and_moves_its_task_to_the_tray(
    browser: Browser, board: Any, screenshot_dir: Path
) -> None:
    base_url, plant = board
    start = (clock.now() - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
    page.set_default_timeout(15_000)
    await page.goto(f"{base_url}/board?start={quote(start.isoformat())}&zoom=day&rows=equipment")
    await submit_login(page, "anna", PASSWORD)
    await page.wait_for_selector(f"#bar-{plant.cut}")
    # (Cut already conflicts: it now comes after Weld. Nothing is out of service yet.)
    assert await page.locator(".out-of-service .blocked-task").count() == 0

    # The board's one status form opens from the keyboard, filled for the row's machine.
    row = f'.row-label[data-resource-id="{plant.mill}"]'
    form = "#status-form"
    await page.focus(f"{row} .row-status-button")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(f"{form}:popover-open")
    assert await page.inner_text(f"{form} .status-machine") == "Mill 1"
    assert await page.is_checked(f'{form} input[name="status"][value="available"]')
    action = await page.get_attribute(form, "action") or ""
    assert action.startswith(f"/board/equipment/{plant.mill}/status?")
    await page.keyboard.press("Escape")
    await page.wait_for_selector(f"{form}:not(:popover-open)", state="attached")
    await page.click(f"{row} .row-status-button")
    await page.wait_for_selector(f"{form}:popover-open")
    await page.check(f'{form} input[name="status"][value="down"]')
    await page.fill(f'{form} input[name="note"]', "spindle bearing noise")
    await page.screenshot(path=str(screenshot_dir / "equipment-status-form.png"))
    await page.click(f'{form} button[type="submit"]')

    await page.wait_for_selector(f"{row}.status-down")
    await page.wait_for_selector(f'#bar-{plant.cut}.has-error[title*="Equipment Mill 1 is down"]')
    await page.wait_for_selector("#notice.notice-ok")
    assert "Mill 1 is down" in await page.inner_text("#notice")
    blocked = page.locator(".out-of-service .blocked-task")
    assert await blocked.count() == 1
    assert "Mill 1" in await blocked.inner_text()
    await page.screenshot(path=str(screenshot_dir / "equipment-down.png"))

    await page.click(f'#conflicts [data-unschedule-task="{plant.cut}"]')
    await page.wait_for_selector(f"#tray-list #tray-task-{plant.cut}")
    await page.wait_for_selector(f"#bar-{plant.cut}", state="detached")
    await page.wait_for_selector(".out-of-service", state="hidden")
    assert await assignment_of(base_url, plant.cut) is None
    await page.close()
