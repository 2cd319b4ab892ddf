"""The board at plant scale (`make bench-board`): page loads and moves per view, server and browser.

    .venv/bin/python scripts/bench_board.py [--moves 40] [--loads 8] [--no-browser]
    .venv/bin/python scripts/bench_board.py --database-url sqlite+aiosqlite:///x.db --skip-load

Makes a throwaway SQLite database with `takt demo --size large` (as
scripts/bench.py does), starts uvicorn on it and, over loopback with httpx:

- **page**: `GET /board?<view>` per view, first load and then `--loads` more
  (median, p95), with the page's size and the bars it carries;
- **rows**: `GET /board/rows` for the next block of rows (what scrolling costs);
- **place**: `--moves` sequential `POST /board/tasks/{id}/place` per view, each a
  bar of the page moved by ±1 h on its own rows, as a drop does (the answer is
  the fragments board.js applies; "answer KB" is their median size);

then, unless `--no-browser`, in Debian's chromium (Playwright): a week by
equipment and a week by operator opened cold (navigation to load event,
DOM nodes, bars drawn, every long task), and a bar dragged in day and week
view (mouse-up to the bar settled in its new place).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench import app_env, load_plant, machine, uvicorn_server

from app.services.board import ROW_PAGE

VIEWS = ["zoom=hour", "zoom=shift", "zoom=day", "zoom=week", "zoom=week&rows=operator"]
BAR = re.compile(
    r'class="[^"]*movable[^"]*"[^>]*data-task-id="(\d+)" data-version="(\d+)" data-job-id="\d+" '
    r'data-operator-id="(\d+)" data-equipment-id="(\d+)" data-start="([^"]+)" data-end="([^"]+)"'
)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]


def pct(samples: list[float]) -> str:
    if not samples:
        return f"{'n/a':>7} {'n/a':>7}"  # no movable bar among the first rows of the view
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):7.1f} {p95:7.1f}"


async def log_in(client: httpx.AsyncClient) -> str:
    form = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    await client.post(
        "/login", data={"username": "anna", "password": "takt-demo", "csrf_token": csrf.group(1)}
    )
    page = await client.get("/board")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)


async def over_http(base_url: str, loads: int, moves: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        csrf = await log_in(client)
        headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
        print(
            f"{'view':26} {'first':>7} {'page ms (med p95)':>17} {'KB':>6} {'bars':>5} "
            f"{'rows ms':>8} {'place ms (med p95)':>19} {'answer KB':>9}"
        )
        rng = random.Random(11)
        for view in VIEWS:
            began = time.perf_counter()
            page = await client.get(f"/board?{view}")
            first = (time.perf_counter() - began) * 1000
            times = []
            for _ in range(loads):
                began = time.perf_counter()
                page = await client.get(f"/board?{view}")
                times.append((time.perf_counter() - began) * 1000)
            bars = BAR.findall(page.text)
            began = time.perf_counter()
            await client.get(f"/board/rows?{view}&first={ROW_PAGE}&count={ROW_PAGE}")
            rows = (time.perf_counter() - began) * 1000
            placed, sizes = [], []
            drawn = page.text.count('<div id="bar-')
            for _ in range(min(moves, len(bars))):
                task, version, operator, machine_id, start, end = bars.pop(rng.randrange(len(bars)))
                shift = timedelta(hours=rng.choice([-1, 1]))
                began = time.perf_counter()
                answer = await client.post(
                    f"/board/tasks/{task}/place?{view}",
                    headers=headers,
                    data={
                        "version": version,
                        "operator_id": operator,
                        "equipment_id": machine_id,
                        "starts_at": (datetime.fromisoformat(start) + shift).isoformat(),
                        "ends_at": (datetime.fromisoformat(end) + shift).isoformat(),
                    },
                )
                placed.append((time.perf_counter() - began) * 1000)
                assert answer.status_code == 200, answer.text[:200]
                sizes.append(len(answer.content) / 1024)
            print(
                f"{view:26} {first:7.1f} {pct(times):>17} {len(page.content) / 1024:6.0f} "
                f"{drawn:5d} {rows:8.1f} {pct(placed):>19} {statistics.median(sizes or [0]):9.1f}"
            )


async def in_browser(base_url: str, loads: int) -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=FLAGS
        )
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        await page.goto(f"{base_url}/login")
        await page.fill("input[name=username]", "anna")
        await page.fill("input[name=password]", "takt-demo")
        await page.click("button[type=submit]")
        await page.wait_for_url("**/board**")
        for view in ("zoom=week", "zoom=week&rows=operator"):
            for _ in range(loads):
                await page.goto(f"{base_url}/board?{view}", wait_until="load")
                await page.wait_for_timeout(1500)
                found = await page.evaluate(LOAD_FIGURES)
                print(f"browser {view:24} {found}")
        for view in ("zoom=day", "zoom=week"):
            await page.goto(f"{base_url}/board?{view}", wait_until="load")
            took = await drag_once(page)
            words = f"{took:.0f} ms" if took is not None else "no movable bar in sight"
            print(f"browser drag {view:19} mouse-up to settled: {words}")
        await browser.close()


LOAD_FIGURES = """() => new Promise(done => {
  const long = [];
  new PerformanceObserver(list => list.getEntries().forEach(e => long.push(Math.round(e.duration))))
    .observe({type: 'longtask', buffered: true});
  setTimeout(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    done({load_ms: Math.round(nav.loadEventEnd), html_kb: Math.round(nav.transferSize / 1024),
          dom_nodes: document.getElementsByTagName('*').length,
          bars: document.querySelectorAll('#bars .bar').length, long_tasks_ms: long});
  }, 200);
})"""


async def drag_once(page: Any) -> float | None:
    bars = page.locator("#bars .bar.movable:not(.in-group):not(.status-in_progress)")
    bar, box = None, None
    for index in range(await bars.count()):
        candidate, where = bars.nth(index), await bars.nth(index).bounding_box()
        if where and where["width"] >= 12 and 200 < where["y"] < 700:
            bar, box = candidate, where
            break
    if bar is None or box is None:  # a lightly booked first screen (e.g. assembly stations)
        return None
    task = await bar.get_attribute("data-task-id")
    before = await bar.get_attribute("data-start")
    x, y = box["x"] + min(8, box["width"] / 2), box["y"] + box["height"] / 2
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + 40, y, steps=6)
    await page.wait_for_selector(".bar.ghost:not(.preview-pending)")
    began = await page.evaluate("performance.now()")
    await page.mouse.up()
    await page.wait_for_function(
        """([id, before]) => { const b = document.getElementById('bar-' + id);
             return b && b.dataset.start !== before && !document.querySelector('.bar.ghost'); }""",
        arg=[task, before],
    )
    return float(await page.evaluate(f"performance.now() - {began}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=8)
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--browser-loads", type=int, default=3, help="week pages opened cold")
    parser.add_argument("--database-url")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="takt-bench-board-") as tmp:
        database_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        env = app_env(database_url, Path(tmp) / "var")
        if not args.skip_load:
            print("load:", load_plant(env), file=sys.stderr)
        print("machine:", machine())
        with uvicorn_server(env, Path(tmp) / "server.log") as (base_url, _pid):
            asyncio.run(over_http(base_url, args.loads, args.moves))
            if not args.no_browser:
                asyncio.run(in_browser(base_url, args.browser_loads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
