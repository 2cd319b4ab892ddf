"""How long the board page takes on the server, per view (median and p95).

    DATABASE_URL=sqlite+aiosqlite:///var/large.db TAKT_VAR_DIR=var/large \\
        .venv/bin/python scripts/board_timing.py [--runs 15] [--user anna]

Load the plant first (`takt migrate && takt demo --size large`). The app runs
in-process behind httpx's ASGI transport, so the numbers are server time:
routing, queries, validation of the window and rendering, no network.
Wall time and this process's CPU time are both shown: on a busy machine the
CPU time is the steadier of the two. `first` is each view's first load (its
window's validation not yet kept for this revision, as after every change);
the median and p95 are of the loads after it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

import httpx

from app.main import create_app
from app.settings import Settings

VIEWS = [
    "zoom=hour",
    "zoom=shift",
    "zoom=day",
    "zoom=day&rows=operator",
    "zoom=week",
    "zoom=week&rows=operator",
]


async def log_in(client: httpx.AsyncClient, username: str, password: str) -> None:
    form = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    done = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf.group(1)}
    )
    if done.status_code != 303:
        raise SystemExit(f"login failed: {done.status_code}")


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):7.1f} {p95:7.1f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--user", default="anna")
    parser.add_argument("--password", default="takt-demo")
    args = parser.parse_args()
    app = create_app(Settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://takt.local") as client:
        await log_in(client, args.user, args.password)
        print(
            f"{'view':28} {'first ms':>9} {'wall ms (median p95)':>22} "
            f"{'cpu ms (median p95)':>22}  bars"
        )
        for view in VIEWS:
            walls: list[float] = []
            cpus: list[float] = []
            bars = 0
            first = 0.0
            for run in range(args.runs + 1):
                wall, cpu = time.perf_counter(), time.process_time()
                page = await client.get(f"/board?{view}")
                if run == 0:  # templates compile, the window's validation is kept
                    bars = page.text.count('<div id="bar-')
                    first = (time.perf_counter() - wall) * 1000
                    continue
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            print(f"{view:28} {first:9.1f} {summary(walls):>22} {summary(cpus):>22}  {bars}")
    await app.state.services.db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
