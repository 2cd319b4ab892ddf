"""The HTTP workloads of `scripts/bench.py`: what a scheduler's board asks of the API.

Each workload returns `Samples`: client-side latencies (request sent to body
read, loopback, httpx in the same process as the other clients) and any
non-2xx answers, so an error shows up in the report instead of as a fast run.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

API = "/api/v1"
TIMEOUT = httpx.Timeout(120.0)


@dataclass
class Samples:
    what: str
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Wall time of the whole phase, for its throughput.
    wall: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.seconds) / self.wall if self.wall else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile: a latency some request really had."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def note_error(self, response: httpx.Response) -> None:
        self.errors.append(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code} {response.text[:300]}"
        )


@dataclass(frozen=True)
class Resources:
    """What the workloads pick from, read through the API before timing."""

    scheduled: list[dict[str, Any]]  # tasks with an assignment, not done
    operator_ids: list[int]
    equipment_ids: list[int]
    job_ids: list[int]
    task_total: int
    scheduled_total: int


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        f"{API}/auth/token", json={"username": username, "password": password}
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


async def _all_ids(client: httpx.AsyncClient, resource: str) -> list[int]:
    ids: list[int] = []
    offset = 0
    while True:
        response = await client.get(f"{API}/{resource}", params={"limit": 100, "offset": offset})
        response.raise_for_status()
        body = response.json()
        ids.extend(item["id"] for item in body["items"])
        offset += len(body["items"])
        if not body["items"] or offset >= body["total"]:
            return ids


async def read_resources(client: httpx.AsyncClient, rng: random.Random) -> Resources:
    total = (await client.get(f"{API}/tasks", params={"limit": 1})).json()["total"]
    first = await client.get(f"{API}/tasks", params={"limit": 1, "status": "scheduled"})
    scheduled_total = first.json()["total"]
    scheduled: list[dict[str, Any]] = []
    pages = max(1, math.ceil(scheduled_total / 100))
    for page in rng.sample(range(pages), min(pages, 8)):
        response = await client.get(
            f"{API}/tasks", params={"limit": 100, "offset": page * 100, "status": "scheduled"}
        )
        response.raise_for_status()
        scheduled.extend(task for task in response.json()["items"] if task["assignment"])
    if not scheduled:
        raise RuntimeError("the demo plant has no scheduled tasks to move")
    return Resources(
        scheduled=scheduled,
        operator_ids=await _all_ids(client, "operators"),
        equipment_ids=await _all_ids(client, "equipment"),
        job_ids=await _all_ids(client, "jobs"),
        task_total=total,
        scheduled_total=scheduled_total,
    )


def _when(task: dict[str, Any], rng: random.Random, spread_hours: int) -> tuple[str, str]:
    start = datetime.fromisoformat(task["assignment"]["start"])
    start += timedelta(minutes=15 * rng.randint(-4 * spread_hours, 4 * spread_hours))
    end = start + timedelta(minutes=task["duration_minutes"])
    return start.isoformat(), end.isoformat()


async def proposals(
    client: httpx.AsyncClient, resources: Resources, rng: random.Random, runs: int
) -> Samples:
    """A bar dragged onto another row and time: one proposal per request, nothing saved."""
    samples = Samples("assignment validation (proposal)")
    for _ in range(runs):
        task = rng.choice(resources.scheduled)
        start, end = _when(task, rng, spread_hours=48)
        body = {
            "task_id": task["id"],
            "assignment": {
                "operator_id": rng.choice(resources.operator_ids),
                "equipment_id": rng.choice(resources.equipment_ids),
                "start": start,
                "end": end,
            },
        }
        began = time.perf_counter()
        response = await client.post(f"{API}/schedule/validate", json=body)
        samples.seconds.append(time.perf_counter() - began)
        if response.status_code != 200:
            samples.note_error(response)
    return samples


async def full_validations(client: httpx.AsyncClient, runs: int) -> tuple[Samples, dict[str, Any]]:
    samples = Samples("full-schedule validation")
    last: dict[str, Any] = {}
    for _ in range(runs):
        began = time.perf_counter()
        response = await client.post(f"{API}/schedule/validate", json={})
        samples.seconds.append(time.perf_counter() - began)
        if response.status_code != 200:
            samples.note_error(response)
        else:
            last = response.json()
    return samples, last


async def simple_queries(
    base_url: str,
    token: str,
    resources: Resources,
    rng: random.Random,
    *,
    clients: int,
    requests_each: int,
    think: float = 0.0,
) -> tuple[Samples, Samples]:
    """`clients` users at once, each paging the task list and opening jobs: back to back,
    or with a random pause of 0 to twice `think` seconds between requests.
    """
    label = f"{clients} concurrent clients" if clients > 1 else "one client, sequential"
    if think:
        label += f", think {think * 1000:g} ms"
    pages = Samples(f"list page, {label}")
    details = Samples(f"job detail, {label}")
    headers = {"Authorization": f"Bearer {token}"}
    seeds = [rng.randrange(2**32) for _ in range(clients)]
    start_line = asyncio.Event()

    async def one_client(seed: int) -> None:
        own = random.Random(seed)
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT) as client:
            await client.get("/health")  # connect before the start line
            await start_line.wait()
            if think:  # arrive spread out, as people do, not as one burst of `clients`
                await asyncio.sleep(own.uniform(0, 2 * think))
            for i in range(requests_each):
                if i % 2 == 0:
                    offset = own.randrange(max(1, resources.task_total - 50))
                    target, url = pages, f"{API}/tasks?limit=50&offset={offset}"
                else:
                    target, url = details, f"{API}/jobs/{own.choice(resources.job_ids)}"
                began = time.perf_counter()
                response = await client.get(url)
                target.seconds.append(time.perf_counter() - began)
                if response.status_code != 200:
                    target.note_error(response)
                if think:
                    await asyncio.sleep(own.uniform(0, 2 * think))

    tasks = [asyncio.create_task(one_client(seed)) for seed in seeds]
    await asyncio.sleep(0.5)
    began = time.perf_counter()
    start_line.set()
    await asyncio.gather(*tasks)
    pages.wall = details.wall = time.perf_counter() - began
    return pages, details


async def assignment_writes(
    client: httpx.AsyncClient, resources: Resources, rng: random.Random, runs: int
) -> Samples:
    """Drag a scheduled task by up to ±2 h on its own rows; read its ETag first (untimed)."""
    samples = Samples("assignment write (PUT, If-Match)")
    for task in _picks(resources.scheduled, rng, runs):
        current = await client.get(f"{API}/tasks/{task['id']}")
        if current.status_code != 200:
            samples.note_error(current)
            continue
        start, end = _when(current.json(), rng, spread_hours=2)
        placed = current.json()["assignment"]
        body = {
            "operator_id": placed["operator_id"],
            "equipment_id": placed["equipment_id"],
            "start": start,
            "end": end,
        }
        began = time.perf_counter()
        response = await client.put(
            f"{API}/tasks/{task['id']}/assignment",
            json=body,
            headers={"If-Match": current.headers["etag"]},
        )
        samples.seconds.append(time.perf_counter() - began)
        if response.status_code != 200:
            samples.note_error(response)
    return samples


def _picks(items: Sequence[dict[str, Any]], rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [rng.choice(items) for _ in range(n)]
