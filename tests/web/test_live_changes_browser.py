"""A move re-sends only what it touched, and every open board still ends right.

In real browsers over a real WebSocket, the mover's board and a colleague's
board end as a fresh page of the same plan shows it: the conflicts list in
order, the counters, the bars and their marks (only the moved tasks' conflicts
are re-sent), and the load strips of the rows the move touched (only those).

The conflicts panel shows a page of PAGE items here (the plant has few), so a
board shows the first items of the list up to its "Show more", counts the rest,
and marks every conflict's bars; "Show more" (by keyboard) pages through the
rest, which then match the fresh page's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from browser_login import submit_login
from playwright.async_api import Browser, BrowserContext, Page
from realtime.live_world import (
    PASSWORD,
    Board,
    Plant,
    plant_fixture as plant_fixture,
    serve_board,
    var_dir_fixture as var_dir_fixture,
)

from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import SYSTEM, Services
from app.services.write_path import change

pytestmark = pytest.mark.browser

WAIT_MS = 15_000
# Conflicts the panel lists at first and per "Show more" (TAKT_BOARD_CONFLICTS_PAGE).
PAGE = 2

SignIn = Callable[[str], Awaitable[Page]]

# What a board shows of the plan: the panel's items in order, every listed conflict
# (its marks), "Show more", the counters, each bar's place and mark.
STATE_JS = """() => ({
  items: [...document.querySelectorAll('#conflicts li.conflict')].map(
    li => li.dataset.taskIds + ' | ' + li.querySelector('.conflict-message').textContent),
  shown: [...document.querySelectorAll('#conflict-list li.conflict')].map(li => li.dataset.order),
  listed: window.taktConflicts.orders(),
  through: document.getElementById('conflicts-more').dataset.through,
  more: document.getElementById('conflicts-more').hidden ? ''
    : document.getElementById('conflicts-more').innerText.replace(/\\s+/g, ' ').trim(),
  count: document.getElementById('conflicts-count').textContent.trim(),
  empty: document.getElementById('conflicts-empty').hidden,
  counters: document.getElementById('counters').innerText.replace(/\\s+/g, ' ').trim(),
  bars: [...document.querySelectorAll('#bars .bar:not(.ghost)')].map(
    b => [b.id, b.dataset.start, b.dataset.row, b.classList.contains('has-error'),
          b.classList.contains('has-warning')].join(' ')).sort(),
})"""

# As board.js's drop does: post the place with the bar's version, apply the answer.
PLACE_JS = """async ([id, fields]) => {
  const bar = document.getElementById('bar-' + id) || document.getElementById('tray-task-' + id);
  const body = new URLSearchParams({...fields, version: bar.dataset.version});
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
  const response = await fetch('/board/tasks/' + id + '/place?' + window.taktBoard.currentView(), {
    method: 'POST', body, credentials: 'same-origin',
    headers: {'X-CSRF-Token': csrf, 'HX-Request': 'true'}});
  window.taktBoard.apply(await response.text());
  return response.status;
}"""


@pytest.fixture
async def board(
    plant: Plant, sqlite_database_url: str, var_dir: Any, live_server: Any
) -> AsyncIterator[Board]:
    env = {"TAKT_BOARD_CONFLICTS_PAGE": str(PAGE)}
    async with serve_board(plant, sqlite_database_url, var_dir, live_server, **env) as served:
        yield served


@pytest.fixture
async def sign_in(browser: Browser, board: Board) -> AsyncIterator[SignIn]:
    contexts: list[BrowserContext] = []

    async def open_board(username: str) -> Page:
        context = await browser.new_context(viewport={"width": 1400, "height": 800})
        contexts.append(context)
        page = await context.new_page()
        board_path = "/board?" + urlencode(board.plant.view)
        await page.goto(board.url + "/login?next=" + quote(board_path, safe=""))
        await submit_login(page, username, PASSWORD)
        await page.wait_for_function("() => window.taktBoard && window.taktLive", timeout=WAIT_MS)
        await page.wait_for_function(
            "() => window.taktLive.transport === 'websocket'", timeout=WAIT_MS
        )
        return page

    yield open_board
    for context in contexts:
        await context.close()


@pytest.fixture
async def second_mill(board: Board) -> AsyncIterator[int]:
    """Mill 2 beside the plant's Mill 1 (a row the first moves leave alone)."""
    services = Services(
        settings=board.settings, db=Database(board.settings.database_url), hub=MemoryHub()
    )
    try:
        async with change(services, SYSTEM, "test.plant") as tx:
            mill = t.Equipment(name="Mill 2", type="cnc_mill", capabilities=["milling"])
            tx.session.add(mill)
            await tx.session.flush()
        yield mill.id
    finally:
        await services.db.dispose()


