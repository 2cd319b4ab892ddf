"""The board's rows in a real Chromium: bars come in blocks of rows as the board scrolls,
double bookings stack in sub-lanes, rows show unavailable time and their load, and
bars say which order they belong to."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from board_plant import BoardPlant, build_board_plant
from playwright.async_api import Browser, Page
from sqlalchemy import update
from test_board_browser import api_task, grab, open_board

from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.board import ROW_PAGE
from app.services.context import SYSTEM, Services
from app.services.write_path import change
from app.settings import Settings

pytestmark = pytest.mark.browser

EXTRA_MILLS = ROW_PAGE + 16  # rows past the first block: their bars come as the board scrolls


async def many_rows(database_url: str, var_dir: Path) -> tuple[BoardPlant, int]:
    """The board plant with more mills than one block of rows, Drill placed on the last one,
    an order reference and customer on Bracket 4711, and downtime on Mill 1 from 12 to 14."""
    settings = Settings(database_url=database_url, redis_url=None, var_dir=var_dir)
    services = Services(settings=settings, db=Database(database_url), hub=MemoryHub())
    try:
        plant = await build_board_plant(services)
        async with change(services, SYSTEM, "test.rows") as tx:
            mills = [
                t.Equipment(name=f"Mill z{index:02d}", type="cnc_mill", capabilities=["milling"])
                for index in range(EXTRA_MILLS)
            ]
            tx.session.add_all(mills)
            await tx.session.flush()
            last = mills[-1].id
            tx.session.add(
                t.Assignment(
                    schedule_id=tx.schedule_id,
                    task_id=plant.drill,
                    operator_id=plant.olga,
                    equipment_id=last,
                    start=plant.at(13),
                    end=plant.at(13, 45),
                    assigned_at=plant.at(0),
                )
            )
            await tx.session.execute(
                update(t.Job)
                .where(t.Job.id == plant.job)
                .values(reference="SO-4711", customer="Keller AG")
            )
            tx.session.add(
                t.EquipmentDowntime(equipment_id=plant.mill, start=plant.at(12), end=plant.at(14))
            )
        return plant, last
    finally:
        await services.db.dispose()


@pytest.fixture
async def board(sqlite_database_url: str, live_server: Any, tmp_path: Path) -> tuple[str, Any]:
    plant, _ = await many_rows(sqlite_database_url, tmp_path / "var")
    # Three bars: a plant this small comes whole unless told to come by rows.
    base_url = live_server(
        database_url=sqlite_database_url,
        var_dir=tmp_path / "var",
        env={"TAKT_BOARD_WHOLE_UP_TO": "0"},
    )
    return base_url, plant


async def bar_box(page: Page, task_id: int) -> dict[str, float]:
    box = await page.locator(f"#bar-{task_id}").bounding_box()
    assert box is not None
    return box


async def test_bars_of_rows_out_of_sight_come_as_the_board_scrolls(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    rows = await page.locator("#rows .row-label").count()
    assert rows == 3 + EXTRA_MILLS
    assert await page.locator(f"#bar-{plant.cut}").count() == 1
    # Drill sits on the last row, past the first block: not in the page.
    assert await page.locator(f"#bar-{plant.drill}").count() == 0
    await page.locator("#gantt-body").evaluate("body => { body.scrollTop = body.scrollHeight; }")
    await page.wait_for_selector(f"#bar-{plant.drill}")
    drill = page.locator(f"#bar-{plant.drill}")
    last_mill = page.locator("#rows .row-label", has_text=f"Mill z{EXTRA_MILLS - 1:02d}")
    assert await drill.get_attribute("data-row") == await last_mill.get_attribute("data-row")
    assert int(await drill.get_attribute("data-row") or 0) >= ROW_PAGE
    assert await drill.is_visible()


async def test_a_conflict_go_to_fetches_the_row_of_a_bar_not_drawn_yet(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    assert await page.locator(f"#bar-{plant.drill}").count() == 0
    await page.evaluate(f"window.taktBoard.showTask('{plant.drill}')")
    await page.wait_for_selector(f"#bar-{plant.drill}")
    await page.wait_for_function(
        f"() => document.activeElement && document.activeElement.id === 'bar-{plant.drill}'"
    )


async def test_double_booked_bars_stack_in_sub_lanes(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    # Drill onto Mill 1 over Cut (08:00-09:00), through the board's own drop.
    await page.evaluate(f"window.taktBoard.showTask('{plant.drill}')")
    await page.wait_for_selector(f"#bar-{plant.drill}")
    await page.locator("#gantt-body").evaluate("body => { body.scrollTop = 0; }")
    version = (await api_task(base_url, plant.drill))["version"]
    answer = await page.evaluate(
        """async ([id, version, mill, olga, start, end]) => {
             const body = new URLSearchParams({version, equipment_id: mill, operator_id: olga,
               starts_at: start, ends_at: end});
             const csrf = document.querySelector('meta[name="csrf-token"]').content;
             const r = await fetch(`/board/tasks/${id}/place?` + window.taktBoard.currentView(),
               {method: "POST", body, headers: {"X-CSRF-Token": csrf, "HX-Request": "true"}});
             window.taktBoard.apply(await r.text());
             return r.status;
           }""",
        [
            plant.drill,
            version,
            plant.mill,
            plant.olga,
            plant.at(8, 30).isoformat(),
            plant.at(9, 15).isoformat(),
        ],
    )
    assert answer == 200
    await page.wait_for_function(
        f"""() => {{
              const bar = document.getElementById('bar-{plant.drill}');
              return bar && bar.dataset.row === '0' && bar.classList.contains('stacked');
            }}"""
    )
    cut, drill = await bar_box(page, plant.cut), await bar_box(page, plant.drill)
    # Both in row 0, side by side in time, one above the other: neither hides the other.
    assert drill["x"] < cut["x"] + cut["width"]
    assert (
        cut["y"] + cut["height"] <= drill["y"] + 0.5
        or drill["y"] + drill["height"] <= cut["y"] + 0.5
    )
    assert await page.locator(f"#bar-{plant.cut}.stacked").count() == 1


async def test_rows_show_unavailable_time_and_a_drop_there_is_refused_before_release(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    # Mill 1's downtime (12:00-14:00) is shaded behind row 0.
    shading = page.locator('.row-off[style*="--row:0"]')
    assert await shading.count() == 1
    painted = await shading.evaluate("el => getComputedStyle(el).backgroundImage")
    assert "linear-gradient" in painted
    load = page.locator("#rows .row-label").first.locator(".row-load")
    assert "booked" in (await load.get_attribute("aria-label") or "")
    # Operators: Olga and Omar work 06-22, so the night is shaded on both rows.
    await page.click("text=Operators")
    await page.wait_for_selector('#board-main[data-rows="operator"]')
    assert await page.locator(".row-off").count() == 2
    # A drag of Cut into the night shows the refusal on the ghost before the button is let go.
    await grab(page, f"#bar-{plant.cut}")
    box = await page.locator("#bars").bounding_box()
    assert box is not None
    night = box["x"] + (plant.at(23) - plant.day) / timedelta(days=1) * box["width"]
    rows = await page.locator("#rows .row-label").count()
    y = box["y"] + 0.5 * box["height"] / rows
    await page.mouse.move(night, y, steps=10)
    await page.wait_for_selector(".bar.ghost.preview-error")
    assert "outside" in (await page.locator(".ghost-tip").inner_text()).lower()
    await page.keyboard.press("Escape")


async def test_bars_name_their_order_and_customer(browser: Browser, board: Any) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    cut = page.locator(f"#bar-{plant.cut}")
    assert await cut.locator(".bar-ref").inner_text() == "SO-4711"
    assert "SO-4711" in (await cut.get_attribute("aria-label") or "")
    assert "Keller AG" in (await cut.get_attribute("aria-label") or "")
    await cut.click()
    await page.wait_for_selector("#detail .detail-ref")
    assert await page.locator("#detail .detail-ref").inner_text() == "SO-4711"


async def test_the_job_filter_finds_a_job_as_one_types_with_the_keyboard_alone(
    browser: Browser, board: Any
) -> None:
    """The job filter suggests jobs by reference, name or customer (not a list of
    every job); Enter shows only that job's tasks and the filter names the job, also
    after a reload; Enter on an empty filter shows every job again."""
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    assert await page.locator('select[name="job"]').count() == 0
    box = page.locator("#job-filter-input")
    await box.focus()
    await page.keyboard.type("keller")
    hit = page.locator("#job-filter-results .job-hit").first
    await hit.wait_for()
    assert await hit.locator(".hit-label").inner_text() == "SO-4711 · Bracket 4711"
    assert "Keller AG" in await hit.locator(".hit-detail").inner_text()
    assert await box.get_attribute("aria-expanded") == "true"
    await page.keyboard.press("Enter")
    await page.wait_for_selector(f'#board-main[data-view*="job={plant.job}"]')
    assert f"job={plant.job}" in page.url
    assert await page.locator(f"#bar-{plant.cut}").count() == 1
    assert await box.input_value() == "SO-4711 · Bracket 4711"
    assert await page.evaluate("document.activeElement.id") == "job-filter-input"
    await page.reload()
    await page.wait_for_selector(f"#bar-{plant.cut}")
    assert await box.input_value() == "SO-4711 · Bracket 4711"
    # Back to every job: empty the filter, Enter.
    await box.focus()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Backspace")
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "() => !/[?&]job=\\d/.test(document.getElementById('board-main').dataset.view)"
    )
    assert f"job={plant.job}" not in page.url
    assert await box.input_value() == ""


async def test_bars_too_thin_to_read_are_grouped_and_a_click_opens_their_day(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    # Drill right after Cut on Mill 1 (09:00-09:45): in a week, two bars of a few pixels.
    version = (await api_task(base_url, plant.drill))["version"]
    status = await page.evaluate(
        """async ([id, version, mill, olga, start, end]) => {
             const body = new URLSearchParams({version, equipment_id: mill, operator_id: olga,
               starts_at: start, ends_at: end});
             const csrf = document.querySelector('meta[name="csrf-token"]').content;
             const r = await fetch(`/board/tasks/${id}/place?` + window.taktBoard.currentView(),
               {method: "POST", body, headers: {"X-CSRF-Token": csrf, "HX-Request": "true"}});
             return r.status;
           }""",
        [
            plant.drill,
            version,
            plant.mill,
            plant.olga,
            plant.at(9).isoformat(),
            plant.at(9, 45).isoformat(),
        ],
    )
    assert status == 200
    await page.goto(f"{base_url}/board?zoom=week")
    group = page.locator('#bars .bar-group[data-row="0"]')
    await group.wait_for()
    assert (await group.locator(".group-count").inner_text()) == "2"
    assert (await group.locator(".group-ref").inner_text()) == "SO-4711"
    assert "SO-4711" in (await group.get_attribute("title") or "")
    assert await page.locator(f"#bar-{plant.cut}.in-group").count() == 1
    await group.click()
    await page.wait_for_selector('#board-main[data-view*="zoom=day"]')
    # The day shows each bar with its words, no group.
    await page.wait_for_selector(f"#bar-{plant.drill}:not(.in-group)")
    assert await page.locator(f"#bar-{plant.cut} .bar-ref").inner_text() == "SO-4711"
    assert await page.locator("#bars .bar-group").count() == 0


async def test_ctrl_wheel_zooms_in_steps_then_to_the_next_level(
    browser: Browser, board: Any
) -> None:
    base_url, plant = board
    page = await open_board(browser, base_url, plant)
    await page.goto(f"{base_url}/board?zoom=week")
    await page.wait_for_selector(f"#bar-{plant.cut}")
    narrow = await bar_box(page, plant.cut)
    layer = await page.locator("#bars").bounding_box()
    assert layer is not None
    await page.mouse.move(narrow["x"] + 2, narrow["y"] + narrow["height"] / 2)
    for step in (1, 2, 3):
        await page.keyboard.down("Control")
        await page.mouse.wheel(0, -100)
        await page.keyboard.up("Control")
        await page.wait_for_function(f"() => window.taktBoard.zoomStep() === {step}")
    widened = await page.locator("#bars").bounding_box()
    assert widened is not None and widened["width"] > 2.9 * layer["width"]
    # Cut stays under the pointer while the week widens around it.
    wide = await bar_box(page, plant.cut)
    assert wide["x"] - 3 <= narrow["x"] + 2 <= wide["x"] + wide["width"] + 3
    # One more: the day holding the moment under the pointer, Cut's day.
    await page.keyboard.down("Control")
    await page.mouse.wheel(0, -100)
    await page.keyboard.up("Control")
    await page.wait_for_selector('#board-main[data-view*="zoom=day"]')
    await page.wait_for_selector(f"#bar-{plant.cut}")
    assert await page.evaluate("window.taktBoard.zoomStep()") == 0
