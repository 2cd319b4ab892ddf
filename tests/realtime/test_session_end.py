"""Server-side sessions against a real server: logout, disable and role change take
effect everywhere at once — pages, the API with the cookie, WebSocket and SSE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from live_world import (  # noqa: F401
    PASSWORD,
    WAIT_S,
    Board,
    board_fixture,
    frame_with,
    plant_fixture,
    resume,
    var_dir_fixture,
)
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

POLICY_VIOLATION = 1008


@asynccontextmanager
async def browser_client(
    board: Board, username: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client logged in through the form: its own session; yields it and its CSRF token."""
    async with httpx.AsyncClient(base_url=board.url, timeout=WAIT_S) as client:
        csrf = await board.log_in(client, username)
        yield client, csrf


@asynccontextmanager
async def board_socket(board: Board, client: httpx.AsyncClient) -> AsyncIterator[ClientConnection]:
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    host = board.url.removeprefix("http://")
    options = {"additional_headers": {"Cookie": cookie}, "origin": f"http://{host}"}
    async with board.socket(**options) as socket:
        await resume(socket, 0, board.plant.view)
        await frame_with(socket, 'id="presence"')
        yield socket


async def closed_code(socket: ClientConnection) -> tuple[int | None, str | None]:
    """Wait (bounded) for the server to close the socket; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT_S):
            while True:
                await socket.recv()
    frame = closed.value.rcvd
    return (frame.code, frame.reason) if frame else (None, None)


async def still_open(socket: ClientConnection) -> bool:
    """A ping frame is answered with a heartbeat while the socket lives."""
    await socket.send('{"type": "ping"}')
    await frame_with(socket, "heartbeat")
    return True


async def page_goes_to_login(client: httpx.AsyncClient) -> bool:
    page = await client.get("/board")
    return page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_disabling_a_user_closes_their_socket_and_stream_and_signs_out_every_browser(
    board: Board,
) -> None:
    async with (
        browser_client(board, "anna") as (first, first_csrf),
        browser_client(board, "anna") as (second, _),
        browser_client(board, "ben") as (bystander, _),
        board_socket(board, first) as anna_socket,
        board_socket(board, bystander) as ben_socket,
        second.stream("GET", f"/board/sse?since=0&start={board.plant.day.isoformat()}") as stream,
    ):
        assert stream.status_code == 200
        api = {"X-CSRF-Token": first_csrf}
        assert (await first.get("/api/v1/tasks", headers=api)).status_code == 200

        changed = await board.change_user("anna", active=False)
        assert changed.status_code == 200, changed.text
        assert changed.json()["active"] is False

        assert await closed_code(anna_socket) == (POLICY_VIOLATION, "signed out")
        # The SSE stream ends (the browser's reconnect then meets a 401).
        async with asyncio.timeout(WAIT_S):
            async for _ in stream.aiter_bytes():
                pass
        assert await page_goes_to_login(first)
        assert await page_goes_to_login(second)
        assert (await first.get("/api/v1/tasks", headers=api)).status_code == 401
        assert (await second.get("/board/sse?since=0")).status_code == 401
        # Someone else's board goes on.
        assert await still_open(ben_socket)
        assert (await bystander.get("/board")).status_code == 200
    # And a disabled user cannot sign in again.
    async with httpx.AsyncClient(base_url=board.url) as again:
        form = await again.get("/login")
        assert form.status_code == 200
        with pytest.raises(AssertionError):
            await board.log_in(again, "anna")


async def test_a_role_change_takes_effect_on_the_next_request(board: Board) -> None:
    async with (
        browser_client(board, "anna") as (client, csrf),
        board_socket(board, client) as socket,
    ):
        api_login = await board.http.post(
            "/api/v1/auth/token", json={"username": "anna", "password": PASSWORD}
        )
        refresh = api_login.json()["refresh_token"]
        changed = await board.change_user("anna", role="manager")
        assert changed.status_code == 200, changed.text
        assert await closed_code(socket) == (POLICY_VIOLATION, "signed out")
        # Her API login ends too: its refresh token is refused.
        again = await board.http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert again.status_code == 401
        assert await page_goes_to_login(client)
        assert (
            await client.get("/api/v1/tasks", headers={"X-CSRF-Token": csrf})
        ).status_code == 401
        # Signing in again, the new role is the one that counts: a manager lands on the wall.
        await board.log_in(client, "anna")
        assert (await client.get("/")).headers["location"] == "/wall"


async def test_logging_out_elsewhere_ends_only_that_session(board: Board) -> None:
    async with (
        browser_client(board, "anna") as (desk, _),
        browser_client(board, "anna") as (tablet, tablet_csrf),
        board_socket(board, desk) as desk_socket,
        board_socket(board, tablet) as tablet_socket,
    ):
        out = await tablet.post("/logout", headers={"X-CSRF-Token": tablet_csrf})
        assert out.status_code == 303
        assert await closed_code(tablet_socket) == (POLICY_VIOLATION, "signed out")
        assert await page_goes_to_login(tablet)
        # The desk's session, socket and pages are untouched.
        assert await still_open(desk_socket)
        assert (await desk.get("/board")).status_code == 200


async def test_an_ended_cookie_kept_by_hand_is_refused(board: Board) -> None:
    """Logging out ends the record, not just the cookie: a copy of the cookie is dead too."""
    async with browser_client(board, "ben") as (client, csrf):
        copied = dict(client.cookies.items())
        assert (await client.post("/logout", headers={"X-CSRF-Token": csrf})).status_code == 303
    async with httpx.AsyncClient(base_url=board.url, cookies=copied) as thief:
        assert await page_goes_to_login(thief)
        assert (await thief.get("/api/v1/tasks", headers={"X-CSRF-Token": csrf})).status_code == 401


async def test_changing_users_is_for_admins_and_checks_the_version(board: Board) -> None:
    anna = await board.token("anna")
    admin = await board.token("ada")
    uid, etag = await board.user(admin, "ben")
    refused = await board.http.patch(
        f"/api/v1/users/{uid}",
        json={"active": False},
        headers={"Authorization": f"Bearer {anna}", "If-Match": etag},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    stale = await board.http.patch(
        f"/api/v1/users/{uid}",
        json={"role": "admin"},
        headers={"Authorization": f"Bearer {admin}", "If-Match": '"999"'},
    )
    assert stale.status_code == 412
    bad = await board.http.patch(
        f"/api/v1/users/{uid}",
        json={"role": "overlord"},
        headers={"Authorization": f"Bearer {admin}", "If-Match": etag},
    )
    assert bad.status_code == 422
    me, my_etag = await board.user(admin, "ada")
    own = await board.http.patch(
        f"/api/v1/users/{me}",
        json={"active": False},
        headers={"Authorization": f"Bearer {admin}", "If-Match": my_etag},
    )
    assert own.status_code == 409
    # None of it wrote anything: ben is still an active scheduler at the same version.
    unchanged = await board.http.get(
        f"/api/v1/users/{uid}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert unchanged.headers["etag"] == etag
    assert unchanged.json()["role"] == "scheduler" and unchanged.json()["active"] is True


async def test_signing_a_user_out_everywhere_ends_their_wall_stream(board: Board) -> None:
    """The wall's long-lived session is revocable: ending it closes the open stream."""
    async with browser_client(board, "ada") as (wall, _):
        async with wall.stream("GET", "/wall/sse") as stream:
            assert stream.status_code == 200
            admin = await board.token("ada")
            ada, _ = await board.user(admin, "ada")
            ended = await board.http.delete(
                f"/api/v1/users/{ada}/sessions", headers={"Authorization": f"Bearer {admin}"}
            )
            assert ended.status_code == 200 and ended.json() == {"ended": 1}
            async with asyncio.timeout(WAIT_S):
                async for _ in stream.aiter_bytes():
                    pass
        assert (await wall.get("/wall/poll?since=0")).status_code == 401
        assert (await wall.get("/wall")).status_code == 303
