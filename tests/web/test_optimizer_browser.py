"""The optimizer from the board, in a real Chromium against a real server, with two schedulers.

Anna starts a run, watches its progress, previews the draft; Ben schedules a
task the draft touches meanwhile, so Anna's apply is refused naming it; she
re-runs on the plan as it is now, applies, and the bar moves on her board.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from board_plant import PASSWORD, BoardPlant, build_board_plant
from playwright.async_api import Browser, Page

from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import Services
from app.settings import Settings

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1440, "height": 860}
# The route takes a test-sized limit; the panel offers 10/30/60 s.
TEST_LIMIT = "2"
# This week on the board: the optimizer plans from now on, so the view follows the clock.
WEEK_VIEW = "zoom=week&rows=equipment"


@pytest.fixture
async def board(
    sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> tuple[str, BoardPlant]:
    settings = Settings(database_url=sqlite_database_url, redis_url=None, var_dir=tmp_path)
    services = Services(settings=settings, db=Database(sqlite_database_url), hub=MemoryHub())
    try:
        plant = await build_board_plant(services)
    finally:
        await services.db.dispose()
    return live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var"), plant


async def log_in(browser: Browser, base_url: str, user: str) -> Page:
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = await context.new_page()
    page.set_default_timeout(20_000)
    await page.goto(f"{base_url}/board?{WEEK_VIEW}")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#board-main")
    # Which states the panel went through (a fast run may skip straight to its draft).
    await page.evaluate(
        """() => {
          window.panelStates = [];
          document.addEventListener("htmx:afterSettle", () => {
            const p = document.getElementById("optimizer");
            if (p) window.panelStates.push(p.dataset.state);
          });
        }"""
    )
    return page


async def start_run(page: Page) -> None:
    await page.click(".optimize-button")
    await page.wait_for_selector("#optimizer[data-state=options]")
    # A test-sized time limit: the route accepts 1-300 s, the panel offers 10/30/60.
    radio = await page.wait_for_selector("#optimizer input[name=time_limit][value='10']")
    assert radio is not None
    await radio.evaluate(f"(input) => {{ input.value = '{TEST_LIMIT}'; }}")
    await radio.check()
    await page.check("#optimizer input[name=scope][value=all]")
    await page.click("#optimizer button[type=submit]")
    await page.wait_for_selector("#optimizer[data-state=draft]")


async def schedule_as(page: Page, task_id: int, plant: BoardPlant, starts: str, ends: str) -> None:
    """Ben schedules a task through the board's own edit route, as his detail form would."""
    status = await page.evaluate(
        """async ([taskId, fields]) => {
          const csrf = document.querySelector('meta[name="csrf-token"]').content;
          const view = document.getElementById("board-main").dataset.view;
          const response = await fetch(`/board/tasks/${taskId}/place?${view}`, {
            method: "POST", body: new URLSearchParams(fields),
            headers: {"X-CSRF-Token": csrf, "HX-Request": "true"},
          });
          return response.status;
        }""",
        [
            task_id,
            {
                "version": "1",
                "operator_id": str(plant.olga),
                "equipment_id": str(plant.mill2),
                "starts_at": starts,
                "ends_at": ends,
            },
        ],
    )
    assert status == 200


async def test_optimize_preview_and_apply_while_another_scheduler_edits(
    browser: Browser, board: Any, screenshot_dir: Path
) -> None:
    base_url, plant = board
    anna = await log_in(browser, base_url, "anna")
    ben = await log_in(browser, base_url, "ben")

    await start_run(anna)
    assert "running" in await anna.evaluate("window.panelStates")
    panel = anna.locator("#optimizer")
    assert "Newly scheduled" in await panel.inner_text()
    assert "Drill" in (await panel.locator(".group-scheduled").text_content() or "")
    # The draft's position of Drill is drawn on the board as a ghost.
    await anna.wait_for_selector(f"#draft-ghost-{plant.drill}")

    # Meanwhile Ben schedules Drill himself, two days on: the draft is stale.
    later = (datetime.now(UTC) + timedelta(days=2)).replace(hour=10, minute=0)
    ends = later + timedelta(minutes=45)
    await schedule_as(ben, plant.drill, plant, f"{later:%Y-%m-%dT%H:%M}", f"{ends:%Y-%m-%dT%H:%M}")
    await panel.locator("button", has_text="Apply").click()
    await anna.wait_for_selector("#optimizer[data-state=stale]")
    stale = await panel.inner_text()
    assert "Drill" in stale and "Ben Hoffmann" in stale
    # The stale draft's ghosts leave the board.
    await anna.wait_for_selector(f"#draft-ghost-{plant.drill}", state="detached")

    # Re-run on the plan as it is now, and apply that draft: both boards move on.
    await panel.locator("button", has_text="Re-run").click()
    await anna.wait_for_selector("#optimizer[data-state=draft]")
    await anna.screenshot(path=str(screenshot_dir / "optimizer.png"))
    before = await ben.get_attribute("#board-revision", "data-revision")
    await panel.locator("button", has_text="Apply").click()
    await anna.wait_for_selector("#optimizer[data-state=applied]")
    assert "Applied" in await panel.inner_text()
    # The live feed brings the applied plan to Ben's board as one more revision.
    await ben.wait_for_function(
        "before => Number(document.getElementById('board-revision').dataset.revision) > before",
        arg=int(before or 0),
    )
    await anna.wait_for_function("() => document.querySelectorAll('.draft-ghost').length === 0")
