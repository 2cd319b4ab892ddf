"""PostgreSQL crashes (`-m immediate`) or restarts (`-m fast`) while schedulers write.

A durable server (fsync, synchronous_commit and full_page_writes on, as in
production) behind a real app server (uvicorn, Redis for fan-out). Six
writers move six bars in a loop and keep every acknowledged (2xx) answer;
two boards follow on WebSockets. PostgreSQL goes down mid-stream and comes
back. Then:

- while it is down, requests answer 503 with Retry-After (not 500), readiness
  says so, and a board render that fails on it keeps the board's socket;
- once it is back, the same app process serves and writes again;
- every acknowledged write is in the change log and the audit trail, and no
  task lost it: its version is at least the acknowledged one, and the slot is
  the acknowledged slot unless a later change of it committed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from servers import PostgresServer, load_demo, start_postgres
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from app.clock import as_utc
from app.db import tables as t
from app.db.migrate import upgrade
from app.realtime.redis_hub import RedisHub
from app.services.write_path import schedule_channel

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

API = "/api/v1"
WRITERS = 6
# Generous: a loaded two-core machine, and PostgreSQL replaying its WAL after a crash.
WAIT_S = 60.0
REVISION = re.compile(r'id="board-revision"[^>]*data-revision="(\d+)"')


@pytest.fixture(scope="module")
def durable_postgres(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A server of this module's own, to crash. Asking for the session's server first
    makes missing binaries skip the tests (or fail them under CI)."""
    server = start_postgres(durable=True)
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Ack:
    task_id: int
    version: int
    revision: int
    start: datetime
    end: datetime


@dataclass
class Writers:
    """Schedulers moving their own bar each, keeping what the app acknowledged."""

    client: httpx.AsyncClient
    task_ids: list[int]
    acked: list[Ack] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)
    dropped: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def acked_after(self, revision: int) -> dict[int, int]:
        counts = dict.fromkeys(self.task_ids, 0)
        for ack in self.acked:
            if ack.revision > revision:
                counts[ack.task_id] += 1
        return counts

    async def run(self, task_id: int) -> None:
        placed: dict[str, Any] | None = None
        etag = ""
        step = 0
        while not self.stop.is_set():
            try:
                if placed is None:
                    current = await self.client.get(f"{API}/tasks/{task_id}")
                    if current.status_code != 200:
                        await self._refused(current.status_code)
                        continue
                    placed, etag = current.json()["assignment"], current.headers["etag"]
                step += 1
                shift = timedelta(minutes=5 if step % 2 else -5)
                start = datetime.fromisoformat(placed["start"]) + shift
                end = datetime.fromisoformat(placed["end"]) + shift
                response = await self.client.put(
                    f"{API}/tasks/{task_id}/assignment",
                    json={**placed, "start": start.isoformat(), "end": end.isoformat()},
                    headers={"If-Match": etag},
                )
            except httpx.TransportError:
                self.dropped += 1
                placed = None
                await asyncio.sleep(0.2)
                continue
            if response.status_code != 200:
                placed = None
                await self._refused(response.status_code)
                continue
            answer = response.json()
            task = answer["task"]
            self.acked.append(
                Ack(task_id, task["version"], answer["revision"], as_utc(start), as_utc(end))
            )
            assert response.headers["etag"] == f'"{task["version"]}"'
            placed, etag = task["assignment"], response.headers["etag"]

    async def _refused(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1
        await asyncio.sleep(0.2)


async def until(condition: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {within:.0f} s: {what}") from None


async def last_revision(socket: websockets.ClientConnection, at_least: int) -> int:
    seen = 0
    async with asyncio.timeout(WAIT_S):
        while seen < at_least:
            frame = await socket.recv()
            if isinstance(frame, str):
                seen = max([seen, *(int(n) for n in REVISION.findall(frame))])
    return seen


@asynccontextmanager
async def board(base: str, token: str, since: int) -> AsyncIterator[websockets.ClientConnection]:
    url = base.replace("http://", "ws://") + f"/board/ws?access_token={token}"
    async with websockets.connect(url, open_timeout=WAIT_S) as socket:
        view = {"zoom": "week", "rows": "equipment"}
        await socket.send(json.dumps({"type": "resume", "since": since, "view": view}))
        yield socket


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_every_acknowledged_write_survives_a_postgres_restart(
    mode: str,
    durable_postgres: PostgresServer,
    redis_url: str,
    live_server: Callable[..., str],
    tmp_path: Path,
) -> None:
    pg = durable_postgres
    name = pg.create_database(prefix=f"restart_{mode}")
    database_url = pg.url(name)
    await asyncio.to_thread(upgrade, database_url)
    var_dir = tmp_path / "var"
    await asyncio.to_thread(load_demo, database_url, var_dir)
    schedule_id = await live_schedule_id(database_url)
    env = {"TAKT_RATE_LIMIT_USER": "100000/minute", "TAKT_LOG_JSON": "true"}
    base = live_server(database_url=database_url, redis_url=redis_url, var_dir=var_dir, env=env)

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30))
        login = await client.post(
            f"{API}/auth/token", json={"username": "anna", "password": "takt-demo"}
        )
        token = login.json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        listed = await client.get(f"{API}/tasks", params={"status": "scheduled", "limit": WRITERS})
        writers = Writers(client, [task["id"] for task in listed.json()["items"]])
        assert len(writers.task_ids) == WRITERS
        since = (await client.get(f"{API}/changes", params={"since": 0})).json()["revision"]
        boards = [await stack.enter_async_context(board(base, token, since)) for _ in range(2)]
        running = [asyncio.create_task(writers.run(task_id)) for task_id in writers.task_ids]
        try:
            await until(lambda: min(writers.acked_after(0).values()) >= 3, "writes before")
            for socket in boards:
                await last_revision(socket, writers.acked[-1].revision)

            await asyncio.to_thread(pg.shut_down, mode)
            before = max(ack.revision for ack in writers.acked)
            await while_the_database_is_away(client, boards, redis_url, schedule_id, before)
            # In this thread, not a worker's: the server dies with the thread that starts it.
            pg.start_again()

            # The same app process serves again: every writer gets through twice more.
            await until(lambda: min(writers.acked_after(before).values()) >= 2, "writes after")
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            newest = max(ack.revision for ack in writers.acked)
            for socket in boards:  # the sockets the failed render did not cost
                assert await last_revision(socket, newest) >= newest
        finally:
            writers.stop.set()
            await asyncio.gather(*running)

    assert 500 not in writers.refused, writers.refused
    await check_every_acknowledged_write_is_kept(database_url, writers.acked)
    pg.drop_database(name)


