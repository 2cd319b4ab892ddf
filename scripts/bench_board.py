"""The board at plant scale (`make bench-board`): page loads and moves per view, server and browser.

    .venv/bin/python scripts/bench_board.py [--moves 40] [--loads 8] [--drags 8] [--no-browser]
    .venv/bin/python scripts/bench_board.py --database-url sqlite+aiosqlite:///x.db --skip-load

Makes a throwaway SQLite database with `takt demo --size large` (as
scripts/bench.py does), starts uvicorn on it and, over loopback with httpx:

- **window**: per view, the window holding now, or when its first rows hold
  fewer than 10 movable bars (a Sunday afternoon, a night shift) the next
  window that does (`focus=` the window's end, up to 30 windows on), so every
  view has figures whatever the hour and weekday the bench runs at;
- **page**: `GET /board?<view>` per view, first load and then `--loads` more
  (median, p95), with the page's size and the bars it carries;
- **rows**: `GET /board/rows` for the next block of rows (what scrolling costs);
- **place**: `--moves` sequential `POST /board/tasks/{id}/place` per view, each a
  bar of the page moved by ±1 h on its own rows, as a drop does (the answer is
  the fragments board.js applies; "answer KB" is their median size);

then, unless `--no-browser`, in Debian's chromium (Playwright): a week by
equipment and a week by operator opened cold (navigation to load event,
DOM nodes, bars drawn, every long task), and in every view's window
`--drags` bars dragged one after the other (median, p95): mouse-up to the
bar settled in its new place ("settled"), mouse-up to the place answer's
last byte ("answer": the server and the wire), and their difference, what
the browser spends on the answer ("client").
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
from urllib.parse import urlencode

import httpx
from playwright.async_api import TimeoutError as PlaywrightTimeout

sys.path.insert(0, str(Path(__file__).parent))
from bench import app_env, load_plant, machine, uvicorn_server

from app.services.board import ROW_PAGE

VIEWS = ["zoom=hour", "zoom=shift", "zoom=day", "zoom=week", "zoom=week&rows=operator"]
BAR = re.compile(
    r'class="[^"]*movable[^"]*"[^>]*data-task-id="(\d+)" data-version="(\d+)" data-job-id="\d+" '
    r'data-operator-id="(\d+)" data-equipment-id="(\d+)" data-start="([^"]+)" data-end="([^"]+)"'
)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]


def short(query: str) -> str:
    """A view's query as printed: `focus=` (a moment) shortened to its day and hour."""
    return re.sub(r"focus=([0-9-]+)T([0-9]+)%3A.*", r"from \1 \2h", query)


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


MAIN = re.compile(r'id="board-main"[^>]*data-end="([^"]+)"')
ENOUGH_BARS = 10
WINDOWS_AHEAD = 30


async def window_with_bars(client: httpx.AsyncClient, view: str) -> tuple[str, str]:
    """The query of the first window of `view`, from the one holding now, whose first
    rows hold movable bars (ENOUGH_BARS, or the most seen), and its page."""
    query = view
    page = (await client.get(f"/board?{query}")).text
    best = (len(BAR.findall(page)), query, page)
    for _ in range(WINDOWS_AHEAD):
        if best[0] >= ENOUGH_BARS:
            break
        end = MAIN.search(page)
        if end is None:
            break
        query = f"{view}&{urlencode({'focus': end.group(1)})}"
        page = (await client.get(f"/board?{query}")).text
        best = max(best, (len(BAR.findall(page)), query, page), key=lambda seen: seen[0])
    return best[1], best[2]


