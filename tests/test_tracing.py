"""Traces across processes (app/tracing.py): real instances, a real worker, a real collector.

Each process exports over OTLP/HTTP to a collector the test starts
(`otlp_collector.py`), exactly as in production; the test then puts the trace
together from what arrived.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from otlp_collector import Collector, Span, otlp_collector
from servers import REPO_ROOT, Popen, load_demo, wait_until

from app import clock

LiveServer = Callable[..., str]

API = "/api/v1"
WAIT_S = 20.0
REVISION = re.compile(r'id="board-revision"[^>]*data-revision="(\d+)"')
MY_REVISION = re.compile(r'id="my-revision"[^>]*data-revision="(\d+)"')
SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds


def traced(collector: Collector, service: str, **more: str) -> dict[str, str]:
    return {
        "TAKT_TRACING": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_SERVICE_NAME": service,
        # Each span sent as it ends, not every five seconds: the test waits for them. (By
        # batch size, not delay: under libfaketime the exporter thread's timed wait never
        # ends, docs/testing.md; a full batch wakes it.)
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1",
        "TAKT_RATE_LIMIT_USER": "100000/minute",
        **more,
    }


@pytest.fixture
def collector() -> Iterator[Collector]:
    with otlp_collector() as running:
        yield running


@dataclass
class Plant:
    database_url: str
    var_dir: Path
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def plant(postgres_database_url: str, tmp_path: Path) -> Plant:
    var_dir = tmp_path / "var"  # shared by the instances: one signing key
    load_demo(postgres_database_url, var_dir)
    return Plant(postgres_database_url, var_dir)


async def sign_in(base: str, plant: Plant) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{base}{API}/auth/token", json={"username": "anna", "password": "takt-demo"}
        )
        response.raise_for_status()
        plant.token = response.json()["access_token"]


async def a_scheduled_task(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    response = await client.get(f"{base}{API}/tasks", params={"status": "scheduled", "limit": 1})
    response.raise_for_status()
    task: dict[str, Any] = response.json()["items"][0]
    return task


@asynccontextmanager
async def board_on(base: str, plant: Plant, task: dict[str, Any]) -> AsyncIterator[Any]:
    day = datetime.fromisoformat(task["assignment"]["start"]).date()
    view = {"start": f"{day.isoformat()}T00:00:00+00:00", "zoom": "week", "rows": "equipment"}
    async with httpx.AsyncClient(headers=plant.headers, timeout=30) as http:
        since = (await http.get(f"{base}{API}/changes", params={"since": 0})).json()["revision"]
    url = base.replace("http://", "ws://") + f"/board/ws?access_token={plant.token}"
    async with websockets.connect(url, open_timeout=WAIT_S) as socket:
        await socket.send(json.dumps({"type": "resume", "since": since, "view": view}))
        yield socket


async def until_revision(socket: Any, revision: int, marker: re.Pattern[str] = REVISION) -> None:
    seen = 0
    async with asyncio.timeout(WAIT_S):
        while seen < revision:
            frame = await socket.recv()
            if isinstance(frame, str):
                seen = max([seen, *(int(n) for n in marker.findall(frame))])


async def book_for_olga(client: httpx.AsyncClient, base: str, task: dict[str, Any]) -> str:
    """Book `task` for the demo operator Olga, starting in ten minutes; her access token."""
    response = await client.post(
        f"{base}{API}/auth/token", json={"username": "olga", "password": "takt-demo"}
    )
    olga = str(response.json()["access_token"])
    me = await client.get(f"{base}{API}/operators", headers={"Authorization": f"Bearer {olga}"})
    start = clock.now().replace(microsecond=0) + timedelta(minutes=10)
    current = await client.get(f"{base}{API}/tasks/{task['id']}")
    booked = await client.put(
        f"{base}{API}/tasks/{task['id']}/assignment",
        json={
            "operator_id": me.json()["items"][0]["id"],
            "equipment_id": task["assignment"]["equipment_id"],
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
        },
        headers={"If-Match": current.headers["etag"]},
    )
    assert booked.status_code == 200, booked.text
    return olga


@asynccontextmanager
async def my_tasks_on(base: str, token: str, plant: Plant) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(headers=plant.headers, timeout=30) as http:
        since = (await http.get(f"{base}{API}/changes", params={"since": 0})).json()["revision"]
    url = base.replace("http://", "ws://") + f"/my/ws?access_token={token}"
    async with websockets.connect(url, open_timeout=WAIT_S) as socket:
        await socket.send(json.dumps({"type": "resume", "since": since}))
        yield socket


async def move_by_15_minutes(
    client: httpx.AsyncClient, base: str, task: dict[str, Any], request_id: str
) -> int:
    current = await client.get(f"{base}{API}/tasks/{task['id']}")
    placed = current.json()["assignment"]
    later = timedelta(minutes=15)
    response = await client.put(
        f"{base}{API}/tasks/{task['id']}/assignment",
        json={
            "operator_id": placed["operator_id"],
            "equipment_id": placed["equipment_id"],
            "start": (datetime.fromisoformat(placed["start"]) + later).isoformat(),
            "end": (datetime.fromisoformat(placed["end"]) + later).isoformat(),
        },
        headers={"If-Match": current.headers["etag"], "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["revision"])


def the_request(spans: list[Span], request_id: str) -> Span | None:
    return next(
        (
            s
            for s in spans
            if s.kind == SERVER and s.attributes.get("takt.request_id") == request_id
        ),
        None,
    )


@pytest.mark.redis
@pytest.mark.postgres
async def test_one_move_is_one_trace_from_the_request_to_the_other_instances_push(
    plant: Plant, redis_url: str, live_server: LiveServer, collector: Collector
) -> None:
    a, b = (
        live_server(
            database_url=plant.database_url,
            redis_url=redis_url,
            var_dir=plant.var_dir,
            env=traced(collector, f"takt-{name}"),
        )
        for name in "ab"
    )
    await sign_in(a, plant)
    request_id = f"move-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(headers=plant.headers, timeout=30) as client:
        task = await a_scheduled_task(client, a)
        olga = await book_for_olga(client, a, task)  # on her "My tasks" from now on
        async with board_on(b, plant, task) as board, my_tasks_on(b, olga, plant) as my_tasks:
            pushed_before = await fanout_count(client, b)
            revision = await move_by_15_minutes(client, a, task, request_id)
            await until_revision(board, revision)
            await until_revision(my_tasks, revision, MY_REVISION)
        # B measured the move's way from A's commit to its board (takt_fanout_delay_seconds).
        assert await fanout_count(client, b) > pushed_before

    def whole(spans: list[Span]) -> bool:
        request = the_request(spans, request_id)
        pushes = {s.name for s in spans if request and s.trace_id == request.trace_id}
        return {"board push", "my tasks push"} <= pushes

    spans = collector.wait_for(whole, timeout=WAIT_S, what="the move's trace")
    request = the_request(spans, request_id)
    assert request is not None and request.service == "takt-a"
    assert request.name.startswith("PUT")
    # Nothing else makes traces of its own: sockets, streams, probes, scrapes and the
    # background loops' looks every few seconds run untraced.
    strays = {(s.service, s.name) for s in spans if not s.parent_id and s.kind != SERVER}
    assert strays == set(), strays
    one_trace = [s for s in spans if s.trace_id == request.trace_id]
    by_name = {s.name: s for s in one_trace}

    sql = [s for s in one_trace if "db.system" in s.attributes or "db.system.name" in s.attributes]
    assert {s.service for s in sql} >= {"takt-a", "takt-b"}  # the write on A, the render on B
    assert any(s.name.startswith("UPDATE") and s.service == "takt-a" for s in sql)

    publish = by_name[f"publish schedule:{_schedule_of(one_trace)}"]
    assert (publish.service, publish.kind) == ("takt-a", PRODUCER)
    redis_publish = [s for s in one_trace if s.name == "PUBLISH"]
    assert [s.parent_id for s in redis_publish] == [publish.span_id]

    pushes = [s for s in one_trace if s.name == "board push"]
    assert [(s.service, s.kind, s.parent_id) for s in pushes] == [
        ("takt-b", CONSUMER, publish.span_id)
    ]
    assert pushes[0].attributes["takt.revision"] == revision
    # Olga's "My tasks" on B heard of it too, in the same trace.
    mine = [s for s in one_trace if s.name == "my tasks push"]
    assert [(s.service, s.kind, s.parent_id) for s in mine] == [
        ("takt-b", CONSUMER, publish.span_id)
    ]
    # B's render of the push is in the trace too, below the push.
    assert any(s.service == "takt-b" and s.parent_id == pushes[0].span_id for s in sql)

    # A's one line for the request names the trace (and the user), as do its other lines.
    lines = logged(plant.var_dir / f"uvicorn-{a.rsplit(':', 1)[1]}.log", request_id)
    line = next(r for r in lines if r["event"] == "request")
    assert (line["method"], line["status"], line["trace_id"]) == ("PUT", 200, request.trace_id)
    assert line["path"] == f"/api/v1/tasks/{task['id']}/assignment"
    assert line["user"].startswith("user:")
    assert all(r["trace_id"] == request.trace_id for r in lines)


def logged(log: Path, request_id: str) -> list[dict[str, Any]]:
    """The JSON lines of a server's log that carry `request_id`."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [r for r in records if r.get("request_id") == request_id]


