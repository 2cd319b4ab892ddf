"""Two schedulers on two app instances (shared PostgreSQL and Redis), in real browsers:
Anna's drag on instance A reaches Ben's board on instance B without a reload."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest
from browser_login import submit_login
from playwright.async_api import Browser, Page
from realtime.live_world import PASSWORD, Board, Plant, build_plant

from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import Services
from app.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]

WAIT_MS = 15_000


async def open_board(browser: Browser, base_url: str, plant: Plant, username: str) -> Page:
    context = await browser.new_context(viewport={"width": 1400, "height": 800})
    page = await context.new_page()
    board_path = "/board?" + urlencode(plant.view)
    await page.goto(base_url + "/login?next=" + quote(board_path, safe=""))
    await submit_login(page, username, PASSWORD)
    await page.wait_for_selector("#bars", timeout=WAIT_MS)
    await page.wait_for_function(
        "() => window.taktLive && window.taktLive.transport === 'websocket'", timeout=WAIT_MS
    )
    return page


async def test_a_drag_through_one_instance_appears_on_a_board_of_the_other(
    browser: Browser,
    postgres_database_url: str,
    redis_url: str,
    live_server: Callable[..., str],
    tmp_path: Path,
) -> None:
    var_dir = tmp_path / "var"  # shared: both instances sign and check the same cookies
    settings = Settings(database_url=postgres_database_url, var_dir=var_dir)
    services = Services(settings=settings, db=Database(postgres_database_url), hub=MemoryHub())
    try:
        plant = await build_plant(services)
    finally:
        await services.db.dispose()
    env = {"TAKT_RATE_LIMIT_USER": "100000/minute"}
    instance_a, instance_b = (
        live_server(database_url=postgres_database_url, redis_url=redis_url, var_dir=var_dir,
                    env=env)
        for _ in range(2)
    )  # fmt: skip
    assert instance_a != instance_b
    cut = plant.tasks[0]
    async with httpx.AsyncClient(base_url=instance_a, timeout=30) as http:
        board = Board(instance_a, plant, http, settings)
        await board.move(await board.token("anna"), cut, 8)  # on the board before anyone looks

    anna = await open_board(browser, instance_a, plant, "anna")
    ben = await open_board(browser, instance_b, plant, "ben")
    # Presence crosses instances too.
    await ben.wait_for_selector("#presence >> text=Anna Amsel", timeout=WAIT_MS)
    before = await ben.get_attribute(f"#bar-{cut}", "data-start")

    bar = await anna.wait_for_selector(f"#bar-{cut}")
    box = await bar.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await anna.mouse.move(x, y)
    await anna.mouse.down()
    await anna.mouse.move(x + 120, y, steps=10)
    await anna.mouse.up()
    await anna.wait_for_function(
        "([id, start]) => document.getElementById('bar-' + id).dataset.start !== start",
        arg=[cut, before],
        timeout=WAIT_MS,
    )
    moved = await anna.get_attribute(f"#bar-{cut}", "data-start")

    # Instance B's board shows the same new slot, with no reload.
    await ben.wait_for_selector(f'#bar-{cut}[data-start="{moved}"]', timeout=WAIT_MS)
    assert await ben.evaluate("performance.getEntriesByType('navigation').length") == 1