async def state_at(page: Page, revision: int) -> dict[str, Any]:
    await page.wait_for_function(
        "revision => window.taktBoard.lastRevision() >= revision", arg=revision, timeout=WAIT_MS
    )
    state: dict[str, Any] = await page.evaluate(STATE_JS)
    # The list shows the first of every listed conflict, up to "Show more"; the rest
    # are counted there.
    through, listed = state["through"], state["listed"]
    assert state["shown"] == [order for order in listed if not through or order <= through]
    rest = len(listed) - len(state["shown"])
    assert state["more"] == (f"Show {min(rest, PAGE)} more of {rest} not shown" if rest else "")
    return state


SAME = ("listed", "count", "empty", "counters", "bars")


async def show_all(page: Page) -> list[str]:
    """Every conflict item of the panel, after "Show more" (Enter on it) until none is left;
    each page puts the focus on its first item."""
    more = page.locator("#conflicts-more")
    while await more.is_visible():
        shown = await page.locator("#conflict-list li.conflict").count()
        await page.focus("[data-more-conflicts]")
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            """n => document.activeElement.closest('#conflict-list li.conflict') ===
                     document.querySelectorAll('#conflict-list li.conflict')[n]""",
            arg=shown,
            timeout=WAIT_MS,
        )
    items: list[str] = (await page.evaluate(STATE_JS))["items"]
    return items


async def test_both_boards_end_right_after_moves_that_make_and_clear_conflicts(
    board: Board, sign_in: SignIn
) -> None:
    plant = board.plant
    token = await board.token("anna")
    cut, drill, deburr = plant.tasks
    for task, hour in ((cut, 8), (drill, 10), (deburr, 12)):
        await board.move(token, task, hour)
    anna, ben = await sign_in("anna"), await sign_in("ben")

    async def place(task: int, hour: int, minute: int = 0) -> None:
        fields = {
            "operator_id": str(plant.olga),
            "equipment_id": str(plant.mill),
            "starts_at": plant.at(hour, minute).isoformat(),
            "ends_at": plant.at(hour + 1, minute).isoformat(),
        }
        assert await anna.evaluate(PLACE_JS, [task, fields]) == 200

    seen_conflicts, anna_had_more = [], []
    # Drill into Cut (double-booked, before its predecessor ends), Deburr onto both,
    # then each back to its own hour: every step makes or clears conflicts.
    for step, (task, hour, minute) in enumerate(
        ((drill, 8, 30), (deburr, 8, 0), (drill, 10, 0), (deburr, 12, 0))
    ):
        if step == 2:
            # Anna opens the board again: a first page with more to show, which the
            # next move changes live.
            anna = await sign_in("anna")
        await place(task, hour, minute)
        revision = await board.revision(token)
        fresh = await sign_in("ben")
        expected = await state_at(fresh, revision)
        for board_page in (anna, ben):
            state = await state_at(board_page, revision)
            assert {key: state[key] for key in SAME} == {key: expected[key] for key in SAME}
        anna_had_more.append(bool((await state_at(anna, revision))["more"]))
        # Ben pages through his whole list (Anna keeps hers at the first page): the
        # same items as the fresh page's, in the same order.
        assert await show_all(ben) == await show_all(fresh)
        seen_conflicts.append(len(expected["listed"]))
    # The steps did make conflicts (more than a page at once) and clear them all.
    assert max(seen_conflicts) > PAGE and seen_conflicts[-1] == 0
    # Anna's board, everything shown, got more conflicts than a page live: it shows a
    # page and counts the rest.
    assert seen_conflicts[1] > PAGE and anna_had_more[1], (anna_had_more, seen_conflicts)


MARK_STRIPS_JS = "() => document.querySelectorAll('.row-load').forEach(s => s.dataset.old = '1')"


async def strips(page: Page, revision: int, *machines: int) -> list[tuple[str | None, bool]]:
    """Each machine's load strip: its words, and whether it is a new element (re-sent)."""
    await state_at(page, revision)
    found = []
    for machine in machines:
        strip = page.locator(f"#row-load-{machine}")
        found.append(
            (await strip.get_attribute("aria-label"), await strip.get_attribute("data-old") is None)
        )
    return found


async def test_a_move_updates_the_load_strips_of_the_rows_it_touched_on_every_board(
    board: Board, sign_in: SignIn, second_mill: int
) -> None:
    plant = board.plant
    token = await board.token("anna")
    cut, drill, _ = plant.tasks
    await board.move(token, cut, 8)
    anna, ben = await sign_in("anna"), await sign_in("ben")
    mill, mill2 = plant.mill, second_mill

    async def place(task: int, machine: int, hour: int) -> int:
        fields = {
            "operator_id": str(plant.olga),
            "equipment_id": str(machine),
            "starts_at": plant.at(hour).isoformat(),
            "ends_at": plant.at(hour + 1).isoformat(),
        }
        for page in (anna, ben):
            await page.evaluate(MARK_STRIPS_JS)
        assert await anna.evaluate(PLACE_JS, [task, fields]) == 200
        return await board.revision(token)

    async def fresh_strips(revision: int) -> list[str | None]:
        page = await sign_in("ben")
        return [label for label, _ in await strips(page, revision, mill, mill2)]

    before = await fresh_strips(await board.revision(token))
    # Drill from the tray onto Mill 1: Mill 1's strip is re-sent and fuller, Mill 2's untouched.
    revision = await place(drill, mill, 10)
    after = await fresh_strips(revision)
    assert after[0] != before[0] and after[1] == before[1]
    for page in (anna, ben):
        assert await strips(page, revision, mill, mill2) == [(after[0], True), (after[1], False)]
    # Cut from Mill 1 to Mill 2: both rows it touched, the one it left too.
    revision = await place(cut, mill2, 12)
    moved = await fresh_strips(revision)
    assert moved[0] != after[0] and moved[1] != after[1]
    for page in (anna, ben):
        assert await strips(page, revision, mill, mill2) == [(moved[0], True), (moved[1], True)]