async def while_the_database_is_away(
    client: httpx.AsyncClient,
    boards: list[websockets.ClientConnection],
    redis_url: str,
    schedule_id: int,
    revision: int,
) -> None:
    """503 with Retry-After, readiness down, and a failed render keeps the sockets."""
    response = await client.get(f"{API}/tasks", params={"limit": 1})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) > 0
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] != "ok"

    # A change announced now makes every board render, which fails on the database.
    hub = RedisHub(redis_url)
    await hub.start()
    try:
        await until(lambda: hub.healthy, "the test's hub is connected", within=10)
        message = {"revision": revision + 1, "kind": "test", "entities": {"tasks": [1]}}
        await hub.publish(schedule_channel(schedule_id), message)
    finally:
        await hub.stop()
    await asyncio.sleep(1)
    for socket in boards:
        await socket.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(10):
            while await socket.recv() != "<!--heartbeat-->":
                pass


async def live_schedule_id(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(select(t.Schedule.id).where(t.Schedule.kind == "live"))
    finally:
        await engine.dispose()
    assert found is not None
    return int(found)


async def check_every_acknowledged_write_is_kept(database_url: str, acked: list[Ack]) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            log = {
                row.revision: row
                for row in await connection.execute(
                    select(t.ChangeLogEntry.revision, t.ChangeLogEntry.entity_ids)
                )
            }
            audited = set(
                (await connection.execute(select(t.AuditEntry.revision).distinct())).scalars()
            )
            tasks = {
                row.id: row
                for row in await connection.execute(
                    select(t.Task.id, t.Task.version, t.Assignment.start, t.Assignment.end).join(
                        t.Assignment, t.Assignment.task_id == t.Task.id
                    )
                )
            }
    finally:
        await engine.dispose()
    # The change log has no hole: a revision is taken inside the transaction that commits it.
    assert sorted(log) == list(range(1, max(log) + 1))
    for ack in acked:
        assert ack.revision in log, f"acknowledged revision {ack.revision} lost"
        assert ack.task_id in log[ack.revision].entity_ids["tasks"]
        assert ack.revision in audited
    for task_id in {ack.task_id for ack in acked}:
        last = max((ack for ack in acked if ack.task_id == task_id), key=lambda a: a.version)
        kept = tasks[task_id]
        assert kept.version >= last.version, f"task {task_id} lost version {last.version}"
        if kept.version == last.version:
            assert (as_utc(kept.start), as_utc(kept.end)) == (last.start, last.end)
