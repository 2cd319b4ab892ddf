"""The dashboard wall in a real Chromium at 1920x1080, left running like on a plant's screen.

A manager's change through the REST API (a machine set down) reaches the open
wall without a reload: by SSE, by polling when the stream is blocked, by SSE
again once the network lets the stream through (the wall climbs back by
itself), and after the server was stopped and a new process started on the
same port. The
page stays the same size however many updates it applies. No timing
assertions: every wait is for a condition, with a timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from board_plant import PASSWORD, BoardPlant, build_board_plant
from browser_login import submit_login
from flaky_network import FlakyNetwork, stream_carried
from playwright.async_api import Browser, BrowserContext, Page
from servers import app_server, free_port, load_demo
from sqlalchemy import select

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import SYSTEM, Services
from app.services.write_path import change
from app.settings import Settings

pytestmark = pytest.mark.browser

WAIT_MS = 15_000
WALL = {"width": 1920, "height": 1080}
ENV = {"TAKT_RATE_LIMIT_USER": "100000/minute"}


@dataclass
class Plant:
    url: str
    plant: BoardPlant
    database_url: str
    var_dir: Path


async def _services(database_url: str, var_dir: Path) -> Services:
    settings = Settings(database_url=database_url, var_dir=var_dir)
    return Services(settings=settings, db=Database(database_url), hub=MemoryHub())


@pytest.fixture
async def plant(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[Plant]:
    """The board's small plant in SQLite (not served yet)."""
    services = await _services(sqlite_database_url, tmp_path / "var")
    try:
        built = await build_board_plant(services)
    finally:
        await services.db.dispose()
    yield Plant("", built, sqlite_database_url, tmp_path / "var")


@pytest.fixture
def served(plant: Plant, live_server: Callable[..., str]) -> Plant:
    plant.url = live_server(database_url=plant.database_url, var_dir=plant.var_dir, env=ENV)
    return plant


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


async def open_wall(
    browser: Browser, contexts: list[BrowserContext], url: str, *, block_sse: bool = False
) -> Page:
    context = await browser.new_context(viewport=WALL)
    contexts.append(context)
    if block_sse:
        await context.route("**/wall/sse**", lambda route: route.abort())
    page = await context.new_page()
    await page.goto(f"{url}/login?next=/wall")
    await submit_login(page, "maria", PASSWORD)
    await page.wait_for_selector("#wall-tiles", timeout=WAIT_MS)
    return page


async def transport(page: Page, expected: str) -> None:
    await page.wait_for_function(
        "t => window.taktWall && window.taktWall.transport === t", arg=expected, timeout=WAIT_MS
    )