class HeldFrames:
    """Ben's WebSocket through Playwright: frames from the server pass, or wait while
    `hold` is on, as a frame late on a slow link does."""

    def __init__(self) -> None:
        self.hold = False
        self.waiting: list[str | bytes] = []
        self.socket: Any = None

    def route(self, socket: Any) -> None:
        self.socket = socket
        server = socket.connect_to_server()
        server.on_message(self.from_server)
        socket.on_message(server.send)

    def from_server(self, message: str | bytes) -> None:
        if self.hold:
            self.waiting.append(message)
        else:
            self.socket.send(message)

    def release(self) -> None:
        self.hold = False
        for message in self.waiting:
            self.socket.send(message)
        self.waiting.clear()


PAGE_IN_JS = "() => !document.querySelector('[data-more-conflicts]').disabled"
FOCUSED_JS = """() => { const item = document.activeElement.closest('#conflict-list li.conflict');
  return item ? item.dataset.order : null; }"""


async def screenshot_more(page: Page, folder: Path) -> None:
    """docs/screenshots/board-conflicts-more.png: the panel after one "Show more"."""
    await page.focus("[data-more-conflicts]")
    await page.keyboard.press("Enter")
    await page.wait_for_function(PAGE_IN_JS, timeout=WAIT_MS)
    assert len((await page.evaluate(STATE_JS))["shown"]) == 2 * PAGE
    await page.locator("#conflicts").scroll_into_view_if_needed()
    await page.screenshot(path=str(folder / "board-conflicts-more.png"))


async def test_show_more_neither_skips_nor_repeats_when_a_change_comes_between_pages(
    board: Board, sign_in: SignIn, browser: Browser, screenshot_dir: Path
) -> None:
    """Ben's board shows a first page; a move takes conflicts out of the list, before
    and after the last item he sees, and its frame is late; "Show more" then lists the
    items that now follow that last item (by offset it skipped one), and once the
    frame is in his board is the fresh page's."""
    plant = board.plant
    token = await board.token("anna")
    cut, drill, deburr = plant.tasks
    for task in (cut, drill, deburr):  # all three at 08:00 on Mill 1 and Olga: 8 conflicts
        await board.move(token, task, 8)
    frames = HeldFrames()
    context = await browser.new_context(viewport={"width": 1400, "height": 800})
    try:
        await context.route_web_socket(re.compile(r"/board/ws"), frames.route)
        ben = await context.new_page()
        board_path = "/board?" + urlencode(plant.view)
        await ben.goto(board.url + "/login?next=" + quote(board_path, safe=""))
        await submit_login(ben, "ben", PASSWORD)
        await ben.wait_for_function(
            "() => window.taktLive && window.taktLive.transport === 'websocket'", timeout=WAIT_MS
        )
        before = await state_at(ben, await board.revision(token))
        await screenshot_more(await sign_in("anna"), screenshot_dir)
        through = before["through"]
        assert len(before["shown"]) == PAGE and len(before["listed"]) > PAGE

        frames.hold = True
        revision = await board.move(token, deburr, 12)  # Deburr away: its conflicts go
        fresh = await state_at(await sign_in("ben"), revision)
        gone = set(before["listed"]) - set(fresh["listed"])
        # Some of what Ben sees is gone, so the items after his last one moved up.
        assert gone & set(before["shown"]) and through in gone
        following = [order for order in fresh["listed"] if order > through][:PAGE]
        assert following, fresh

        await ben.focus("[data-more-conflicts]")
        await ben.keyboard.press("Enter")
        await ben.wait_for_function(PAGE_IN_JS, timeout=WAIT_MS)
        shown = (await ben.evaluate(STATE_JS))["shown"]
        assert [order for order in shown if order > through] == following
        assert await ben.evaluate(FOCUSED_JS) == following[0]
        assert len(shown) == len(set(shown))
        assert await ben.evaluate("window.taktBoard.lastRevision()") < revision  # still late

        frames.release()
        late = await state_at(ben, revision)
        assert {key: late[key] for key in SAME} == {key: fresh[key] for key in SAME}
        assert late["shown"] == fresh["listed"][: len(late["shown"])] and late["shown"]
    finally:
        await context.close()
