"""What `takt serve` writes: one JSON line per request, with its request id, and no secrets.

A real server (the production command) on a migrated SQLite file; requests
carry a token in the query string (as browsers' WebSocket and EventSource
must), in `Authorization`, and a session cookie. Its captured output is read
after it stopped.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from servers import Popen, free_port, http_ok, wait_until
from websockets.asyncio.client import connect

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.main import create_app
from app.observability import redact
from app.security.passwords import hash_password
from app.settings import Settings

PASSWORD = "takt-log-test-password"


def test_redact_leaves_no_secret_in_a_string() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWhlcmU"
    assert jwt not in redact(f'"WebSocket /board/ws?since=3&access_token={jwt}" [accepted]')
    assert (
        redact("/board/ws?since=3&access_token=abc") == "/board/ws?since=3&access_token=[redacted]"
    )
    assert "s3cr3t" not in redact("Authorization: Bearer s3cr3t")
    assert "f00d" not in redact("Takt-HMAC key_id=tk_1,signature=f00d")
    assert "c00kie" not in redact("Cookie: takt_session=c00kie; other=1")
    assert "hunter2" not in redact("username=anna&password=hunter2")
    assert redact("/api/v1/tasks/12") == "/api/v1/tasks/12"


@pytest.fixture(params=["takt serve", "uvicorn"])
async def served(
    request: pytest.FixtureRequest, sqlite_database_url: str, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """`takt serve`, and plain uvicorn with its access log on: the app quiets it either way."""
    db = Database(sqlite_database_url)
    try:
        async with db.write() as session:
            session.add(
                t.User(
                    username="anna",
                    display_name="Anna",
                    password_hash=hash_password(PASSWORD),
                    role="scheduler",
                    created_at=clock.now(),
                )
            )
    finally:
        await db.dispose()
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": sqlite_database_url,
        "TAKT_VAR_DIR": str(tmp_path / "var"),
    }
    takt = str(Path(sys.executable).with_name("takt"))
    log = tmp_path / "serve.log"
    command = (
        [takt, "serve"]
        if request.param == "takt serve"
        else [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    )
    server = Popen.start([*command, "--host", "127.0.0.1", "--port", str(port)], log=log, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(base, "/health"), timeout=60, what="takt serve", proc=server)
        yield base, log
    finally:
        server.stop(signal.SIGTERM)


async def test_one_json_line_per_request_with_its_id_and_no_secret(
    served: tuple[str, Path],
) -> None:
    base, log = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        start_lines = len(log.read_text().splitlines())
        issued = await http.post(
            "/api/v1/auth/token", json={"username": "anna", "password": PASSWORD}
        )
        token = issued.json()["access_token"]
        refresh = issued.json()["refresh_token"]
        await http.get("/health", headers={"X-Request-ID": "trace-4711"})
        await http.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
        await http.get("/board/poll", params={"since": "0", "access_token": token})
        await http.get("/nowhere", params={"access_token": token})
        await http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        await http.get("/my", headers={"Cookie": "takt_session=not-a-real-session-c00kie"})
        socket_url = (
            base.replace("http://", "ws://") + "/board/ws?" + urlencode({"access_token": token})
        )
        async with connect(socket_url, open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "resume", "since": 0}))
            await socket.recv()
        # The refresh token used again: the reuse is logged (a warning) within that request
        # (last: it revokes the family, the access token above included).
        await http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        await http.get("/health")
    # A socket's line is written once it has closed on the server's side too.
    text = log.read_text()
    for _ in range(100):
        if '"WEBSOCKET"' in text:
            break
        await asyncio.sleep(0.1)
        text = log.read_text()

    for secret in (token, refresh, PASSWORD, "not-a-real-session-c00kie"):
        assert secret not in text
    lines = text.splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON
    requests = [r for r in records[start_lines:] if r.get("event") == "request"]
    seen = Counter((r["method"], r["path"]) for r in requests)
    assert seen == Counter(
        {
            ("POST", "/api/v1/auth/token"): 1,
            ("GET", "/health"): 2,
            ("GET", "/api/v1/tasks"): 1,
            ("GET", "/board/poll"): 1,
            ("GET", "/nowhere"): 1,
            ("POST", "/api/v1/auth/refresh"): 2,
            ("GET", "/my"): 1,
            ("WEBSOCKET", "/board/ws"): 1,
        }
    ), seen
    assert all(r["request_id"] for r in requests)
    assert len({r["request_id"] for r in requests}) == len(requests)
    assert any(r["request_id"] == "trace-4711" for r in requests)
    socket = next(r for r in requests if r["method"] == "WEBSOCKET")
    assert socket["status"] == 101
    # Complete: who asked, when they had said (user:N), and how long it took.
    by_path = {(r["method"], r["path"]): r for r in requests}
    anna = by_path[("GET", "/api/v1/tasks")]["user"]
    assert anna is not None and anna.startswith("user:")
    assert socket["user"] == by_path[("GET", "/board/poll")]["user"] == anna
    assert by_path[("GET", "/nowhere")]["user"] is None  # not authenticated by any route
    assert all(isinstance(r["ms"], float | int) and r["status"] for r in requests)
    # Every other line written during a request carries that request's id.
    reuse = [r for r in records if "refresh token reuse" in r["event"]]
    refreshes = [r for r in requests if r["path"] == "/api/v1/auth/refresh"]
    assert len(reuse) == 1 and reuse[0]["request_id"] == refreshes[-1]["request_id"]
    # Nothing else speaks of a request: no uvicorn access or WebSocket lines.
    assert "HTTP/1.1" not in text and '"WebSocket ' not in text
    assert not any(r["event"] in ("connection open", "connection closed") for r in records)
    assert not any("color_message" in r for r in records)


async def test_takt_up_says_which_dependency_does_not_answer(tmp_path: Path) -> None:
    """`takt_up{dependency}` (what the unreachable alerts read) follows each check."""
    closed = f"127.0.0.1:{free_port()}"
    settings = Settings(
        database_url=f"postgresql+asyncpg://takt@{closed}/takt",
        redis_url=f"redis://{closed}/0",
        var_dir=tmp_path,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://takt") as http:
            metrics = (await http.get("/metrics")).text
    finally:
        await app.state.services.db.dispose()
    assert 'takt_up{dependency="database"} 0.0' in metrics
    assert 'takt_up{dependency="redis"} 0.0' in metrics

    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/up.db"))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://takt"
        ) as http:
            metrics = (await http.get("/metrics")).text
    finally:
        await app.state.services.db.dispose()
    assert 'takt_up{dependency="database"} 1.0' in metrics
