"""Pages that had to fall back climb back to the WebSocket by themselves, without a reload.

The board opens where WebSockets are refused: it falls back to SSE and still
follows another scheduler's change. Then the network lets sockets through:
the board tries the socket again on its own, resumes it from the page's
revision, closes the stream, and the next change arrives over the socket. A
change made while the new socket has resumed but not yet answered is applied
once, by the socket, not by the stream that was still open. An operator's My
tasks, polling where sockets and streams are both blocked, climbs back to the
socket when they are let through. (The wall, which has no socket, climbs back
from polling to SSE: test_wall_browser.py.) No timing assertions: every wait
is for a condition, with a timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from browser_login import submit_login
from flaky_network import FlakyNetwork, stream_carried, streams_open
from playwright.async_api import Browser, Page
from realtime.live_world import (
    PASSWORD,
    Board,
    board_fixture as board_fixture,
    plant_fixture as plant_fixture,
    var_dir_fixture as var_dir_fixture,
)

from app import clock

pytestmark = pytest.mark.browser

WAIT_MS = 15_000


@pytest.fixture
async def network(browser: Browser) -> AsyncIterator[FlakyNetwork]:
    """Ben's browser, on a network that refuses WebSockets until the test allows them."""
    context = await browser.new_context(viewport={"width": 1400, "height": 800})
    network = FlakyNetwork(context)
    network.sockets_allowed = False
    await network.start(sockets="**/board/ws")
    yield network
    await context.close()


async def open_board(board: Board, network: FlakyNetwork) -> Page:
    page = await network.context.new_page()
    board_path = "/board?" + urlencode(board.plant.view)
    await page.goto(board.url + "/login?next=" + quote(board_path, safe=""))
    await submit_login(page, "ben", PASSWORD)
    await page.wait_for_selector("#bars", timeout=WAIT_MS)
    return page


async def follows(page: Page, transport: str) -> None:
    await page.wait_for_function(
        "t => window.taktLive && window.taktLive.transport === t", arg=transport, timeout=WAIT_MS
    )


def starts_at(board: Board, hour: int) -> str:
    return f'data-start="{board.plant.at(hour).isoformat()}"'


async def bar_at(page: Page, task_id: int, board: Board, hour: int) -> None:
    await page.wait_for_selector(f"#bar-{task_id}[{starts_at(board, hour)}]", timeout=WAIT_MS)


async def test_the_board_climbs_back_to_websocket_when_the_network_allows(
    board: Board, network: FlakyNetwork
) -> None:
    anna = await board.token("anna")
    cut = board.plant.tasks[0]
    ben = await open_board(board, network)
    await follows(ben, "sse")

    # On SSE, the board follows a change, and keeps trying the socket meanwhile.
    await board.move(anna, cut, 11)
    await bar_at(ben, cut, board, 11)
    assert await stream_carried(ben, starts_at(board, 11))
    refused = network.sockets_refused
    await network.until(lambda: network.sockets_refused > refused)
    assert await ben.evaluate("window.taktLive.transport") == "sse"

    # The network allows sockets again: the board resumes one beside the stream.
    network.hold_sockets()
    network.sockets_allowed = True
    await network.until(lambda: network.sockets_resumed == 1)
    # A change now reaches the stream, which holds it back: the socket will send it.
    await board.move(anna, cut, 12)
    await ben.wait_for_function(
        "n => window.sseEvents.some(e => e.includes(n))", arg=starts_at(board, 12), timeout=WAIT_MS
    )
    assert await ben.get_attribute(f"#bar-{cut}", "data-start") == board.plant.at(11).isoformat()
    network.release_sockets()
    await follows(ben, "websocket")
    await bar_at(ben, cut, board, 12)
    assert network.socket_carried(starts_at(board, 12))
    assert await streams_open(ben) == 0
    assert await ben.text_content("#live-status") == "Live (WebSocket)"

    # With the stream closed, the next change can only come over the socket.
    await board.move(anna, cut, 13)
    await bar_at(ben, cut, board, 13)
    assert network.socket_carried(starts_at(board, 13))
    assert not await stream_carried(ben, starts_at(board, 13))
    revision = int(await ben.get_attribute("#board-revision", "data-revision") or 0)
    assert revision == await board.revision(anna)
    assert await ben.evaluate("window.taktLive.revision") == revision
    assert await ben.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_my_tasks_climb_from_polling_straight_back_to_websocket(
    board: Board, browser: Browser
) -> None:
    anna = await board.token("anna")
    cut, drill, _ = board.plant.tasks
    now = clock.now().replace(second=0, microsecond=0)
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    network = FlakyNetwork(context)
    network.sockets_allowed = False
    await network.start(sockets="**/my/ws")
    await network.block_streams("**/my/sse**")
    try:
        phone = await context.new_page()
        await phone.goto(board.url + "/login?next=" + quote("/my", safe=""))
        await submit_login(phone, "olga", PASSWORD)
        await follows(phone, "polling")
        await board.book(anna, cut, now + timedelta(minutes=30), now + timedelta(minutes=90))
        await phone.wait_for_selector(f"#my-task-{cut}", timeout=WAIT_MS)
        assert not network.socket_carried(f'id="my-task-{cut}"')

        # Both come back: the page tries the best first and ends on the socket.
        await network.allow_streams("**/my/sse**")
        network.sockets_allowed = True
        await follows(phone, "websocket")
        assert await streams_open(phone) == 0
        await board.book(anna, drill, now + timedelta(minutes=90), now + timedelta(minutes=150))
        await phone.wait_for_selector(f"#my-task-{drill}", timeout=WAIT_MS)
        assert network.socket_carried(f'id="my-task-{drill}"')
    finally:
        await context.close()
