"""Operator Olga, logged in, tries to learn about operator Omar through every feed.

A real server on the api plant: Olga has the Cut on the mill, Omar the Weld
on the welding cell. Schedulers and managers then change Omar's work, his
record and his machine. Olga may follow the change feed (she sees only what
concerns her, with every other id left out), her own live channel, and
nothing of the board's or the wall's.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app import clock

PASSWORD = "takt-test-password"
POLICY_VIOLATION = 1008
WAIT_S = 10.0


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: what is filtered does not depend on the database."""
    return sqlite_database_url


@dataclass
class Floor:
    url: str
    http: httpx.AsyncClient
    plant: Any
    tokens: dict[str, str]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def place(self, task: int, operator: int, machine: int, hours: int) -> None:
        start = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
        current = await self.http.get(f"/api/v1/tasks/{task}", headers=self.auth("anna"))
        placed = await self.http.put(
            f"/api/v1/tasks/{task}/assignment",
            headers={**self.auth("anna"), "If-Match": current.headers["etag"]},
            json={
                "operator_id": operator,
                "equipment_id": machine,
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
            },
        )
        assert placed.status_code == 200, placed.text

    async def change_omars_world(self) -> None:
        """A move of Omar's task, an edit of his record, his machine taken down."""
        plant = self.plant
        await self.place(plant.weld, plant.omar, plant.welder, 3)
        omar = await self.http.get(f"/api/v1/operators/{plant.omar}", headers=self.auth("maria"))
        edited = await self.http.patch(
            f"/api/v1/operators/{plant.omar}",
            headers={**self.auth("maria"), "If-Match": omar.headers["etag"]},
            json={"skills": [{"skill": "welding", "level": 3}]},
        )
        assert edited.status_code == 200, edited.text
        down = await self.http.put(
            f"/api/v1/equipment/{plant.welder}/status",
            headers=self.auth("maria"),
            json={"status": "maintenance"},
        )
        assert down.status_code == 200, down.text

    async def revision(self) -> int:
        changes = await self.http.get("/api/v1/changes?since=0", headers=self.auth("anna"))
        revision: int = changes.json()["revision"]
        return revision


