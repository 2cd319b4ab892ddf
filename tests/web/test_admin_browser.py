"""The administrators' pages in a real headless Chromium, against a real server.

The admin disables Anna while her board is open in another browser: her board
leaves for the login form by itself, with no reload. The admin makes an API
key and copies its secret, verifies the audit trail, and erases an operator's
personal data, all from the keyboard; every page passes axe's serious and
critical rules. No timing assertions: every wait is for a condition.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from axe import grave_violations
from board_plant import PASSWORD, build_board_plant
from browser_login import submit_login
from playwright.async_api import Browser, Page, TimeoutError as PlaywrightTimeout

from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services import resources
from app.services.context import SYSTEM, Services
from app.settings import Settings

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1300, "height": 900}


@pytest.fixture
async def server(sqlite_database_url: str, live_server: Any, tmp_path: Path) -> tuple[str, int]:
    """A server on the board plant, plus an operator with no work (Ines, to erase)."""
    settings = Settings(database_url=sqlite_database_url, redis_url=None, var_dir=tmp_path / "var")
    services = Services(settings=settings, db=Database(sqlite_database_url), hub=MemoryHub())
    try:
        await build_board_plant(services)
        ines = await resources.create_operator(
            services=services,
            actor=SYSTEM,
            data={"name": "Ines Brandt", "skills": [], "shifts": [], "exceptions": []},
        )
    finally:
        await services.db.dispose()
    base_url = live_server(database_url=sqlite_database_url, var_dir=tmp_path / "var")
    return base_url, int(ines["id"])


async def chain_finding(admin: Page) -> str:
    """The verify card's finding once the queued check has one (its text, whatever it
    found); on a timeout, what the card showed meanwhile."""
    try:
        await admin.locator("#verify-result").wait_for()
    except PlaywrightTimeout:
        card = await admin.locator("#verify").inner_text()
        raise AssertionError(f"the check found nothing in time; the card shows: {card}") from None
    return await admin.locator("#verify-result").inner_text()


async def open_as(browser: Browser, base_url: str, who: str, path: str) -> Page:
    page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
    page.set_default_timeout(15_000)
    await page.goto(f"{base_url}{path}")
    await submit_login(page, who, PASSWORD)
    return page


async def test_an_admin_disables_a_scheduler_and_her_open_board_signs_out(
    browser: Browser, server: tuple[str, int], screenshot_dir: Path
) -> None:
    base_url, _ = server
    anna = await open_as(browser, base_url, "anna", "/board")
    await anna.wait_for_selector("#board-main")
    await anna.wait_for_function("window.taktLive && window.taktLive.transport === 'websocket'")
    admin = await open_as(browser, base_url, "admin", "/admin/users")
    row = admin.locator("tr[data-username='anna']")
    await row.get_by_text("1 session").wait_for()
    assert await grave_violations(admin) == []
    await admin.screenshot(path=str(screenshot_dir / "admin-users.png"), full_page=True)

    await row.get_by_role("button", name="Disable anna").focus()
    async with admin.expect_navigation():
        await admin.keyboard.press("Enter")
    await admin.get_by_text("anna is disabled").wait_for()
    assert await row.locator(".chip.off").inner_text() == "disabled"

    # Anna's board was told by the server and went to the login form on its own.
    await anna.wait_for_url("**/login**")
    assert await anna.locator('input[name="username"]').is_visible()
    await submit_login(anna, "anna", PASSWORD)
    assert "/login" in anna.url  # she cannot sign in again while disabled


async def test_an_admin_makes_a_key_verifies_the_trail_and_erases_personal_data(
    browser: Browser, server: tuple[str, int], screenshot_dir: Path
) -> None:
    base_url, ines = server
    admin = await open_as(browser, base_url, "admin", "/admin/api-keys")
    await admin.get_by_label("Name (which system uses it)").fill("ERP connector")
    await admin.get_by_label("Expires after (days; empty: never)").fill("90")
    async with admin.expect_navigation():
        await admin.get_by_label("Expires after (days; empty: never)").press("Enter")
    secret = await admin.locator("#new-key-secret").inner_text()
    assert len(secret) > 30
    assert await grave_violations(admin) == []
    await admin.screenshot(path=str(screenshot_dir / "admin-api-keys.png"), full_page=True)
    await admin.goto(f"{base_url}/admin/api-keys")
    assert secret not in await admin.content()

    await admin.get_by_role("link", name="Audit trail").click()
    await admin.get_by_role("button", name="Verify the chain").click()
    # The check runs on the queue; the card follows it (htmx) to its finding.
    assert (await chain_finding(admin)).startswith("The chain is intact")
    await admin.get_by_label("Entity", exact=True).fill("api_key")
    async with admin.expect_navigation():
        await admin.get_by_label("Entity", exact=True).press("Enter")
    assert await admin.locator("#audit-entries tbody tr").count() == 1
    assert "api_key.created" in await admin.locator("#audit-entries").inner_text()
    assert await grave_violations(admin) == []
    await admin.screenshot(path=str(screenshot_dir / "admin-audit.png"), full_page=True)

    await admin.get_by_role("link", name="Personal data").click()
    await admin.get_by_label("Find an operator by name").fill("brandt")
    async with admin.expect_navigation():
        await admin.get_by_label("Find an operator by name").press("Enter")
    row = admin.locator(f"#operator-{ines}")
    async with admin.expect_download() as download:
        await row.get_by_role("link", name="Export JSON of Ines Brandt").click()
    saved = Path(await (await download.value).path())
    exported = await asyncio.to_thread(saved.read_text, encoding="utf-8")
    assert '"Ines Brandt"' in exported
    assert await grave_violations(admin) == []
    await admin.screenshot(path=str(screenshot_dir / "admin-personal-data.png"), full_page=True)

    await row.get_by_role("checkbox").check()
    async with admin.expect_navigation():
        await row.get_by_role("button", name="Erase the personal data of Ines Brandt").click()
    await admin.get_by_text(f"The personal data of operator {ines} is erased.").wait_for()
    assert await admin.locator(f"#operator-{ines}").count() == 0  # "brandt" finds no one now

    await admin.get_by_role("link", name="Audit trail").click()
    await admin.get_by_role("button", name="Verify the chain").click()
    assert (await chain_finding(admin)).startswith("The chain is intact")
