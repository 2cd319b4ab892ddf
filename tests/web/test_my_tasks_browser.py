"""My tasks on a phone-sized Chromium (360 x 740): online, offline, and live both ways.

Olga starts and completes a task, goes offline, completes another (it waits
in the outbox), comes back online and the server has it exactly once. A
scheduler books her a new task: it appears without a reload. She reports a
breakdown: a scheduler's board shows the machine down and the conflict
without a reload. An action tapped offline is recorded at the tap, not at the
sync. No timing assertions: every wait is for a condition (the one sleep
keeps a phone offline for a while).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from browser_login import submit_login
from playwright.async_api import Browser, BrowserContext, Page
from realtime.live_world import (
    PASSWORD,
    Board,
    board_fixture as board_fixture,
    plant_fixture as plant_fixture,
    var_dir_fixture as var_dir_fixture,
)
from sqlalchemy import func, select

from app import clock
from app.db import tables as t
from app.db.session import Database

pytestmark = pytest.mark.browser

WAIT_MS = 15_000
PHONE = {"width": 360, "height": 740}
OFFLINE_S = 4


async def book(board: Board, token: str, task_id: int, start: datetime) -> None:
    await board.book(token, task_id, start, start + timedelta(hours=1))


async def status_of(board: Board, token: str, task_id: int) -> str:
    response = await board.http.get(
        f"/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {token}"}
    )
    status: str = response.json()["status"]
    return status


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


async def sign_in(
    browser: Browser,
    contexts: list[BrowserContext],
    board: Board,
    who: str,
    path: str,
    **kw: object,
) -> Page:
    context = await browser.new_context(**kw)  # type: ignore[arg-type]
    contexts.append(context)
    page = await context.new_page()
    await page.goto(board.url + "/login?next=" + quote(path, safe=""))
    await submit_login(page, who, PASSWORD)
    return page


async def outbox_emptied(page: Page) -> None:
    """Until the phone's outbox is empty (bounded). `evaluate` awaits the outbox's promise."""
    for _ in range(WAIT_MS // 100):
        if await page.evaluate("window.taktMy.outbox().then(o => o.length)") == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still queued: {await page.evaluate('window.taktMy.outbox()')}")


async def card_status(page: Page, task_id: int, status: str) -> None:
    await page.wait_for_selector(f'#my-task-{task_id}[data-status="{status}"]', timeout=WAIT_MS)


async def test_an_operator_works_her_tasks_on_a_phone_online_and_offline(
    board: Board,
    browser: Browser,
    contexts: list[BrowserContext],
    sqlite_database_url: str,
    screenshot_dir: Path,
) -> None:
    anna = await board.token("anna")
    cut, drill, deburr = board.plant.tasks
    now = clock.now().replace(second=0, microsecond=0)
    await book(board, anna, cut, now + timedelta(minutes=30))
    await book(board, anna, drill, now + timedelta(minutes=90))

    phone = await sign_in(
        browser, contexts, board, "olga", "/my", viewport=PHONE, has_touch=True, is_mobile=True
    )
    await phone.wait_for_selector(f"#my-task-{cut}", timeout=WAIT_MS)
    assert phone.url.endswith("/my")
    await phone.wait_for_function(
        "() => window.taktLive && window.taktLive.transport === 'websocket'", timeout=WAIT_MS
    )
    assert await phone.evaluate("navigator.serviceWorker.ready.then(() => true)")
    # Nothing wider than the phone: no sideways scrolling.
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Online: start and complete the first task.
    await phone.click(f'#my-task-{cut} button[data-action="start"]')
    await card_status(phone, cut, "in_progress")
    await phone.click(f'#my-task-{cut} button[data-action="complete"]')
    await card_status(phone, cut, "done")
    await phone.click(f'#my-task-{drill} button[data-action="start"]')
    await card_status(phone, drill, "in_progress")
    await phone.wait_for_selector("#my-outbox .my-ok", timeout=WAIT_MS)
    # The start was answered before the phone goes offline: the outbox is empty.
    await outbox_emptied(phone)
    await phone.screenshot(path=str(screenshot_dir / "my-tasks.png"), full_page=True)

    # Offline: completing the second task waits in the outbox, on screen.
    await phone.context.set_offline(True)
    await phone.wait_for_selector("#my-connection:not([hidden])", timeout=WAIT_MS)
    await phone.click(f'#my-task-{drill} button[data-action="complete"]')
    await phone.wait_for_selector("#my-outbox .my-queued", timeout=WAIT_MS)
    assert await phone.get_attribute(f"#my-task-{drill}", "data-queued") == "complete"
    assert len(await phone.evaluate("window.taktMy.outbox()")) == 1
    await phone.screenshot(path=str(screenshot_dir / "my-tasks-offline.png"), full_page=True)
    assert await status_of(board, anna, drill) == "in_progress"

    # Back online: sent once, and the list shows it done.
    await phone.context.set_offline(False)
    await phone.wait_for_selector("#my-outbox .my-queued", state="detached", timeout=WAIT_MS)
    await phone.wait_for_selector("#my-outbox .my-ok >> text=Drill", timeout=WAIT_MS)
    await card_status(phone, drill, "done")
    assert await phone.get_attribute(f"#my-task-{drill}", "data-queued") is None
    assert await phone.evaluate("window.taktMy.outbox()") == []
    assert await status_of(board, anna, drill) == "done"
    db = Database(sqlite_database_url)
    try:
        async with db.read() as session:
            completions = await session.scalar(
                select(func.count()).where(
                    t.AuditEntry.action == "task.complete", t.AuditEntry.entity_id == drill
                )
            )
    finally:
        await db.dispose()
    assert completions == 1

    # A scheduler books her another task: it appears without a reload.
    await book(board, anna, deburr, now + timedelta(minutes=150))
    await phone.wait_for_selector(f"#my-task-{deburr}", timeout=WAIT_MS)
    assert await phone.evaluate("performance.getEntriesByType('navigation').length") == 1

    # She reports a breakdown of the mill: the scheduler's board shows it live.
    # The next 24 hours from the hour before now: deburr is in view at any time of day.
    hour = now.replace(minute=0) - timedelta(hours=1)
    view = urlencode({"start": hour.isoformat(), "zoom": "day", "rows": "equipment"})
    scheduler = await sign_in(
        browser, contexts, board, "anna", "/board?" + view, viewport={"width": 1400, "height": 800}
    )
    await scheduler.wait_for_selector(f"#bar-{deburr}", timeout=WAIT_MS)
    await scheduler.wait_for_function(
        "() => window.taktLive && window.taktLive.transport === 'websocket'", timeout=WAIT_MS
    )
    await phone.click(f"#my-task-{deburr} .my-breakdown summary")
    await phone.fill(f"#my-task-{deburr} textarea", "Spindle bearing noise")
    await phone.click(f"#my-task-{deburr} .my-breakdown-form button")
    await phone.wait_for_selector(f"#my-task-{deburr}.machine-out", timeout=WAIT_MS)
    await scheduler.wait_for_selector(".row-label.status-down", timeout=WAIT_MS)
    await scheduler.wait_for_selector("#conflicts >> text=equipment unavailable", timeout=WAIT_MS)
    assert await scheduler.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_a_queued_action_on_a_task_given_away_meanwhile_is_shown_not_dropped(
    board: Board, browser: Browser, contexts: list[BrowserContext]
) -> None:
    anna = await board.token("anna")
    cut = board.plant.tasks[0]
    now = clock.now().replace(second=0, microsecond=0)
    await book(board, anna, cut, now + timedelta(minutes=30))
    phone = await sign_in(browser, contexts, board, "olga", "/my", viewport=PHONE)
    await phone.wait_for_selector(f"#my-task-{cut}", timeout=WAIT_MS)
    await phone.context.set_offline(True)
    await phone.click(f'#my-task-{cut} button[data-action="start"]')
    await phone.wait_for_selector("#my-outbox .my-queued", timeout=WAIT_MS)
    # Meanwhile the scheduler takes the task off her list (back to the tray).
    auth = {"Authorization": f"Bearer {anna}"}
    current = await board.http.get(f"/api/v1/tasks/{cut}", headers=auth)
    removed = await board.http.delete(
        f"/api/v1/tasks/{cut}/assignment", headers={**auth, "If-Match": current.headers["etag"]}
    )
    assert removed.status_code == 200, removed.text
    await phone.context.set_offline(False)
    notice = await phone.wait_for_selector("#my-outbox .my-refused", timeout=WAIT_MS)
    assert "no longer assigned to you" in (await notice.text_content() or "")
    await phone.wait_for_selector(f"#my-task-{cut}", state="detached", timeout=WAIT_MS)
    assert await status_of(board, anna, cut) == "pending"


async def test_an_action_tapped_offline_is_recorded_when_tapped_not_when_sent(
    board: Board, browser: Browser, contexts: list[BrowserContext]
) -> None:
    anna = await board.token("anna")
    cut = board.plant.tasks[0]
    await book(board, anna, cut, clock.now().replace(second=0, microsecond=0) + timedelta(hours=1))
    phone = await sign_in(browser, contexts, board, "olga", "/my", viewport=PHONE)
    await phone.wait_for_selector(f"#my-task-{cut}", timeout=WAIT_MS)
    await phone.context.set_offline(True)
    before = clock.now()
    await phone.click(f'#my-task-{cut} button[data-action="start"]')
    await phone.wait_for_selector("#my-outbox .my-queued", timeout=WAIT_MS)
    tapped = clock.now()
    await asyncio.sleep(OFFLINE_S)  # the phone stays offline a while: the sync comes later
    back = clock.now()
    await phone.context.set_offline(False)
    await phone.wait_for_selector("#my-outbox .my-queued", state="detached", timeout=WAIT_MS)
    await phone.wait_for_selector("#my-outbox .my-ok", timeout=WAIT_MS)
    response = await board.http.get(
        f"/api/v1/tasks/{cut}", headers={"Authorization": f"Bearer {anna}"}
    )
    started = datetime.fromisoformat(response.json()["actual_start"])
    # The browser's clock and ours are the machine's (or the same faked one): a second's slack.
    assert before - timedelta(seconds=1) <= started <= tapped + timedelta(seconds=1)
    assert started < back - timedelta(seconds=OFFLINE_S - 1)