async def fanout_count(client: httpx.AsyncClient, base: str) -> float:
    metrics = (await client.get(f"{base}/metrics")).text
    found = re.search(r"^takt_fanout_delay_seconds_count (\S+)$", metrics, re.MULTILINE)
    assert found is not None, "takt_fanout_delay_seconds is not exported"
    return float(found.group(1))


def _schedule_of(spans: list[Span]) -> str:
    names = [s.name for s in spans if s.name.startswith("publish schedule:")]
    assert len(names) == 1, names
    return names[0].removeprefix("publish schedule:")


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_queued_runs_worker_span_is_in_the_trace_of_the_request_that_queued_it(
    plant: Plant, redis_url: str, live_server: LiveServer, collector: Collector, tmp_path: Path
) -> None:
    queue_name = f"takt-test:{uuid.uuid4().hex}"
    app = live_server(
        database_url=plant.database_url,
        redis_url=redis_url,
        var_dir=plant.var_dir,
        env=traced(collector, "takt-app", TAKT_QUEUE_NAME=queue_name),
    )
    worker = _start_worker(plant, redis_url, tmp_path, traced(collector, "takt-worker"), queue_name)
    try:
        await sign_in(app, plant)
        request_id = f"shift-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(headers=plant.headers, timeout=30) as client:
            jobs = await client.get(f"{app}{API}/jobs", params={"limit": 1})
            job_id = jobs.json()["items"][0]["id"]
            queued = await client.post(
                f"{app}{API}/bulk/shift-job",
                json={"job_id": job_id, "minutes": 30},
                headers={"X-Request-ID": request_id},
            )
            assert queued.status_code == 202, queued.text

        def run_traced(spans: list[Span]) -> bool:
            request = the_request(spans, request_id)
            return request is not None and any(
                s.name == "background run" and s.trace_id == request.trace_id for s in spans
            )

        spans = collector.wait_for(run_traced, timeout=WAIT_S, what="the worker's span")
        request = the_request(spans, request_id)
        assert request is not None and request.service == "takt-app"
        run = next(s for s in spans if s.name == "background run")
        assert (run.service, run.kind, run.trace_id) == ("takt-worker", CONSUMER, request.trace_id)
        assert run.attributes["takt.run_kind"] == "bulk.shift_job"
        assert run.attributes["takt.request_id"] == request_id
        # Its SQL and the change's publish are in the same trace, below the run.
        worker_spans = [s for s in spans if s.trace_id == request.trace_id]
        assert any(s.service == "takt-worker" and s.parent_id == run.span_id for s in worker_spans)
        # The worker's line for the run carries the request id of the request that queued it.
        wait_until(
            lambda: '"background run"' in worker.log.read_text(),
            timeout=WAIT_S,
            what="the run's log line",
            proc=worker,
        )
        lines = [json.loads(line) for line in worker.log.read_text().splitlines() if "{" in line]
        runs = [r for r in lines if r.get("event") == "background run"]
        assert [(r.get("request_id"), r.get("trace_id"), r["outcome"]) for r in runs] == [
            (request_id, request.trace_id, "ended")
        ]
    finally:
        worker.stop()


