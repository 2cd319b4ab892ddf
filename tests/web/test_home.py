"""The front door, in a real browser against a real server."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser


async def test_the_home_page_links_to_the_api(
    browser: Browser, sqlite_database_url: str, live_server: object, screenshot_dir: Path
) -> None:
    base_url = live_server(database_url=sqlite_database_url)  # type: ignore[operator]
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    await page.goto(base_url + "/")
    assert await page.title() == "Takt"
    await page.click("text=API description (OpenAPI)")
    assert '"openapi"' in await page.content()
    await page.go_back()
    await page.screenshot(path=str(screenshot_dir / "home.png"))