async def set_status(url: str, equipment_id: int, status: str, *, password: str = PASSWORD) -> None:
    """As the manager, through the REST API: PATCH with If-Match."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        token = await http.post(
            "/api/v1/auth/token", json={"username": "maria", "password": password}
        )
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        current = await http.get(f"/api/v1/equipment/{equipment_id}", headers=auth)
        body: dict[str, Any] = {"status": status}
        if status != "available":
            body["expected_back"] = (clock.now() + timedelta(hours=3)).isoformat()
        response = await http.patch(
            f"/api/v1/equipment/{equipment_id}",
            headers={**auth, "If-Match": current.headers["etag"]},
            json=body,
        )
        assert response.status_code == 200, response.text


async def shows_down(page: Page, name: str) -> None:
    await page.wait_for_selector(f"#wall-down .rows li >> text={name}", timeout=WAIT_MS)


async def test_a_breakdown_appears_on_the_open_wall(
    browser: Browser, contexts: list[BrowserContext], served: Plant
) -> None:
    page = await open_wall(browser, contexts, served.url)
    await transport(page, "sse")
    assert await page.text_content("#wall-link") == "Live"
    assert await page.text_content("#tile-down .tile-value") == "0"
    await set_status(served.url, served.plant.mill, "down")
    await shows_down(page, "Mill 1")
    assert (await page.text_content("#tile-down .tile-value") or "").startswith("1")
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
    # Everything fits the screen: nothing scrolls, no panel overflows.
    overflowing = await page.evaluate(
        """() => [document.documentElement, ...document.querySelectorAll('.panel, .tile')]
              .filter(el => el.scrollHeight > el.clientHeight + 1).map(el => el.id || el.tagName)"""
    )
    assert overflowing == []


async def test_the_wall_polls_when_the_stream_is_blocked(
    browser: Browser, contexts: list[BrowserContext], served: Plant
) -> None:
    page = await open_wall(browser, contexts, served.url, block_sse=True)
    await transport(page, "polling")
    await set_status(served.url, served.plant.welder, "maintenance")
    await shows_down(page, "Weld cell 1")
    assert (await page.text_content("#wall-link") or "").startswith("Polling")


async def test_the_wall_climbs_back_to_the_stream_when_the_network_allows(
    browser: Browser, contexts: list[BrowserContext], served: Plant
) -> None:
    context = await browser.new_context(viewport=WALL)
    contexts.append(context)
    network = FlakyNetwork(context)
    await network.start()
    await network.block_streams("**/wall/sse**")
    page = await context.new_page()
    await page.goto(f"{served.url}/login?next=/wall")
    await submit_login(page, "maria", PASSWORD)
    await transport(page, "polling")
    await set_status(served.url, served.plant.mill, "down")
    await shows_down(page, "Mill 1")
    assert await page.evaluate("window.sseEvents.length") == 0  # it came by polling

    await network.allow_streams("**/wall/sse**")
    await transport(page, "sse")
    assert await page.text_content("#wall-link") == "Live"
    assert not await stream_carried(page, '<span class="name">Weld cell 1</span>')
    await set_status(served.url, served.plant.welder, "maintenance")
    await shows_down(page, "Weld cell 1")
    assert await stream_carried(page, '<span class="name">Weld cell 1</span>')
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_the_wall_picks_up_a_restarted_server_by_itself(
    browser: Browser, contexts: list[BrowserContext], plant: Plant
) -> None:
    port = free_port()
    server: dict[str, Any] = {
        "database_url": plant.database_url,
        "redis_url": None,
        "var_dir": plant.var_dir,
        "env": ENV,
    }
    with app_server(**server, port=port) as url:
        page = await open_wall(browser, contexts, url)
        await transport(page, "sse")
    # The server is gone; the wall notices, then a new process comes up on the same port.
    await page.wait_for_selector("#wall-link:not([data-state=live])", timeout=WAIT_MS)
    with app_server(**server, port=port):
        await set_status(url, plant.plant.mill2, "down")
        await shows_down(page, "Mill 2")
        await page.wait_for_selector("#wall-link[data-state=live]", timeout=WAIT_MS)
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_the_page_stays_the_same_size_over_many_updates(
    browser: Browser, contexts: list[BrowserContext], served: Plant
) -> None:
    page = await open_wall(browser, contexts, served.url)
    await transport(page, "sse")
    # Real updates from the server first: each one swaps the sections in place.
    for status in ("down", "available", "down", "available"):
        updates = await page.evaluate("window.taktWall.updates")
        await set_status(served.url, served.plant.mill, status)
        await page.wait_for_function(
            "n => window.taktWall.updates > n", arg=updates, timeout=WAIT_MS
        )
    sections = await page.evaluate(
        "fetch('/wall/poll?since=0').then(r => r.text())"
    )  # the whole wall, as a stream event carries it
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable")

    async def apply(times: int) -> tuple[int, float]:
        await page.evaluate(
            "([html, n]) => { for (let i = 0; i < n; i++) window.taktWall.apply(html); }",
            [sections, times],
        )
        await cdp.send("HeapProfiler.collectGarbage")
        metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
        heap = next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize")
        return await page.evaluate("document.getElementsByTagName('*').length"), heap

    nodes, heap = await apply(20)
    nodes_after, heap_after = await apply(200)
    assert nodes_after == nodes
    assert heap_after < heap + 2_000_000, (heap, heap_after)
    assert await page.locator("#wall-tiles").count() == 1


async def a_mornings_work(database_url: str, var_dir: Path) -> None:
    """Some of today's booked tasks done over the last hours, so the charts have history."""
    services = await _services(database_url, var_dir)
    now = clock.now()
    try:
        async with change(services, SYSTEM, "test.morning") as tx:
            query = select(t.Task).join(t.Assignment).order_by(t.Assignment.start).limit(24)
            for index, task in enumerate((await tx.session.execute(query)).scalars()):
                task.status = "done"
                task.actual_end = now - timedelta(minutes=7 + 27 * index)
                task.actual_start = task.actual_end - timedelta(minutes=task.duration_minutes)
    finally:
        await services.db.dispose()


async def test_the_demo_wall(
    browser: Browser,
    contexts: list[BrowserContext],
    sqlite_database_url: str,
    live_server: Callable[..., str],
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    """The small demo plant on the wall (docs/screenshots/wall.png)."""
    load_demo(sqlite_database_url, tmp_path)
    await a_mornings_work(sqlite_database_url, tmp_path)
    url = live_server(database_url=sqlite_database_url, var_dir=tmp_path, env=ENV)
    async with httpx.AsyncClient(base_url=url) as http:
        token = await http.post(
            "/api/v1/auth/token", json={"username": "maria", "password": "takt-demo"}
        )
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        machines = (await http.get("/api/v1/equipment?limit=100", headers=auth)).json()["items"]
    context = await browser.new_context(viewport=WALL)
    contexts.append(context)
    page = await context.new_page()
    await page.goto(f"{url}/login?next=/wall")
    await submit_login(page, "maria", "takt-demo")
    await transport(page, "sse")
    lathe = next(machine for machine in machines if "lathe" in machine["name"].lower())
    await set_status(url, lathe["id"], "down", password="takt-demo")
    await shows_down(page, lathe["name"])
    assert await page.locator("#wall-machines .chart .row").count() > 0
    await page.screenshot(path=str(screenshot_dir / "wall.png"))