def _start_worker(
    plant: Plant, redis_url: str, tmp_path: Path, env: dict[str, str], queue_name: str
) -> Popen:
    command = Path(sys.executable).with_name("takt")
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL") and not key.startswith("TAKT_")
    }
    child_env |= {
        "DATABASE_URL": plant.database_url,
        "REDIS_URL": redis_url,
        "TAKT_QUEUE_NAME": queue_name,
        "TAKT_VAR_DIR": str(plant.var_dir),
        **env,
    }
    worker = Popen.start(
        [str(command), "worker", "--concurrency", "1"],
        log=tmp_path / "worker.log",
        env=child_env,
        cwd=tmp_path,
    )
    wait_until(
        lambda: "running jobs from Redis" in worker.log.read_text(),
        timeout=60,
        what="takt worker",
        proc=worker,
    )
    return worker


def test_tracing_off_costs_nothing_no_span_is_made_and_nothing_is_wrapped() -> None:
    # (redis-py imports parts of the SDK for its own metrics: whether it is importable
    # says nothing; what matters is that nothing of ours is set up.)
    probe = (
        "import sys\n"
        "from opentelemetry import trace\n"
        "from app.main import create_app\n"
        "from app.settings import Settings\n"
        "from app import tracing\n"
        "app = create_app(Settings(database_url='sqlite+aiosqlite://'))\n"
        "print(tracing.enabled(),\n"
        "      type(trace.get_tracer_provider()).__name__,\n"
        "      any(m.cls.__name__ == 'HttpTracing' for m in app.user_middleware),\n"
        "      any(name.startswith(('opentelemetry.instrumentation.',\n"
        "                           'opentelemetry.exporter.')) for name in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAKT_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["False", "ProxyTracerProvider", "False", "False"], (
        done.stdout + done.stderr
    )
