"""A whole-plant draft (7,000+ changes) applied while two schedulers watch, in real browsers.

The large demo (10,200 tasks, ~7,000 in the tray) behind a real server, on
SQLite and on PostgreSQL; Anna and Ben each have today's board open over a
WebSocket. A draft of the optimizer's "All open jobs" shape is applied
through the API: one revision reaches both boards, and without a reload
their trays no longer list the tasks it scheduled, the counter agrees, the
moved bars stand where the draft put them, and Ben can drag one of them at
once (the board knows the versions the apply gave them).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from browser_login import submit_login
from playwright.async_api import Browser, Page
from servers import load_demo
from sqlalchemy import func, select
from whole_plant_draft import whole_plant_draft

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import Services
from app.settings import Settings

pytestmark = pytest.mark.browser

WAIT_MS = 30_000
PASSWORD = "takt-demo"
# A drop that was saved: green, or amber when the plan has a conflict there now.
SAVED = "#notice.notice-ok, #notice.notice-warning"


async def open_board(browser: Browser, base_url: str, user: str, view: str) -> Page:
    context = await browser.new_context(viewport={"width": 1440, "height": 860})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(f"{base_url}/board?{view}")
    await submit_login(page, user, PASSWORD)
    await page.wait_for_selector("#board-main")
    await page.wait_for_function("window.taktLive && window.taktLive.transport === 'websocket'")
    # Set on the page: a reload would lose it (the test proves there was none).
    await page.evaluate("window.sameDocument = true")
    return page


async def draft_of(database_url: str, tmp_path: Path) -> tuple[int, set[int]]:
    """The stored draft's id, and the booked tasks it moves."""
    settings = Settings(database_url=database_url, redis_url=None, var_dir=tmp_path)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        draft_id, new, moved = await whole_plant_draft(services, clock.now())
        assert new + moved > 7_000
        async with services.db.read() as session:
            bases = await session.execute(
                select(t.DraftTask.task_id).where(
                    t.DraftTask.schedule_id == draft_id, t.DraftTask.before.is_not(None)
                )
            )
            return draft_id, {task_id for (task_id,) in bases}
    finally:
        await services.db.dispose()


async def unscheduled_left(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with database.read() as session:
            live = select(t.Schedule.id).where(t.Schedule.kind == "live").scalar_subquery()
            placed = select(t.Assignment.task_id).where(t.Assignment.schedule_id == live)
            found = await session.scalar(
                select(func.count())
                .select_from(t.Task)
                .where(t.Task.status == "pending", t.Task.id.not_in(placed))
            )
            return int(found or 0)
    finally:
        await database.dispose()


async def tray_ids(page: Page) -> set[int]:
    ids = await page.eval_on_selector_all(
        "#tray-list .tray-task", "items => items.map(item => Number(item.dataset.taskId))"
    )
    return set(ids)


async def bar_ids(page: Page) -> set[int]:
    ids = await page.eval_on_selector_all(
        "#bars .bar:not(.ghost)", "bars => bars.map(bar => Number(bar.dataset.taskId))"
    )
    return set(ids)


async def test_a_whole_plant_draft_reaches_every_open_board_without_a_reload(
    browser: Browser,
    database_url: str,
    live_server: Any,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    assert "tasks done" in load_demo(database_url, tmp_path, "large")
    base_url = live_server(database_url=database_url, var_dir=tmp_path)
    draft_id, moved = await draft_of(database_url, tmp_path)
    hour = clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    view = urlencode({"start": hour.isoformat(), "zoom": "day", "rows": "equipment"})
    anna = await open_board(browser, base_url, "anna", view)
    ben = await open_board(browser, base_url, "ben", view)
    listed = await tray_ids(ben)
    assert listed, "the large demo's tray lists tasks"
    in_view = sorted((await bar_ids(ben)) & moved)
    assert in_view, "some bars in today's view are among those the draft moves"
    before = int(await ben.get_attribute("#board-revision", "data-revision") or 0)
    old_start = await ben.get_attribute(f"#bar-{in_view[0]}", "data-start")

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        token = await http.post(
            "/api/v1/auth/token", json={"username": "anna", "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        applied = await http.post(f"/api/v1/drafts/{draft_id}/apply", headers=auth)
    assert applied.status_code == 200, applied.text
    revision = applied.json()["revision"]
    assert revision == before + 1

    left = await unscheduled_left(database_url)
    for page in (anna, ben):
        await page.wait_for_function(
            "r => Number(document.getElementById('board-revision').dataset.revision) >= r",
            arg=revision,
        )
        assert await page.evaluate("window.sameDocument") is True
        # The tray no longer lists what the draft scheduled, and its counter agrees.
        assert not (await tray_ids(page)) & listed
        assert await page.inner_text("#tray-total") == str(left)
        moved_bar = page.locator(f"#bar-{in_view[0]}")
        assert await moved_bar.get_attribute("data-start") != old_start
    await ben.screenshot(path=str(screenshot_dir / "board-after-whole-plant-apply.png"))

    # Ben drags a bar the draft moved at once: his board holds its new version.
    await ben.focus(f"#bar-{in_view[0]}")
    await ben.keyboard.press("ArrowRight")
    await ben.wait_for_selector(".bar.ghost")
    await ben.keyboard.press("Enter")
    # Saved (a warning when the plan now has a conflict there), not refused as stale.
    await ben.wait_for_selector(SAVED)
    assert "changed by" not in (await ben.inner_text("#notice"))
