"""Render each change once per view, not once per connected board.

Most boards look at the same view (today, by equipment), and what the board
renderer returns depends only on the view, whether the viewer may edit, the
tasks touched and the plan at that revision. So the first feed to ask starts
the render and every other feed with the same question awaits the same
result. With 2,000 boards open, one change costs one render, not 2,000.
A board in step with the changes starts (or joins) the render as the change
arrives (`ahead`) and is woken only once it is ready (feed.py).

Boards that fell behind ask different questions (each its own batch of
changes), so at most `RENDERS_AT_ONCE` renders run at a time: each holds a
pooled database connection, and renders must not take them all from the
requests (under load one instance's renders did, and its requests waited
out the pool's timeout). A board waiting for its turn only batches more.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Set as AbstractSet

from app.realtime.change_messages import Row
from app.realtime.feed import RenderChanges, RenderRefresh
from app.services.access import allowed
from app.services.board_view import BoardView
from app.services.context import Actor, Services

# Recent renders kept; a change's renders are all asked for within moments.
KEEP = 256
# Renders running at once (each holds one pooled database connection while it reads).
RENDERS_AT_ONCE = 4


class SharedRenders:
    def __init__(self, render: RenderChanges, refresh: RenderRefresh | None) -> None:
        self._render = render
        self._refresh = refresh
        self._results: OrderedDict[Hashable, asyncio.Future[str]] = OrderedDict()
        self._slots = asyncio.Semaphore(RENDERS_AT_ONCE)

    async def render(
        self,
        services: Services,
        actor: Actor,
        view: BoardView,
        task_ids: AbstractSet[int],
        revision: int,
        rows: frozenset[Row] = frozenset(),
    ) -> str:
        return await asyncio.shield(self.ahead(services, actor, view, task_ids, revision, rows))

    def ahead(
        self,
        services: Services,
        actor: Actor,
        view: BoardView,
        task_ids: AbstractSet[int],
        revision: int,
        rows: frozenset[Row] = frozenset(),
    ) -> asyncio.Future[str]:
        """The render `render` would await, started (or joined) without waiting for it."""
        key = ("changes", view, _may_edit(actor), frozenset(task_ids), revision, rows)
        return self._started(
            key, lambda: self._render(services, actor, view, task_ids, revision, rows)
        )

    async def refresh(
        self, services: Services, actor: Actor, view: BoardView, revision: int | None = None
    ) -> str:
        assert self._refresh is not None
        refresh = self._refresh
        if revision is None:  # "the plan as it is now": nothing to share safely
            return await refresh(services, actor, view, None)
        key = ("refresh", view, _may_edit(actor), revision)
        # Shielded: one client going away must not cancel the render the others await.
        return await asyncio.shield(
            self._started(key, lambda: refresh(services, actor, view, revision))
        )

    def _started(self, key: Hashable, make: Callable[[], Awaitable[str]]) -> asyncio.Future[str]:
        result = self._results.get(key)
        if result is None:
            result = asyncio.ensure_future(self._in_turn(make))
            result.add_done_callback(lambda done: self._forget_failure(key, done))
            self._results[key] = result
            while len(self._results) > KEEP:
                self._results.popitem(last=False)
        return result

    async def _in_turn(self, make: Callable[[], Awaitable[str]]) -> str:
        async with self._slots:
            return await make()

    def _forget_failure(self, key: Hashable, done: asyncio.Future[str]) -> None:
        failed = done.cancelled() or done.exception() is not None
        if failed and self._results.get(key) is done:
            del self._results[key]


def _may_edit(actor: Actor) -> bool:
    return allowed(actor, "assignment.write")
