"""The optimizer's first plan as a scheduler sees it (`make bench-optimizer`, second part).

    .venv/bin/python scripts/bench_first_plan.py [--runs 5]

The large demo (`takt demo --size large`, 10,200 tasks) in a throwaway SQLite
database, served by uvicorn with its in-process worker, as `make run` does;
Debian's chromium (Playwright) logs in as a scheduler, opens the board and,
per run, presses Optimize, chooses "All open jobs" and 60 s, and clicks
Start. Measured: from the click on Start to the panel showing its first plan
("1 plan found so far" or more), read by the page itself (`performance.now()`
at the click and at the panel's swap). Each run is then cancelled, and the
next starts on a fresh page once the worker is free.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import app_env, load_plant, machine, uvicorn_server

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
# Resolves with the ms from the click on Start to the panel's first plan.
WATCH = """() => new Promise(done => {
  const began = performance.now();
  const look = () => {
    const panel = document.getElementById("optimizer");
    const text = panel ? panel.textContent : "";
    const plans = /(\\d+) plans? found so far/.exec(text);
    if ((plans && Number(plans[1]) > 0) || (panel && panel.dataset.state === "draft")) {
      done(Math.round(performance.now() - began));
      return true;
    }
    return false;
  };
  new MutationObserver(() => look()).observe(document.body, {childList: true, subtree: true});
  document.querySelector("#optimizer button[type=submit]").click();
})"""


async def first_plans(base_url: str, runs: int) -> list[int]:
    from playwright.async_api import async_playwright

    found: list[int] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=FLAGS
        )
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        await page.goto(f"{base_url}/login")
        await page.fill("input[name=username]", "anna")
        await page.fill("input[name=password]", "takt-demo")
        async with page.expect_navigation(wait_until="load"):
            await page.click("button[type=submit]")
        for run in range(runs):
            await page.goto(f"{base_url}/board?zoom=day", wait_until="load")
            await page.click(".optimize-button")
            await page.wait_for_selector("#optimizer[data-state=options]")
            await page.check("#optimizer input[name=time_limit][value='60']")
            await page.check("#optimizer input[name=scope][value=all]")
            took = int(await page.evaluate(WATCH))
            found.append(took)
            print(f"run {run + 1}: Start → first plan on the panel {took} ms", flush=True)
            await page.locator("#optimizer button", has_text="Cancel").click()
            await page.wait_for_selector("#optimizer:not([data-state=running])", timeout=60_000)
        await browser.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="takt-bench-first-plan-") as tmp:
        env = app_env(f"sqlite+aiosqlite:///{tmp}/bench.db", Path(tmp) / "var")
        print("load:", load_plant(env), file=sys.stderr)
        print("machine:", machine())
        with uvicorn_server(env, Path(tmp) / "server.log") as (base_url, _pid):
            took = asyncio.run(first_plans(base_url, args.runs))
    ordered = sorted(took)
    print(
        f"first plan on the panel, {len(took)} runs: median {statistics.median(took):.0f} ms, "
        f"best {ordered[0]} ms, worst {ordered[-1]} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
