"""Sessions end on every instance at once: two uvicorn processes on one PostgreSQL and
one Redis; an administrator disables a user through instance A, and that user's board
socket on instance B closes, and B sends their browser to login."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
import websockets
from realtime.test_two_instances import (  # noqa: F401
    API,
    WAIT_S,
    TwoInstances,
    token_of,
    two_instances,
)
from websockets.exceptions import ConnectionClosed

from app.cli import main

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


async def signed_in(http: httpx.AsyncClient, username: str) -> None:
    form = await http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    fields = {"username": username, "password": "takt-demo", "csrf_token": csrf.group(1)}
    assert (await http.post("/login", data=fields)).status_code == 303


async def closed_as_signed_out(socket: websockets.ClientConnection) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT_S):
            while True:
                await socket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "signed out")


async def test_takt_sessions_end_closes_the_socket_on_a_running_instance(
    two_instances: TwoInstances,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = two_instances.b
    async with httpx.AsyncClient(base_url=b, timeout=WAIT_S) as browser:
        await signed_in(browser, "anna")
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        socket_url = b.replace("http://", "ws://") + "/board/ws"
        async with websockets.connect(
            socket_url, additional_headers={"Cookie": cookie}, origin=b, open_timeout=WAIT_S
        ) as socket:
            await socket.send(json.dumps({"type": "resume", "since": 0, "view": {}}))
            await asyncio.wait_for(socket.recv(), WAIT_S)
            monkeypatch.setenv("DATABASE_URL", two_instances.database_url)
            monkeypatch.setenv("REDIS_URL", two_instances.redis.url)
            assert await asyncio.to_thread(main, ["sessions", "end", "--user", "anna"]) == 0
            await closed_as_signed_out(socket)
        page = await browser.get("/board")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_disabling_a_user_on_one_instance_closes_their_socket_on_the_other(
    two_instances: TwoInstances,  # noqa: F811 - the fixture imported above
) -> None:
    a, b = two_instances.a, two_instances.b
    async with (
        httpx.AsyncClient(base_url=b, timeout=WAIT_S) as browser,
        httpx.AsyncClient(timeout=WAIT_S) as admin_client,
    ):
        await signed_in(browser, "anna")
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        socket_url = b.replace("http://", "ws://") + "/board/ws"
        headers = {"Cookie": cookie}
        async with websockets.connect(
            socket_url, additional_headers=headers, origin=b, open_timeout=WAIT_S
        ) as socket:
            await socket.send(json.dumps({"type": "resume", "since": 0, "view": {}}))
            await asyncio.wait_for(socket.recv(), WAIT_S)

            admin = await token_of(admin_client, a, "admin")
            auth = {"Authorization": f"Bearer {admin}"}
            users = [
                await admin_client.get(f"{a}{API}/users/{n}", headers=auth) for n in range(1, 30)
            ]
            anna = next(u for u in users if u.status_code == 200 and u.json()["username"] == "anna")
            changed = await admin_client.patch(
                f"{a}{API}/users/{anna.json()['id']}",
                json={"active": False},
                headers={**auth, "If-Match": anna.headers["etag"]},
            )
            assert changed.status_code == 200, changed.text

            await closed_as_signed_out(socket)
        page = await browser.get("/board")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
