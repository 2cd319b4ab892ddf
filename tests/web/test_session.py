"""Browser sessions: logging in and out, the cookie, CSRF, and who may open the board."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from board_plant import PASSWORD, BoardWorld, board_world, log_in
from sqlalchemy import select
from starlette.requests import HTTPConnection

from app import clock
from app.db import tables as t
from app.services.sessions import open_session
from app.web.session import (
    SESSION_COOKIE,
    decode_session,
    encode_session,
    page_actor,
    safe_next,
)


@pytest.fixture
async def world(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(sqlite_database_url, tmp_path) as world:
        yield world


async def _login_form(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _set_cookie(response: httpx.Response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))


async def test_a_scheduler_logs_in_and_lands_on_the_board(world: BoardWorld) -> None:
    client = world.client
    csrf = await _login_form(client)
    response = await client.post(
        "/login",
        data={"username": "Anna", "password": PASSWORD, "csrf_token": csrf, "next": "/board"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/board"
    cookie = _set_cookie(response, SESSION_COOKIE).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    front_door = await client.get("/")
    assert (front_door.status_code, front_door.headers["location"]) == (303, "/board")
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    board = await client.get("/board")
    assert board.status_code == 200
    assert "Anna Weber" in board.text
    assert '<meta name="csrf-token"' in board.text
    assert 'hx-headers=\'{"X-CSRF-Token"' in board.text


async def test_behind_an_https_proxy_the_cookie_is_secure(world: BoardWorld) -> None:
    client = world.client
    csrf = await _login_form(client)
    response = await client.post(
        "/login",
        data={"username": "anna", "password": PASSWORD, "csrf_token": csrf},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 303
    assert "secure" in _set_cookie(response, SESSION_COOKIE).lower()


async def test_a_wrong_password_shows_the_form_again(world: BoardWorld) -> None:
    client = world.client
    csrf = await _login_form(client)
    response = await client.post(
        "/login", data={"username": "anna", "password": "nope-nope", "csrf_token": csrf}
    )
    assert response.status_code == 401
    assert "wrong username or password" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_the_login_form_needs_its_csrf_token(world: BoardWorld) -> None:
    await _login_form(world.client)
    response = await world.client.post(
        "/login", data={"username": "anna", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in world.client.cookies


async def test_next_never_leaves_the_site(world: BoardWorld) -> None:
    assert safe_next("//evil.example/board") == "/board"
    assert safe_next("https://evil.example") == "/board"
    assert safe_next("/board?zoom=week") == "/board?zoom=week"
    csrf = await _login_form(world.client)
    response = await world.client.post(
        "/login",
        data={"username": "anna", "password": PASSWORD, "csrf_token": csrf, "next": "//evil.x"},
    )
    assert response.headers["location"] == "/board"


async def test_without_a_session_pages_redirect_to_login(world: BoardWorld) -> None:
    assert (await world.client.get("/")).headers["location"] == "/login"
    response = await world.client.get("/board?zoom=week")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fboard%3Fzoom%3Dweek"
    fragment = await world.client.get(
        "/board/tray", headers={"HX-Request": "true", "HX-Current-URL": "http://t/board?zoom=day"}
    )
    assert fragment.status_code == 401
    assert fragment.headers["HX-Redirect"] == "/login?next=%2Fboard%3Fzoom%3Dday"


async def test_logout_needs_the_csrf_token_and_ends_the_session(world: BoardWorld) -> None:
    csrf = await log_in(world.client, "anna")
    refused = await world.client.post("/logout")
    assert refused.status_code == 403
    assert "security token" in refused.text
    wrong = await world.client.post("/logout", headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403
    done = await world.client.post("/logout", data={"csrf_token": csrf})
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert (await world.client.get("/board")).status_code == 303


async def test_unsafe_board_requests_without_csrf_are_refused(world: BoardWorld) -> None:
    await log_in(world.client, "anna")
    plant = world.plant
    response = await world.client.post(
        f"/board/tasks/{plant.cut}/place?{world.plant.day_view}",
        data={"version": "1", "starts_at": world.plant.form(12), "ends_at": world.plant.form(13)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 403
    assert 'id="notice"' in response.text
    async with world.services.db.read() as session:
        assert (await session.get(t.Task, plant.cut)).version == 1  # type: ignore[union-attr]


async def test_an_operator_lands_on_my_tasks_not_on_the_board(world: BoardWorld) -> None:
    client = world.client
    csrf = await _login_form(client)
    response = await client.post(
        "/login",
        data={"username": "olga", "password": PASSWORD, "csrf_token": csrf, "next": "/board"},
    )
    assert response.headers["location"] == "/my"
    assert (await client.get("/")).headers["location"] == "/my"
    mine = await client.get("/my")
    assert mine.status_code == 200
    assert "Cut" in mine.text and "Weld" not in mine.text
    board = await client.get("/board")
    assert board.status_code == 303 and board.headers["location"] == "/my"
    detail = await client.get(f"/board/tasks/{world.plant.cut}")
    assert detail.status_code == 403


async def test_a_manager_sees_a_read_only_board(world: BoardWorld) -> None:
    csrf = await log_in(world.client, "maria")
    board = await world.client.get(f"/board?{world.plant.day_view}")
    assert board.status_code == 200
    assert "read-only" in board.text
    assert f'id="bar-{world.plant.cut}"' in board.text
    assert "movable" not in board.text
    assert 'data-editable="false"' in board.text
    assert 'href="/wall"' in board.text
    # A manager's own screen is the wall; the front door sends them there.
    assert (await world.client.get("/")).headers["location"] == "/wall"
    response = await world.client.post(
        f"/board/tasks/{world.plant.cut}/place?{world.plant.day_view}",
        data={"version": "1", "starts_at": world.plant.form(12), "ends_at": world.plant.form(13)},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert response.status_code == 403


async def test_the_session_is_no_access_token_and_expires(world: BoardWorld) -> None:
    settings = world.services.settings
    async with world.services.db.read() as session:
        user = (await session.execute(select(t.User).where(t.User.username == "anna"))).scalar_one()
    record = await open_session(services=world.services, user=user)
    cookie = encode_session(settings=settings, user=user, session_id=record.id)
    later = clock.now() + timedelta(hours=13)
    assert decode_session(cookie, settings=settings) is not None
    assert decode_session(cookie, settings=settings, now=later) is None
    assert decode_session(cookie + "x", settings=settings) is None
    api = await world.client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {cookie}"})
    assert api.status_code == 401


async def test_page_actor_reads_the_cookie_of_a_websocket_too(world: BoardWorld) -> None:
    settings = world.services.settings
    async with world.services.db.read() as session:
        user = (await session.execute(select(t.User).where(t.User.username == "ben"))).scalar_one()
    record = await open_session(services=world.services, user=user)
    cookie = encode_session(settings=settings, user=user, session_id=record.id)

    class App:
        state = type("State", (), {"services": world.services})()

    scope = {
        "type": "websocket",
        "path": "/board/ws",
        "headers": [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())],
        "app": App(),
    }
    actor = await page_actor(HTTPConnection(scope))
    assert actor is not None and actor.user_id == user.id and actor.role == "scheduler"
    anonymous = {"type": "websocket", "path": "/board/ws", "headers": [], "app": App()}
    assert await page_actor(HTTPConnection(anonymous)) is None


async def test_without_a_next_page_each_role_lands_on_its_own_screen(world: BoardWorld) -> None:
    landings = {}
    for username in ("anna", "maria", "olga"):
        world.client.cookies.clear()
        form = await world.client.get("/login")
        assert 'name="next" value=""' in form.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        response = await world.client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": csrf.group(1),
                  "next": ""},
        )  # fmt: skip
        landings[username] = response.headers["location"]
    assert landings == {"anna": "/board", "maria": "/wall", "olga": "/my"}


async def test_the_login_page_offers_single_sign_on_only_when_it_is_configured(
    world: BoardWorld,
) -> None:
    page = await world.client.get("/login")
    assert page.status_code == 200 and "Sign in with" not in page.text
    assert (await world.client.get("/login/oidc")).status_code == 404
    assert (await world.client.get("/login/oidc/callback?code=x&state=y")).status_code == 404
