"""Boards with the same view share one render per change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from clocks import PlantTime

from app.realtime.shared_render import RENDERS_AT_ONCE, SharedRenders
from app.services.board_view import BoardView
from app.services.context import Actor

ANNA = Actor(user_id=1, role="scheduler")
BEN = Actor(user_id=2, role="scheduler")
MARIA = Actor(user_id=3, role="manager")
TODAY = BoardView(start=PlantTime.current().day())


class CountingRenderer:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = False

    async def __call__(
        self,
        services: Any,
        actor: Actor,
        view: BoardView,
        task_ids: set[int],
        revision: int,
        rows: frozenset[tuple[str, int]] = frozenset(),
    ) -> str:
        self.calls.append((actor.role, view, frozenset(task_ids), revision))
        await asyncio.sleep(0)  # the others ask while this one is rendering
        if self.fail:
            raise RuntimeError("render failed")
        return f"<r{revision} {sorted(task_ids)} {actor.role}>"


async def test_many_boards_with_one_view_cost_one_render() -> None:
    renderer = CountingRenderer()
    shared = SharedRenders(renderer, None)
    results = await asyncio.gather(
        *(shared.render(None, actor, TODAY, {7}, 12) for actor in [ANNA, BEN] * 50)  # type: ignore[arg-type]
    )
    assert len(renderer.calls) == 1
    assert set(results) == {"<r12 [7] scheduler>"}


async def test_what_differs_is_rendered_apart() -> None:
    renderer = CountingRenderer()
    shared = SharedRenders(renderer, None)
    tomorrow = TODAY.shifted(1)
    await shared.render(None, ANNA, TODAY, {7}, 12)  # type: ignore[arg-type]
    await shared.render(None, MARIA, TODAY, {7}, 12)  # read-only board: no drag handles
    await shared.render(None, ANNA, tomorrow, {7}, 12)  # type: ignore[arg-type]
    await shared.render(None, ANNA, TODAY, {7, 8}, 13)  # type: ignore[arg-type]
    assert len(renderer.calls) == 4


async def test_a_failed_render_is_tried_again() -> None:
    renderer = CountingRenderer()
    renderer.fail = True
    shared = SharedRenders(renderer, None)
    with pytest.raises(RuntimeError):
        await shared.render(None, ANNA, TODAY, {7}, 12)  # type: ignore[arg-type]
    renderer.fail = False
    assert await shared.render(None, ANNA, TODAY, {7}, 12) == "<r12 [7] scheduler>"  # type: ignore[arg-type]
    assert len(renderer.calls) == 2


async def test_boards_that_ask_different_questions_render_a_few_at_a_time() -> None:
    """Each render holds a pooled database connection: boards that fell behind (each
    with its own batch) must not take them all from the requests."""
    running = 0
    most = 0
    release = asyncio.Event()

    async def renderer(
        services: Any,
        actor: Actor,
        view: BoardView,
        task_ids: set[int],
        revision: int,
        rows: frozenset[tuple[str, int]] = frozenset(),
    ) -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        return f"<r{revision}>"

    shared = SharedRenders(renderer, None)
    renders = [
        asyncio.create_task(shared.render(None, ANNA, TODAY, {n}, 100 + n))  # type: ignore[arg-type]
        for n in range(12)
    ]
    for _ in range(20):
        await asyncio.sleep(0)
    assert most == RENDERS_AT_ONCE < len(renders)
    release.set()
    assert await asyncio.gather(*renders) == [f"<r{100 + n}>" for n in range(12)]
