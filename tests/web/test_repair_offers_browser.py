"""Repairs offered beside an absence and a task running late, in real Chromium.

Olga (the only miller) is booked on Cut in her shift; while Anna's board is
open, Maria gives Olga time off over it (the API, as the plant pages do): the
conflicts panel's "outside shift" row naming her appears live and offers
"Review repair", and the draft moves Cut out of her absence. Applied, the row
is gone.

Cut started two hours ago and was booked to end an hour ago; Weld, after it,
is booked to start soon. The panel lists Cut under "Running late" with
"Review repair" (the draft moves Weld after Cut's new end), and Cut's task
detail offers the same repair with the minutes it still needs. A task that
runs past its booked end while the board is open joins the list by itself:
no change to the plan says so, time does. No timing assertions: every wait
is for a condition.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from board_plant import PASSWORD, BoardPlant, build_board_plant
from playwright.async_api import Browser, Page
from test_repair_browser import sign_in

from app import clock
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services import execution, tasks
from app.services.context import SYSTEM, Services
from app.settings import Settings

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1440, "height": 900}


def _services(database_url: str, var_dir: Path) -> Services:
    settings = Settings(database_url=database_url, redis_url=None, var_dir=var_dir)
    return Services(settings=settings, db=Database(database_url), hub=MemoryHub())


def _minute() -> datetime:
    return clock.now().replace(second=0, microsecond=0)


async def cut_in_olgas_shift(database_url: str, var_dir: Path) -> tuple[BoardPlant, datetime]:
    """Cut (Olga, Mill 1) from an hour from now, or from her next shift (06-22 UTC) if that
    is later: nothing is wrong with it yet. The plant and Cut's start."""
    services = _services(database_url, var_dir)
    try:
        plant = await build_board_plant(services)
        start = _minute() + timedelta(hours=1)
        if not 6 <= start.hour < 21:
            morning = start.replace(hour=6, minute=0)
            start = morning if start.hour < 6 else morning + timedelta(days=1)
        await tasks.assign_task(
            services=services,
            actor=SYSTEM,
            task_id=plant.cut,
            expected_version=1,
            placement=tasks.Placement(plant.olga, plant.mill, start, start + timedelta(hours=1)),
        )
        return plant, start
    finally:
        await services.db.dispose()


