"""An operator's live channel (`/my/ws`, `/my/sse`, `/my/poll`) against a real server.

What each test tries: operator Olga follows her channel while a scheduler
books and moves a task for operator Omar; she must hear nothing of it, and
then hear at once about a task booked for her.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from live_world import (  # noqa: F401
    PASSWORD,
    WAIT_S,
    Board,
    Plant as LivePlant,
    board_fixture,
    password_hash,
    plant_fixture,
    var_dir_fixture,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app import clock
from app.db import tables as t
from app.db.session import Database
from app.realtime.hub import MemoryHub
from app.services.context import SYSTEM, Services
from app.services.write_path import change
from app.settings import Settings

POLICY_VIOLATION = 1008


@dataclass
class Crew:
    board: Board
    omar: int
    scheduler: str
    olga: str

    async def book(self, task_id: int, operator: int, hour: int) -> None:
        auth = {"Authorization": f"Bearer {self.scheduler}"}
        http = self.board.http
        current = await http.get(f"/api/v1/tasks/{task_id}", headers=auth)
        response = await http.put(
            f"/api/v1/tasks/{task_id}/assignment",
            headers={**auth, "If-Match": current.headers["etag"]},
            json={
                "operator_id": operator,
                "equipment_id": self.board.plant.mill,
                "start": self.board.plant.at(hour).isoformat(),
                "end": self.board.plant.at(hour + 1).isoformat(),
            },
        )
        assert response.status_code == 200, response.text


@pytest.fixture
async def crew(
    plant: LivePlant, sqlite_database_url: str, var_dir: Path, board: Board
) -> AsyncIterator[Crew]:
    """The live plant with a second operator, Omar, who has a login too."""
    settings = Settings(database_url=sqlite_database_url, var_dir=var_dir)
    services = Services(settings=settings, db=Database(sqlite_database_url), hub=MemoryHub())
    try:
        async with change(services, SYSTEM, "test.omar") as tx:
            omar = t.Operator(
                name="Omar Haddad", skills=[t.OperatorSkill(skill="milling", level=3)]
            )
            tx.session.add(omar)
            await tx.session.flush()
            tx.session.add(
                t.User(
                    username="omar",
                    display_name="Omar Haddad",
                    password_hash=password_hash(),
                    role="operator",
                    operator_id=omar.id,
                    created_at=clock.now(),
                )
            )
        omar_id = omar.id
    finally:
        await services.db.dispose()
    yield Crew(board, omar_id, await board.token("anna"), await board.token("olga"))


def _socket_url(board: Board, token: str | None) -> str:
    url = board.url.replace("http://", "ws://") + "/my/ws"
    return url + (f"?{urlencode({'access_token': token})}" if token else "")


async def _frames_until(socket: ClientConnection, needle: str) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = await socket.recv()
            assert isinstance(frame, str)
            frames.append(frame)
            if needle in frame:
                return frames


async def test_an_operators_socket_never_carries_another_operators_task(crew: Crew) -> None:
    cut, drill = crew.board.plant.tasks[0], crew.board.plant.tasks[1]
    async with connect(_socket_url(crew.board, crew.olga), open_timeout=WAIT_S) as socket:
        since = await crew.board.revision(crew.scheduler)
        await socket.send(json.dumps({"type": "resume", "since": since}))
        # Omar's task, booked and then moved: Olga's list does not change.
        await crew.book(drill, crew.omar, 9)
        await crew.book(drill, crew.omar, 11)
        await crew.book(cut, crew.board.plant.olga, 13)
        frames = await _frames_until(socket, f'id="my-task-{cut}"')
    assert all("Drill" not in frame and f"my-task-{drill}" not in frame for frame in frames)
    assert 'id="my-revision"' in frames[-1]


async def test_a_task_moved_away_from_an_operator_leaves_her_list_live(crew: Crew) -> None:
    cut = crew.board.plant.tasks[0]
    await crew.book(cut, crew.board.plant.olga, 8)
    async with connect(_socket_url(crew.board, crew.olga), open_timeout=WAIT_S) as socket:
        since = await crew.board.revision(crew.scheduler)
        await socket.send(json.dumps({"type": "resume", "since": since}))
        await crew.book(cut, crew.omar, 10)
        frames = await _frames_until(socket, 'id="my-work"')
    assert f"my-task-{cut}" not in frames[-1] and "Nothing planned for you today" in frames[-1]


@pytest.mark.parametrize("who", [None, "anna", "forged"])
async def test_only_operators_may_open_the_my_tasks_socket(crew: Crew, who: str | None) -> None:
    token = {None: None, "anna": crew.scheduler, "forged": "not-a-jwt"}[who]
    async with connect(_socket_url(crew.board, token), open_timeout=WAIT_S) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.send(json.dumps({"type": "resume", "since": 0}))
            await _frames_until(socket, "never")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == POLICY_VIOLATION


async def test_the_operator_stream_and_poll_carry_only_her_own_tasks(crew: Crew) -> None:
    cut, drill = crew.board.plant.tasks[0], crew.board.plant.tasks[1]
    auth = {"Authorization": f"Bearer {crew.olga}"}
    http = crew.board.http
    since = await crew.board.revision(crew.scheduler)
    seen = ""
    async with http.stream("GET", f"/my/sse?since={since}", headers=auth) as stream:
        assert stream.status_code == 200
        await crew.book(drill, crew.omar, 9)
        await crew.book(cut, crew.board.plant.olga, 13)
        async with asyncio.timeout(WAIT_S):
            async for line in stream.aiter_lines():
                seen += line + "\n"
                if f"my-task-{cut}" in line:
                    break
    assert "Drill" not in seen and f"my-task-{drill}" not in seen
    polled = await http.get("/my/poll?since=0", headers=auth)
    assert f"my-task-{cut}" in polled.text and "Drill" not in polled.text
    assert int(polled.headers["x-takt-revision"]) > since
    unchanged = await http.get(f"/my/poll?since={polled.headers['x-takt-revision']}", headers=auth)
    assert unchanged.text == ""
    refused = await http.get(
        "/my/poll?since=0", headers={"Authorization": f"Bearer {crew.scheduler}"}
    )
    assert refused.status_code == 403
    assert (await http.get("/my/sse?since=0")).status_code == 401


async def test_an_operator_cannot_read_another_operators_task_over_the_api(crew: Crew) -> None:
    drill = crew.board.plant.tasks[1]
    await crew.book(drill, crew.omar, 9)
    response = await crew.board.http.get(
        f"/api/v1/tasks/{drill}", headers={"Authorization": f"Bearer {crew.olga}"}
    )
    assert response.status_code == 404
    assert PASSWORD not in response.text
