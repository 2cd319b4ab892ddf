"""Signing in through the login form in a real browser (imported by the browser tests).

`await submit_login(page, user, password)` fills the form the page shows and waits
for the page it leads to to have *loaded*: every deferred script has run, so a
click on a bar opens its detail and a key does what it says. (Waiting only for an
element of the next page is not enough: the board paints its bars before
`board.js` and the tools script have run, and a click in between is lost.)
"""

from __future__ import annotations

from playwright.async_api import Page


async def submit_login(page: Page, user: str, password: str) -> None:
    await page.fill('input[name="username"]', user)
    await page.fill('input[name="password"]', password)
    async with page.expect_navigation(wait_until="load"):
        await page.click('button[type="submit"]')
