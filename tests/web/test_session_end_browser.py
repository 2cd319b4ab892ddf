"""An administrator disables a user (or changes their role) and watches their open board
sign out, in a real browser: the live connection is closed at once and the page goes
to the login form — over the WebSocket, and over SSE where WebSockets are blocked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, urlencode

import pytest
from browser_login import submit_login
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute
from realtime.live_world import (
    PASSWORD,
    Board,
    board_fixture as board_fixture,
    plant_fixture as plant_fixture,
    var_dir_fixture as var_dir_fixture,
)

pytestmark = pytest.mark.browser

WAIT_MS = 15_000

SignIn = Callable[..., Awaitable[Page]]


@pytest.fixture
async def sign_in(browser: Browser, board: Board) -> AsyncIterator[SignIn]:
    contexts: list[BrowserContext] = []

    async def open_board(username: str, *, transport: str = "websocket") -> Page:
        context = await browser.new_context(viewport={"width": 1400, "height": 800})
        contexts.append(context)
        if transport == "sse":

            async def refuse(ws: WebSocketRoute) -> None:
                await ws.close(code=1011, reason="blocked by the test")

            await context.route_web_socket("**/board/ws", refuse)
        page = await context.new_page()
        board_path = "/board?" + urlencode(board.plant.view)
        await page.goto(board.url + "/login?next=" + quote(board_path, safe=""))
        await submit_login(page, username, PASSWORD)
        await page.wait_for_function(
            "t => window.taktLive && window.taktLive.transport === t",
            arg=transport,
            timeout=WAIT_MS,
        )
        return page

    yield open_board
    for context in contexts:
        await context.close()


async def test_a_disabled_users_open_board_goes_to_login(board: Board, sign_in: SignIn) -> None:
    anna, ben = await sign_in("anna"), await sign_in("ben")
    changed = await board.change_user("anna", active=False)
    assert changed.status_code == 200, changed.text
    await anna.wait_for_url("**/login**", timeout=WAIT_MS)
    assert await anna.is_visible('input[name="username"]')
    # Ben's board is still live and still his.
    assert await ben.get_attribute("#live-status", "data-state") == "live"
    await ben.reload()
    assert "/board" in ben.url


async def test_a_role_change_signs_out_a_board_following_over_sse(
    board: Board, sign_in: SignIn
) -> None:
    anna = await sign_in("anna", transport="sse")
    changed = await board.change_user("anna", role="manager")
    assert changed.status_code == 200, changed.text
    await anna.wait_for_url("**/login**", timeout=WAIT_MS)
    await submit_login(anna, "anna", PASSWORD)
    # Signed in again with the new role: the front door sends a manager to the wall.
    await anna.goto(board.url + "/")
    assert anna.url.endswith("/wall")
