"""`/board/sse` and `/board/poll` against a real server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from live_world import WAIT_S, Board, board_fixture, plant_fixture, var_dir_fixture  # noqa: F401


@dataclass
class Event:
    id: str | None = None
    data: list[str] = field(default_factory=list)

    @property
    def html(self) -> str:
        return "\n".join(self.data)


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []
        self.retry: int | None = None

    async def next(self, needle: str = "") -> Event:
        """The next event whose HTML contains `needle`."""
        async with asyncio.timeout(WAIT_S):
            while True:
                event = await self._event()
                if needle in event.html:
                    return event

    async def _event(self) -> Event:
        event = Event()
        async for line in self.lines:
            if line == "":
                if event.data:
                    return event
                event = Event()
            elif line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("id: "):
                event.id = line.removeprefix("id: ")
            elif line.startswith("data: "):
                event.data.append(line.removeprefix("data: "))
            elif line.startswith("retry: "):
                self.retry = int(line.removeprefix("retry: "))
        raise EOFError("the stream ended")


@asynccontextmanager
async def stream(
    board: Board, token: str, *, since: int, headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    params = {**board.plant.view, "since": str(since), "access_token": token}
    async with board.http.stream(
        "GET", "/board/sse", params=params, headers=headers or {}
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def test_changes_stream_as_events_whose_id_is_the_revision(board: Board) -> None:
    anna = await board.token("anna")
    cut = board.plant.tasks[0]
    async with stream(board, anna, since=await board.revision(anna)) as events:
        presence = await events.next('id="presence"')
        assert presence.id is None  # presence does not move the resume point
        revision = await board.move(anna, cut, 9)
        event = await events.next("board-revision")
    assert event.id == str(revision)
    assert f'data-revision="{revision}"' in event.html and f'id="bar-{cut}"' in event.html
    assert events.retry is not None


async def test_a_reconnect_resumes_from_last_event_id(board: Board) -> None:
    anna = await board.token("anna")
    cut, drill, deburr = board.plant.tasks
    await board.move(anna, cut, 6)
    applied = await board.move(anna, drill, 8)
    newest = await board.move(anna, deburr, 10)
    # The browser reconnects to the same URL (since=0) and says where it got to.
    async with stream(board, anna, since=0, headers={"Last-Event-ID": str(applied)}) as events:
        event = await events.next("board-revision")
    assert event.id == str(newest)
    assert f'id="bar-{deburr}"' in event.html
    assert f'id="bar-{drill}"' not in event.html and f'id="bar-{cut}"' not in event.html


async def test_the_stream_refuses_strangers_and_operators(board: Board) -> None:
    anonymous = await board.http.get("/board/sse", params={"since": "0"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    olga = await board.token("olga")
    refused = await board.http.get("/board/sse", params={"since": "0", "access_token": olga})
    assert refused.status_code == 403
    anna = await board.token("anna")
    bad = await board.http.get("/board/sse", params={"since": "-1", "access_token": anna})
    assert bad.status_code == 400


async def test_polling_returns_the_changes_since_and_who_is_here(board: Board) -> None:
    anna, ben = await board.token("anna"), await board.token("ben")
    cut, drill, _ = board.plant.tasks
    since = await board.move(anna, cut, 6)
    newest = await board.move(anna, drill, 8)
    auth = {"Authorization": f"Bearer {ben}"}
    # Anna polls too, so Ben sees her.
    await board.http.get(
        "/board/poll",
        params={**board.plant.view, "since": str(newest)},
        headers={"Authorization": f"Bearer {anna}"},
    )
    polled = await board.http.get(
        "/board/poll", params={**board.plant.view, "since": str(since)}, headers=auth
    )
    assert polled.status_code == 200 and polled.headers["cache-control"] == "no-store"
    revisions = re.findall(r'id="board-revision"[^>]*data-revision="(\d+)"', polled.text)
    assert revisions == [str(newest)]
    assert f'id="bar-{drill}"' in polled.text and f'id="bar-{cut}"' not in polled.text
    assert "Anna Amsel" in polled.text
    current = await board.http.get(
        "/board/poll", params={**board.plant.view, "since": str(newest)}, headers=auth
    )
    assert "board-revision" not in current.text and 'id="presence"' in current.text
