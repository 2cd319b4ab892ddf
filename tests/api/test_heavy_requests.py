"""No single request holds the server: /health answers while heavy validations run.

A real server (uvicorn, its own process) with the large demo plant (10,000+
tasks). While whole-plan validations run one after another, each after a
change so none is answered from what the last one computed, and while the
proposal that once held every request for 12 s (a 6,000-year slot) is sent,
a prober asks for /health every few milliseconds. The server must answer it
while each validation is still running (before the bounds and the compute pool,
/health waited the 12 s out). No timing bound: the order of answers says it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from servers import load_demo

from app import clock


@pytest.fixture
def large_plant_server(
    sqlite_database_url: str, live_server: Callable[..., str], tmp_path: Path
) -> str:
    load_demo(sqlite_database_url, tmp_path / "var", size="large")
    return live_server(
        database_url=sqlite_database_url,
        var_dir=tmp_path / "var",
        env={"TAKT_RATE_LIMIT_USER": "100000/minute"},
    )


async def test_health_answers_while_heavy_validations_run(large_plant_server: str) -> None:
    async with httpx.AsyncClient(base_url=large_plant_server, timeout=60) as client:
        token = await client.post(
            "/api/v1/auth/token", json={"username": "anna", "password": "takt-demo"}
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        task = (await client.get("/api/v1/tasks?scheduled=true&limit=1")).json()["items"][0]
        placed = task["assignment"]
        answered_during: list[int] = []
        async with health_probe(large_plant_server) as probe:
            for _ in range(3):
                # A change first, so this validation recomputes (a warmed cache answers at once).
                await _touch(client, task["id"])
                before = probe.answers
                validated = await client.post("/api/v1/schedule/validate", json={})
                answered_during.append(probe.answers - before)
                assert validated.status_code == 200, validated.text[:500]
                assert validated.json()["counts"], "the large plant has conflicts to find"
            answered = {}
            for days in (6000 * 365, 31):
                end = clock.now() + timedelta(days=days)
                slot = {"start": clock.now().isoformat(), "end": end.isoformat()}
                proposal = {"task_id": task["id"], "assignment": {**placed, **slot}}
                answer = await client.post("/api/v1/schedule/validate", json=proposal)
                answered[days] = answer.status_code
    print(f"\n/health answered {probe.answers} times, the longest in {probe.worst * 1000:.0f} ms")
    print(f"/health answers during each validation: {answered_during}")
    # /health was answered, again and again, while each whole-plant validation ran. (A
    # server that held its loop could slip at most one answer in, after the work.)
    assert min(answered_during) >= 2, f"/health answers during each validation: {answered_during}"
    # A slot of thousands of years is no slot; one of 31 days is.
    assert answered == {6000 * 365: 422, 31: 200}


async def _touch(client: httpx.AsyncClient, task_id: int) -> None:
    """A change to the plan (unschedule and put back), so the next validation recomputes."""
    current = await client.get(f"/api/v1/tasks/{task_id}")
    placed = current.json()["assignment"]
    removed = await client.delete(
        f"/api/v1/tasks/{task_id}/assignment", headers={"If-Match": current.headers["etag"]}
    )
    assert removed.status_code == 200, removed.text
    back = await client.put(
        f"/api/v1/tasks/{task_id}/assignment",
        json=placed,
        headers={"If-Match": removed.headers["etag"]},
    )
    assert back.status_code == 200, back.text


@dataclass
class Probe:
    worst: float = 0.0
    answers: int = 0


@asynccontextmanager
async def health_probe(base_url: str) -> AsyncIterator[Probe]:
    """Asks for /health again and again while the block runs (from its first answer on);
    keeps the longest wait."""
    probe = Probe()
    answered = asyncio.Event()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            while True:
                began = time.perf_counter()
                response = await client.get("/health")
                assert response.status_code == 200
                probe.worst = max(probe.worst, time.perf_counter() - began)
                probe.answers += 1
                answered.set()
                await asyncio.sleep(0.01)

    task = asyncio.create_task(run())
    # Connected and answered once before the block begins: the first look inside it
    # must not be the one that also opens the connection.
    first = asyncio.create_task(answered.wait())
    await asyncio.wait([task, first], return_when=asyncio.FIRST_COMPLETED)
    first.cancel()
    try:
        yield probe
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
