"""A real headless Chromium (Debian's package) driven by Playwright.

Playwright's own browser download does not work here, so the browser is the
system's `chromium`, started with flags that keep it off the network.
A missing chromium fails the run instead of skipping (see `unavailable`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from needs import unavailable
from playwright.async_api import Browser, async_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = os.environ.get("TAKT_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    unavailable("chromium is not installed (apt-get install chromium)")


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """docs/screenshots/ when TAKT_UPDATE_SCREENSHOTS=1, else a temporary folder."""
    if os.environ.get("TAKT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()