async def over_http(base_url: str, loads: int, moves: int) -> dict[str, str]:
    """Page, rows and place figures per view; the window each view was measured on."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        csrf = await log_in(client)
        headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
        print(
            f"{'view':26} {'first':>7} {'page ms (med p95)':>17} {'KB':>6} {'bars':>5} "
            f"{'rows ms':>8} {'place ms (med p95)':>19} {'answer KB':>9}"
        )
        rng = random.Random(11)
        windows = {}
        for view in VIEWS:
            windows[view], _ = await window_with_bars(client, view)
            view = windows[view]
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
                f"{short(view):26} {first:7.1f} {pct(times):>17} {len(page.content) / 1024:6.0f} "
                f"{drawn:5d} {rows:8.1f} {pct(placed):>19} {statistics.median(sizes or [0]):9.1f}"
            )
        return windows


async def in_browser(base_url: str, loads: int, drags: int, windows: dict[str, str]) -> None:
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
        print(
            f"{'browser drag, mouse-up to':34} {'n':>3} {'settled (med p95)':>17} "
            f"{'answer (med p95)':>17} {'client (med p95)':>17}"
        )
        for view in VIEWS:
            query = windows.get(view, view)
            await page.goto(f"{base_url}/board?{query}", wait_until="load")
            await page.wait_for_timeout(1000)
            settled, answered, moved = [], [], set()
            refused = 0
            for _ in range(drags):
                took = await drag_once(page, moved)
                if took is None:
                    break
                if isinstance(took, str):
                    refused += 1
                    await page.goto(f"{base_url}/board?{query}", wait_until="load")
                    continue
                settled.append(took[0])
                answered.append(took[1])
                await page.wait_for_timeout(700)  # the live frame of this move, before the next
            client = [s - a for s, a in zip(settled, answered, strict=True)]
            print(
                f"{short(query):34} {len(settled):3d} {pct(settled):>17} {pct(answered):>17} "
                f"{pct(client):>17}" + (f"  ({refused} refused drops left out)" if refused else "")
            )
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


async def drag_once(page: Any, moved: set[str]) -> tuple[float, float] | str | None:
    """Drag a bar in sight not moved yet 40 px to the right: (mouse-up to settled,
    mouse-up to the place answer's last byte) in ms, or None if there is none."""
    bars = page.locator("#bars .bar.movable:not(.in-group):not(.status-in_progress)")
    bar, box, task = None, None, None
    for index in range(await bars.count()):
        candidate = bars.nth(index)
        task = await candidate.get_attribute("data-task-id")
        where = await candidate.bounding_box()
        if task not in moved and where and where["width"] >= 12 and 200 < where["y"] < 700:
            bar, box = candidate, where
            break
    if bar is None or box is None:  # a lightly booked first screen (e.g. assembly stations)
        return None
    moved.add(task)
    before = await bar.get_attribute("data-start")
    x, y = box["x"] + min(8, box["width"] / 2), box["y"] + box["height"] / 2
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + 40, y, steps=6)
    await page.wait_for_selector(".bar.ghost:not(.preview-pending)")
    began = await page.evaluate("performance.clearResourceTimings(), performance.now()")
    await page.mouse.up()
    try:
        await page.wait_for_function(
            """([id, before]) => { const b = document.getElementById('bar-' + id);
               return b && b.dataset.start !== before
                 && !document.querySelector('.bar.ghost'); }""",
            arg=[task, before],
            polling="raf",
            timeout=10_000,
        )
    except PlaywrightTimeout:  # refused (unavailable time, a conflict): not a sample
        return "refused"
    settled = float(await page.evaluate(f"performance.now() - {began}"))
    answer = await page.evaluate(
        """() => performance.getEntriesByType('resource')
                   .filter(e => e.name.includes('/place')).map(e => e.responseEnd).pop()"""
    )
    return settled, float(answer) - float(began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=8)
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--browser-loads", type=int, default=3, help="week pages opened cold")
    parser.add_argument("--drags", type=int, default=8, help="bars dragged in each view")
    parser.add_argument("--port", type=int, help="the server's port (default: a free one)")
    parser.add_argument("--database-url")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="takt-bench-board-") as tmp:
        database_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        env = app_env(database_url, Path(tmp) / "var")
        if not args.skip_load:
            print("load:", load_plant(env), file=sys.stderr)
        print("machine:", machine())
        with uvicorn_server(env, Path(tmp) / "server.log", port=args.port) as (base_url, _pid):
            windows = asyncio.run(over_http(base_url, args.loads, args.moves))
            if not args.no_browser:
                asyncio.run(in_browser(base_url, args.browser_loads, args.drags, windows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
