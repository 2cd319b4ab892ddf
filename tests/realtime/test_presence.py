"""Presence across instances: two `Presence` objects on one hub stand for two app instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from app.realtime.hub import MemoryHub
from app.realtime.presence import Presence, Viewer
from app.web.live_fragments import initials, render_presence

BOARD = 1
WAIT_S = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def instances(clock: Clock) -> AsyncIterator[tuple[Presence, Presence]]:
    hub = MemoryHub()
    one, two = (Presence(hub, beat_s=0.05, ttl_s=30, clock=clock) for _ in range(2))
    yield one, two
    await one.stop()
    await two.stop()


async def until(condition: Callable[[], bool]) -> None:
    # The state under test lives in other tasks; look again until it holds.
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def names(presence: Presence) -> set[str]:
    return {viewer.name for viewer in presence.viewers(BOARD)}


async def test_viewers_on_another_instance_are_seen_and_leave(
    instances: tuple[Presence, Presence],
) -> None:
    one, two = instances
    with two.seat(BOARD, user_id=2, name="Ben", on_change=lambda: None):
        with one.seat(BOARD, user_id=1, name="Anna", on_change=lambda: None) as anna:
            await until(lambda: names(two) == {"Anna", "Ben"})
            anna.drag(42)
            await until(lambda: any(v.dragging == 42 for v in two.viewers(BOARD)))
            anna.drag_end()
            await until(lambda: all(v.dragging is None for v in two.viewers(BOARD)))
        await until(lambda: names(two) == {"Ben"})


async def test_listeners_hear_of_changes(instances: tuple[Presence, Presence]) -> None:
    one, two = instances
    heard = asyncio.Event()
    with two.seat(BOARD, user_id=2, name="Ben", on_change=heard.set):
        heard.clear()
        with one.seat(BOARD, user_id=1, name="Anna", on_change=lambda: None):
            await asyncio.wait_for(heard.wait(), WAIT_S)


async def test_a_silent_instance_s_viewers_expire(
    instances: tuple[Presence, Presence], clock: Clock
) -> None:
    one, two = instances
    with (
        two.seat(BOARD, user_id=2, name="Ben", on_change=lambda: None),
        one.seat(BOARD, user_id=1, name="Anna", on_change=lambda: None),
    ):
        await until(lambda: "Anna" in names(two))
        # Instance one crashes: no more heartbeats, no goodbye.
        for task in one._boards[BOARD].tasks:
            task.cancel()
        one._boards[BOARD].tasks = []
        one.hub = MemoryHub()  # what it would still publish reaches nobody
        clock.now += 31
        await until(lambda: names(two) == {"Ben"})


async def test_a_polling_viewer_stays_until_it_stops_polling(
    instances: tuple[Presence, Presence], clock: Clock
) -> None:
    one, _ = instances
    one.visit(BOARD, user_id=3, name="Carla")
    one.visit(BOARD, user_id=3, name="Carla")
    assert [v.name for v in one.viewers(BOARD)] == ["Carla"]
    clock.now += 31
    await until(lambda: one.viewers(BOARD) == [])


def test_the_presence_fragment_shows_others_and_their_drags() -> None:
    viewers = [
        Viewer("a:1", 1, "Anna Amsel", dragging=7),
        Viewer("a:2", 1, "Anna Amsel"),
        Viewer("b:1", 2, "Ben <Becker>"),
        Viewer("b:2", 3, "Me Myself", dragging=8),
    ]
    html = render_presence(viewers, me=3)
    assert html.count('class="presence-viewer"') == 2
    assert "Ben &lt;Becker&gt;" in html and "<Becker>" not in html
    assert '<li data-task-id="7" data-user="Anna Amsel"></li>' in html
    assert 'data-task-id="8"' not in html  # my own drag is no news to me
    assert 'hx-swap-oob="true"' in html and 'id="presence"' in html
    assert "Only you" in render_presence(viewers[3:], me=3)


def test_initials() -> None:
    assert [initials(n) for n in ("Anna Amsel", "ben", "Jean-Luc Picard", "")] == [
        "AA",
        "B",
        "JL",
        "?",
    ]