async def give_time_off(base_url: str, operator_id: int, start: datetime, end: datetime) -> None:
    """Maria (manager) gives the operator time off through the API, as the plant pages do."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        token = await http.post(
            "/api/v1/auth/token", json={"username": "maria", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        found = await http.get(f"/api/v1/operators/{operator_id}", headers=headers)
        away = {"start": start.isoformat(), "end": end.isoformat(), "kind": "time_off"}
        done = await http.patch(
            f"/api/v1/operators/{operator_id}",
            json={"exceptions": [away]},
            headers={**headers, "If-Match": found.headers["etag"]},
        )
        assert done.status_code == 200, done.text


async def cut_running_late(
    database_url: str, var_dir: Path, *, booked_end: datetime | None = None
) -> BoardPlant:
    """Cut (an hour long) started when booked, booked to end 1 h ago (or at `booked_end`);
    Weld (after Cut) booked from 15 min on."""
    services = _services(database_url, var_dir)
    try:
        plant = await build_board_plant(services)
        end = booked_end or _minute() - timedelta(hours=1)
        began = end - timedelta(hours=1)
        await tasks.assign_task(
            services=services,
            actor=SYSTEM,
            task_id=plant.cut,
            expected_version=1,
            placement=tasks.Placement(plant.olga, plant.mill, began, began + timedelta(hours=1)),
        )
        weld = _minute() + timedelta(minutes=15)
        await tasks.assign_task(
            services=services,
            actor=SYSTEM,
            task_id=plant.weld,
            expected_version=1,
            placement=tasks.Placement(plant.omar, plant.welder, weld, weld + timedelta(minutes=90)),
        )
        await execution.run_task_action(
            services=services, actor=SYSTEM, task_id=plant.cut, action="start", at=began
        )
        return plant
    finally:
        await services.db.dispose()


async def open_board(browser: Browser, base_url: str, plant: BoardPlant) -> Page:
    start = _minute().replace(minute=0) - timedelta(hours=3)
    view = urlencode({"start": start.isoformat(), "zoom": "day", "rows": "equipment"})
    board = await sign_in(browser, base_url, "anna", "/board?" + view, viewport=VIEWPORT)
    await board.wait_for_selector(f"#bar-{plant.cut}")
    await board.wait_for_function("window.taktLive && window.taktLive.transport === 'websocket'")
    return board


async def draft_lists(board: Page) -> list[str]:
    await board.wait_for_selector("#optimizer[data-state=draft]")
    await board.wait_for_selector(".draft-ghost", state="attached")
    return await board.locator("#optimizer .draft-group").all_text_contents()


async def test_an_absent_operator_is_offered_a_repair_on_the_conflict_naming_them(
    browser: Browser,
    sqlite_database_url: str,
    live_server: Any,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    plant, cut_start = await cut_in_olgas_shift(sqlite_database_url, tmp_path / "var")
    base_url = live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var")
    board = await open_board(browser, base_url, plant)
    offers_on_cut = f'#conflicts li.offers-repair [data-focus-task="{plant.cut}"]'
    assert await board.locator(offers_on_cut).count() == 0

    # Olga is given time off over Cut while Anna looks: the board hears of it live.
    back = cut_start + timedelta(hours=2)
    await give_time_off(base_url, plant.olga, cut_start - timedelta(minutes=30), back)
    row = board.locator("#conflicts li.conflict.offers-repair", has_text="Olga Petrova").filter(
        has=board.locator(f'[data-focus-task="{plant.cut}"]')
    )
    await row.wait_for()
    assert await board.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert "outside shift" in (await row.locator(".conflict-type").text_content() or "")
    await board.screenshot(path=str(screenshot_dir / "repair-offer-absence.png"))
    await row.locator(".review-repair").click()
    lists = await draft_lists(board)
    assert any("Cut" in found for found in lists), lists

    await board.locator("#optimizer button", has_text="Apply").click()
    await board.wait_for_selector("#optimizer[data-state=applied]")
    # Cut is out of her absence: no conflict row offers its repair any more.
    await board.wait_for_selector(offers_on_cut, state="detached")


async def test_a_task_running_late_is_offered_a_repair_in_the_panel_and_its_detail(
    browser: Browser,
    sqlite_database_url: str,
    live_server: Any,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    plant = await cut_running_late(sqlite_database_url, tmp_path / "var")
    base_url = live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var")
    board = await open_board(browser, base_url, plant)

    late = board.locator(f'#conflicts .running-late-task[data-task-id="{plant.cut}"]')
    await late.wait_for()
    assert "Cut" in (await late.text_content() or "")
    await board.screenshot(path=str(screenshot_dir / "repair-offer-running-late.png"))
    await late.locator(".review-repair").click()
    lists = await draft_lists(board)
    assert any("Weld" in found for found in lists), lists
    await board.locator("#optimizer button", has_text="Discard").click()
    await board.wait_for_selector("#optimizer[data-state=options]")
    await board.click("[data-optimizer-close]")

    # The task's detail says it runs late and asks how long it still needs.
    await board.locator(f"#bar-{plant.cut}").click()
    offer = board.locator("#detail .running-late-offer")
    await offer.wait_for()
    await offer.locator("input[name=minutes]").fill("120")
    await board.screenshot(path=str(screenshot_dir / "repair-offer-running-late-detail.png"))
    await offer.locator(".review-repair").click()
    lists = await draft_lists(board)
    assert any("Weld" in found for found in lists), lists

    # A task not running late has no such offer.
    await board.locator(f"#bar-{plant.weld}").click()
    await board.wait_for_selector(f'#detail[data-task-id="{plant.weld}"]')
    assert await board.locator("#detail .running-late-offer").count() == 0


async def test_a_task_that_runs_past_its_end_while_the_board_is_open_is_listed_live(
    browser: Browser, sqlite_database_url: str, live_server: Any, tmp_path: Path
) -> None:
    # Cut, in progress, is booked to end a few seconds from now; nothing else changes.
    end = clock.now().replace(microsecond=0) + timedelta(seconds=15)
    plant = await cut_running_late(sqlite_database_url, tmp_path / "var", booked_end=end)
    base_url = live_server(
        database_url=sqlite_database_url,
        var_dir=tmp_path / "var",
        env={"TAKT_RUNNING_LATE_CHECK_S": "1"},
    )
    board = await open_board(browser, base_url, plant)
    late = board.locator(f'#conflicts .running-late-task[data-task-id="{plant.cut}"]')
    shown = await late.count()
    if clock.now() < end:  # (a slow start may already be past it: then only the rest holds)
        assert shown == 0

    # Its end passes: the board lists it, with its repair, without a change or a reload.
    await late.wait_for(timeout=30_000)
    assert "Cut" in (await late.text_content() or "")
    assert await late.locator(".review-repair").count() == 1
    assert await board.evaluate("performance.getEntriesByType('navigation').length") == 1
