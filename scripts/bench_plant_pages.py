"""The plant pages' service time on a running Takt: each page 20 times, one client.

    takt migrate && takt demo --size large && takt serve --port 8101
    python scripts/bench_plant_pages.py --url http://127.0.0.1:8101

Logs in through the login form as the demo manager, finds a job, task,
operator and machine from the lists, then times every plant page back to back
(request sent to body read, loopback). Prints median and p95 (nearest rank)
per page; a page that does not answer 200 stops the run.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import time

import httpx


def first_link(client: httpx.Client, page: str, kind: str) -> str:
    found = re.search(rf'href="(/plant/{kind}/\d+)"', client.get(page).text)
    assert found is not None, f"no {kind} on {page}"
    return found.group(1)


def log_in(client: httpx.Client, user: str, password: str) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": csrf.group(1)},
    )
    assert answer.status_code == 303, answer.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="maria")
    parser.add_argument("--password", default="takt-demo")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with httpx.Client(base_url=args.url, timeout=60) as client:
        log_in(client, args.user, args.password)
        job = first_link(client, "/plant/jobs", "jobs")
        pages = [
            "/plant/jobs",
            "/plant/jobs?offset=500",
            "/plant/jobs?q=gearbox",
            job,
            first_link(client, job, "tasks"),
            "/plant/operators",
            first_link(client, "/plant/operators", "operators"),
            "/plant/equipment",
            first_link(client, "/plant/equipment", "equipment"),
        ]
        for page in pages:
            ms = []
            for _ in range(args.runs):
                started = time.perf_counter()
                answer = client.get(page)
                ms.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (page, answer.status_code)
            ms.sort()
            p95 = ms[max(0, math.ceil(0.95 * len(ms)) - 1)]
            size = len(answer.content) // 1024
            print(
                f"{page:28} median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  {size} KiB"
            )


if __name__ == "__main__":
    main()