@pytest.fixture
async def floor(
    plant: Any, database_url: str, live_server: Any, tmp_path: Any
) -> AsyncIterator[Floor]:
    url = live_server(database_url=database_url, var_dir=tmp_path / "var")
    async with httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
        tokens = {}
        for name in ("anna", "maria", "olga", "omar"):
            response = await http.post(
                "/api/v1/auth/token", json={"username": name, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            tokens[name] = response.json()["access_token"]
        world = Floor(url, http, plant, tokens)
        await world.place(plant.cut, plant.olga, plant.mill, 1)
        await world.place(plant.weld, plant.omar, plant.welder, 2)
        yield world


def reveals_omar(text: str, plant: Any) -> bool:
    """His name, his task's name, his machine's name or his task's id in a page."""
    markers = ("Omar", ">Weld<", "Weld cell", f'data-task-id="{plant.weld}"', f'task-{plant.weld}"')
    return any(marker in text for marker in markers)


async def test_the_change_feed_shows_an_operator_only_what_concerns_them(floor: Floor) -> None:
    plant = floor.plant
    await floor.change_omars_world()
    whole = (await floor.http.get("/api/v1/changes?since=0", headers=floor.auth("anna"))).json()
    olgas = (await floor.http.get("/api/v1/changes?since=0", headers=floor.auth("olga"))).json()
    assert olgas["revision"] == whole["revision"] and olgas["reload"] is False
    assert olgas["changes"], "her own placement concerns her"
    own = {"tasks": {plant.cut}, "equipment": {plant.mill}, "jobs": {plant.job}}
    own["operators"] = {plant.olga}
    for change in olgas["changes"]:
        for name, ids in change["entities"].items():
            assert set(ids) <= own[name], change
        assert change["actor_id"] is None  # the scheduler's user id is not hers to know
    placed = [c for c in olgas["changes"] if c["kind"] == "assignment.set"]
    assert [c["entities"]["tasks"] for c in placed] == [[plant.cut]]
    # The whole log had Omar's changes in it; hers has none of them.
    assert len(whole["changes"]) > len(olgas["changes"])
    omars = (await floor.http.get("/api/v1/changes?since=0", headers=floor.auth("omar"))).json()
    assert all(plant.cut not in c["entities"].get("tasks", []) for c in omars["changes"])
    assert any(plant.weld in c["entities"].get("tasks", []) for c in omars["changes"])


async def test_a_short_page_of_the_feed_says_where_to_resume(floor: Floor) -> None:
    await floor.change_omars_world()
    newest = await floor.revision()
    first = await floor.http.get("/api/v1/changes?since=0&limit=2", headers=floor.auth("olga"))
    resume_at = first.json()["revision"]
    assert resume_at == 2 < newest
    rest = await floor.http.get(f"/api/v1/changes?since={resume_at}", headers=floor.auth("olga"))
    assert rest.json()["revision"] == newest
    assert all(c["revision"] > resume_at for c in rest.json()["changes"])


async def test_the_board_and_the_wall_are_closed_to_an_operator(floor: Floor) -> None:
    token = floor.tokens["olga"]
    ws_url = floor.url.replace("http://", "ws://")
    async with connect(
        f"{ws_url}/board/ws?{urlencode({'access_token': token})}", open_timeout=WAIT_S
    ) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.send(json.dumps({"type": "resume", "since": 0}))
            async with asyncio.timeout(WAIT_S):
                while True:
                    assert not reveals_omar(str(await socket.recv()), floor.plant)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == POLICY_VIOLATION
    for path in ("/board/sse", "/board/poll"):
        refused = await floor.http.get(path, params={"since": "0", "access_token": token})
        assert refused.status_code == 403, path
        assert not reveals_omar(refused.text, floor.plant)
    # Signed in on her phone, with a session cookie: still no board, no wall.
    async with httpx.AsyncClient(base_url=floor.url, timeout=WAIT_S) as phone:
        form = await phone.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        signed_in = await phone.post(
            "/login",
            data={"username": "olga", "password": PASSWORD, "csrf_token": csrf.group(1)},
        )
        assert signed_in.status_code == 303
        board = await phone.get("/board")  # sends her to her own screen
        assert (board.status_code, board.headers["location"]) == (303, "/my")
        for path in (
            "/board/sse?since=0",
            "/board/poll?since=0",
            f"/board/tasks/{floor.plant.weld}",
            f"/board/jobs/{floor.plant.job}/critical",
            "/wall",
            "/wall/sse",
            "/wall/poll",
        ):
            response = await phone.get(path)
            assert response.status_code == 403, (path, response.status_code)
            assert not reveals_omar(response.text, floor.plant), path
        own = await phone.get("/my/list")
        assert own.status_code == 200 and "Cut" in own.text
        assert not reveals_omar(own.text, floor.plant)


async def test_her_own_channel_carries_nothing_of_omars(floor: Floor) -> None:
    plant = floor.plant
    token = floor.tokens["olga"]
    ws_url = floor.url.replace("http://", "ws://")
    frames: list[str] = []
    async with connect(
        f"{ws_url}/my/ws?{urlencode({'access_token': token})}", open_timeout=WAIT_S
    ) as socket:
        await socket.send(json.dumps({"type": "resume", "since": 0}))
        await floor.change_omars_world()
        await floor.place(plant.cut, plant.olga, plant.mill, 4)  # then one of hers
        async with asyncio.timeout(WAIT_S):
            while not frames or "my-work" not in frames[-1] or len(frames) < 2:
                frames.append(str(await socket.recv()))
    assert any("Cut" in frame for frame in frames)
    assert not any(reveals_omar(frame, plant) for frame in frames)
    streamed = ""
    params = {"since": "0", "access_token": token}
    async with floor.http.stream("GET", "/my/sse", params=params) as stream:
        assert stream.status_code == 200
        async with asyncio.timeout(WAIT_S):
            async for line in stream.aiter_lines():
                streamed += line + "\n"
                if "my-revision" in line:
                    break
    assert "Cut" in streamed and not reveals_omar(streamed, plant)
    polled = await floor.http.get("/my/poll", params={"since": "0", "access_token": token})
    assert polled.status_code == 200 and "Cut" in polled.text
    assert not reveals_omar(polled.text, plant)
    api = [
        await floor.http.get(f"/api/v1/tasks/{plant.weld}", headers=floor.auth("olga")),
        await floor.http.get(f"/api/v1/operators/{plant.omar}", headers=floor.auth("olga")),
    ]
    assert [r.status_code for r in api] == [404, 404]
    listed = await floor.http.get(
        f"/api/v1/tasks?operator_id={plant.omar}", headers=floor.auth("olga")
    )
    assert [task["id"] for task in listed.json()["items"]] == [plant.cut]
