"""A breakdown reported from a phone, repaired from the board, in real Chromium.

Olga's Cut is booked on Mill 1 an hour from now. She reports Mill 1 down
from her phone ("My tasks"); Anna's board, open meanwhile, shows the machine
out of service with "Review repair" beside it, without a reload. The repair
draft opens in the optimizer panel: Cut to Mill 2 (the other mill), nothing
else that need not move. Anna applies it; Cut's bar is on Mill 2 and the
machine has nothing left to move. No timing assertions: every wait is for a
condition.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from board_plant import PASSWORD, BoardPlant, build_board_plant
from browser_login import submit_login
from playwright.async_api import Browser, Page

from app import clock
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services import tasks
from app.services.context import SYSTEM, Services
from app.settings import Settings

pytestmark = pytest.mark.browser

WAIT_MS = 20_000


async def cut_within_the_hour(database_url: str, var_dir: Path) -> BoardPlant:
    """The board plant with Cut (Olga, Mill 1) moved to an hour from now."""
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


async def sign_in(browser: Browser, base_url: str, who: str, path: str, **kw: Any) -> Page:
    context = await browser.new_context(**kw)
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(base_url + "/login?next=" + quote(path, safe=""))
    await submit_login(page, who, PASSWORD)
    return page


async def test_a_breakdown_from_a_phone_is_offered_as_a_repair_on_the_board(
    browser: Browser,
    sqlite_database_url: str,
    live_server: Any,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    plant = await cut_within_the_hour(sqlite_database_url, tmp_path / "var")
    base_url = live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var")
    hour = clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    view = urlencode({"start": hour.isoformat(), "zoom": "day", "rows": "equipment"})
    board = await sign_in(
        browser, base_url, "anna", "/board?" + view, viewport={"width": 1440, "height": 860}
    )
    await board.wait_for_selector(f"#bar-{plant.cut}")
    await board.wait_for_function("window.taktLive && window.taktLive.transport === 'websocket'")
    # No machine out of service yet (at night Cut may already be outside Olga's shift,
    # whose conflict row offers a repair of its own).
    assert await board.locator(".out-of-service-machine .review-repair").count() == 0

    phone = await sign_in(browser, base_url, "olga", "/my", viewport={"width": 360, "height": 740})
    await phone.wait_for_selector(f"#my-task-{plant.cut}")
    # Connected: the list the live feed sends on connecting will not close the form.
    await phone.wait_for_function("window.taktLive && window.taktLive.transport === 'websocket'")
    await phone.click(f"#my-task-{plant.cut} .my-breakdown summary")
    await phone.fill(f"#my-task-{plant.cut} textarea", "Coolant pump failed")
    await phone.click(f"#my-task-{plant.cut} .my-breakdown-form button")
    await phone.wait_for_selector(f"#my-task-{plant.cut}.machine-out")

    # The board hears of it live and offers the repair beside the machine.
    offer = board.locator(
        f'.out-of-service-machine[data-equipment-id="{plant.mill}"] .review-repair'
    )
    await offer.wait_for()
    assert await board.evaluate("performance.getEntriesByType('navigation').length") == 1
    await offer.click()
    panel = board.locator("#optimizer")
    await board.wait_for_selector("#optimizer[data-state=draft]")
    # Cut goes to Mill 2 (its successors may follow in "Moved", listed first, whose
    # details alone start open: read every list, open or not).
    lists = await panel.locator(".draft-group").all_text_contents()
    assert any("Cut" in found and "Mill 2" in found for found in lists), lists
    await board.wait_for_selector(".draft-ghost", state="attached")
    await board.screenshot(path=str(screenshot_dir / "repair-draft.png"))

    await panel.locator("button", has_text="Apply").click()
    await board.wait_for_selector("#optimizer[data-state=applied]")
    await board.wait_for_selector(f'#bar-{plant.cut}[data-equipment-id="{plant.mill2}"]')
    await board.wait_for_selector(".out-of-service", state="hidden")
