"""The front door sends each person to their screen, in a real browser against a real server."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser


async def test_the_front_door_leads_to_login_which_points_integrators_to_the_api(
    browser: Browser, sqlite_database_url: str, live_server: object, screenshot_dir: Path
) -> None:
    base_url = live_server(database_url=sqlite_database_url)  # type: ignore[operator]
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    await page.goto(base_url + "/")
    assert page.url == base_url + "/login"
    await page.screenshot(path=str(screenshot_dir / "login.png"))
    await page.click("text=/openapi.json")
    assert '"openapi"' in await page.content()
