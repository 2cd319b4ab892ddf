"""Two schedulers on the board in real browsers: what one does, the other sees, live.

Each test says which transport carried the change (window.taktLive.transport
and #live-status): WebSocket normally, SSE when WebSockets are blocked,
polling when SSE is blocked too. No timing assertions: every wait is for a
condition, with a timeout.
"""

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
    """`await sign_in("anna", block=...)` -> that user's board in a browser context of its own."""
    contexts: list[BrowserContext] = []

    async def open_board(username: str, *, block: tuple[str, ...] = ()) -> Page:
        context = await browser.new_context(viewport={"width": 1400, "height": 800})
        contexts.append(context)
        if "websocket" in block:
            # As a proxy that refuses upgrades would: every socket closes unopened.
            async def refuse(ws: WebSocketRoute) -> None:
                await ws.close(code=1011, reason="blocked by the test")

            await context.route_web_socket("**/board/ws", refuse)
        if "sse" in block:
            await context.route("**/board/sse**", lambda route: route.abort())
        page = await context.new_page()
        board_path = "/board?" + urlencode(board.plant.view)
        await page.goto(board.url + "/login?next=" + quote(board_path, safe=""))
        await submit_login(page, username, PASSWORD)
        await page.wait_for_selector("#bars", timeout=WAIT_MS)
        return page

    yield open_board
    for context in contexts:
        await context.close()


async def transport_of(page: Page, expected: str) -> str:
    await page.wait_for_function(
        "expected => window.taktLive && window.taktLive.transport === expected",
        arg=expected,
        timeout=WAIT_MS,
    )
    return str(await page.get_attribute("#live-status", "data-transport"))


async def bar_starts_at(page: Page, task_id: int, start: str) -> None:
    await page.wait_for_selector(f'#bar-{task_id}[data-start="{start}"]', timeout=WAIT_MS)


async def test_a_drag_on_one_board_appears_on_the_other(board: Board, sign_in: SignIn) -> None:
    anna_token = await board.token("anna")
    cut = board.plant.tasks[0]
    await board.move(anna_token, cut, 8)
    anna, ben = await sign_in("anna"), await sign_in("ben")
    assert await transport_of(anna, "websocket") == "websocket"
    assert await transport_of(ben, "websocket") == "websocket"
    assert await ben.text_content("#live-status") == "Live (WebSocket)"
    await ben.wait_for_selector("#presence >> text=Anna Amsel", timeout=WAIT_MS)
    revision = int(await ben.get_attribute("#board-revision", "data-revision") or 0)

    bar = await anna.wait_for_selector(f"#bar-{cut}")
    box = await bar.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await anna.mouse.move(x, y)
    await anna.mouse.down()
    await anna.mouse.move(x + 20, y, steps=4)
    # While Anna drags, Ben sees a marker on that bar, with her name.
    marker = await ben.wait_for_selector(f"#bar-{cut}[data-dragged-by]", timeout=WAIT_MS)
    assert await marker.get_attribute("data-dragged-by") == "Anna Amsel"
    await anna.mouse.move(x + 120, y, steps=8)
    await anna.mouse.up()

    # The move reaches Ben's board without a reload, and the marker goes.
    await ben.wait_for_function(
        "([id, start]) => document.getElementById('bar-' + id).dataset.start !== start",
        arg=[cut, board.plant.at(8).isoformat()],
        timeout=WAIT_MS,
    )
    await ben.wait_for_selector(f"#bar-{cut}:not([data-dragged-by])", timeout=WAIT_MS)
    new_revision = int(await ben.get_attribute("#board-revision", "data-revision") or 0)
    assert new_revision > revision
    assert await ben.evaluate("window.taktLive.revision") == new_revision
    assert await ben.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_the_board_falls_back_to_sse_when_websockets_are_blocked(
    board: Board, sign_in: SignIn
) -> None:
    anna = await board.token("anna")
    cut = board.plant.tasks[0]
    ben = await sign_in("ben", block=("websocket",))
    assert await transport_of(ben, "sse") == "sse"
    assert await ben.text_content("#live-status") == "Live (SSE)"
    await board.move(anna, cut, 11)
    await bar_starts_at(ben, cut, board.plant.at(11).isoformat())


async def test_the_board_falls_back_to_polling_when_sse_is_blocked_too(
    board: Board, sign_in: SignIn
) -> None:
    anna = await board.token("anna")
    cut = board.plant.tasks[0]
    ben = await sign_in("ben", block=("websocket", "sse"))
    assert await transport_of(ben, "polling") == "polling"
    await board.move(anna, cut, 13)
    await bar_starts_at(ben, cut, board.plant.at(13).isoformat())
    assert (await ben.text_content("#live-status") or "").startswith("Polling")
