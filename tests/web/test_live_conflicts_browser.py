"""A move re-sends only the conflicts it touched: the mover's board and a colleague's
board still end as a fresh page of the same plan shows it (conflicts list in order,
counters, bars and their marks), in real browsers over a real WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from playwright.async_api import Browser, BrowserContext, Page
from realtime.live_world import (
    PASSWORD,
    Board,
    board_fixture as board_fixture,
    plant_fixture as plant_fixture,
    var_dir_fixture as var_dir_fixture,
)

pytestmark = pytest.mark.browser

WAIT_MS = 15_000

SignIn = Callable[[str], Awaitable[Page]]

# What a board shows of the plan: the panel's items in order, the counters, each
# bar's place and mark.
STATE_JS = """() => ({
  conflicts: [...document.querySelectorAll('#conflicts li.conflict')].map(
    li => li.dataset.taskIds + ' | ' + li.querySelector('.conflict-message').textContent),
  count: document.getElementById('conflicts-count').textContent.trim(),
  empty: document.getElementById('conflicts-empty').hidden,
  counters: document.getElementById('counters').innerText.replace(/\\s+/g, ' ').trim(),
  bars: [...document.querySelectorAll('#bars .bar:not(.ghost)')].map(
    b => [b.id, b.dataset.start, b.dataset.row, b.classList.contains('has-error'),
          b.classList.contains('has-warning')].join(' ')).sort(),
})"""

# As board.js's drop does: post the place with the bar's version, apply the answer.
PLACE_JS = """async ([id, fields]) => {
  const bar = document.getElementById('bar-' + id);
  const body = new URLSearchParams({...fields, version: bar.dataset.version});
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
  const response = await fetch('/board/tasks/' + id + '/place?' + window.taktBoard.currentView(), {
    method: 'POST', body, credentials: 'same-origin',
    headers: {'X-CSRF-Token': csrf, 'HX-Request': 'true'}});
  window.taktBoard.apply(await response.text());
  return response.status;
}"""


@pytest.fixture
async def sign_in(browser: Browser, board: Board) -> AsyncIterator[SignIn]:
    contexts: list[BrowserContext] = []

    async def open_board(username: str) -> Page:
        context = await browser.new_context(viewport={"width": 1400, "height": 800})
        contexts.append(context)
        page = await context.new_page()
        board_path = "/board?" + urlencode(board.plant.view)
        await page.goto(board.url + "/login?next=" + quote(board_path, safe=""))
        await page.fill('input[name="username"]', username)
        await page.fill('input[name="password"]', PASSWORD)
        await page.click('button[type="submit"]')
        await page.wait_for_function("() => window.taktBoard && window.taktLive", timeout=WAIT_MS)
        await page.wait_for_function(
            "() => window.taktLive.transport === 'websocket'", timeout=WAIT_MS
        )
        return page

    yield open_board
    for context in contexts:
        await context.close()


async def state_at(page: Page, revision: int) -> dict[str, Any]:
    await page.wait_for_function(
        "revision => window.taktBoard.lastRevision() >= revision", arg=revision, timeout=WAIT_MS
    )
    state: dict[str, Any] = await page.evaluate(STATE_JS)
    return state


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

    seen_conflicts = []
    # Drill into Cut (double-booked, before its predecessor ends), Deburr onto both,
    # then each back to its own hour: every step makes or clears conflicts.
    for task, hour, minute in ((drill, 8, 30), (deburr, 8, 0), (drill, 10, 0), (deburr, 12, 0)):
        await place(task, hour, minute)
        revision = await board.revision(token)
        fresh = await sign_in("ben")
        expected = await state_at(fresh, revision)
        assert await state_at(anna, revision) == expected
        assert await state_at(ben, revision) == expected
        seen_conflicts.append(len(expected["conflicts"]))
    # The steps did make conflicts (several at once) and clear them all.
    assert max(seen_conflicts) >= 3 and seen_conflicts[-1] == 0
