"""The dashboard wall's live side: one stream of frames per process, shared by every wall.

    hub schedule:{id} ──┐ (a push: the plan changed)
    minute boundary ────┼─▶ WallFeed._run ─▶ figures (DashboardCache) ─▶ render once ─▶ frame
                        │   at most one render per `min_gap`, which grows with the
                        │   compute time, so a burst of edits costs one computation
    GET /wall/sse ──────┘   each connection waits for the next frame and sends it
    GET /wall/poll          the latest frame (when the hub is no help: polling walls)

A frame is the whole state, never a diff, so a wall that missed frames only
needs the newest one. The minute tick also re-reads the revision, so a push
lost by Redis (at-most-once) leaves a wall stale for a minute at most; on the
hour the figures' key changes and the wall is recomputed even if nothing
else did. The loop runs only while some wall is streaming.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime

from app import clock
from app.realtime.feeds import follow
from app.realtime.hub import Message
from app.services.context import Services
from app.services.wall import DashboardCache, WallFigures
from app.services.write_path import schedule_channel

log = logging.getLogger(__name__)

MIN_GAP_S = 0.5
# The gap is at least this many times the last computation (a big plant under
# a storm of edits must not keep a core busy with the wall).
GAP_PER_COMPUTE = 2.0
# How often the loop looks at the server shutting down.
STOP_CHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class WallHtml:
    """A frame's HTML, rendered by the page side (`web/wall_render.py`)."""

    # Every section, for a wall whose figures differ from these.
    sections: str
    # Only the frame marker and the clock, for a wall that has these figures already.
    status: str


RenderWall = Callable[[WallFigures, datetime], WallHtml]


@dataclass(frozen=True, slots=True)
class WallFrame:
    # Counts up with every frame this process makes (what connections wait past).
    number: int
    revision: int
    # The figures' key: a wall showing this key needs only `html.status`.
    key: str
    # The plant-local minute the clock shows.
    minute: datetime
    figures: WallFigures
    html: WallHtml


class WallFeed:
    def __init__(
        self,
        services: Services,
        render: RenderWall,
        *,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.services = services
        self.cache = DashboardCache(services)
        self.render = render
        self.stopping = stopping
        self.frame: WallFrame | None = None
        self.renders = 0
        self._listeners = 0
        self._published = asyncio.Event()
        self._poked = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_refresh = float("-inf")

    @property
    def closing(self) -> bool:
        return self.stopping()

    # --- frames ----------------------------------------------------------------------------------

    async def latest(self) -> WallFrame:
        """A frame for the plan and clock as they are now (rendered only if either moved)."""
        async with self._lock:
            figures = await self.cache.current()
            minute = clock.now().replace(second=0, microsecond=0)
            frame = self.frame
            if frame is not None and (frame.key, frame.minute) == (figures.key, minute):
                return frame
            html = self.render(figures, clock.now())
            self.renders += 1
            number = frame.number + 1 if frame is not None else 1
            self.frame = WallFrame(number, figures.revision, figures.key, minute, figures, html)
            published, self._published = self._published, asyncio.Event()
            published.set()
            return self.frame

    async def next_frame(self, after: int, *, within: float) -> WallFrame | None:
        """The first frame numbered past `after`; None after `within` seconds or when closing."""
        deadline = time.monotonic() + within
        while not self.closing:
            frame = self.frame
            if frame is not None and frame.number > after:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, STOP_CHECK_S)):
                    await self._published.wait()
        return None

    # --- who is listening ------------------------------------------------------------------------

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """While a wall streams: keep the loop (hub, ticks) running."""
        self._listeners += 1
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="wall-feed")
        try:
            yield
        finally:
            self._listeners -= 1

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        reader = asyncio.create_task(self._follow_hub())
        try:
            while self._listeners > 0 and not self.closing:
                await self._wait_until_due()
                if self.closing:
                    break
                if self._due():
                    await self._refresh()
        finally:
            # No await before this: a wall arriving from now on starts a new loop.
            if self._task is asyncio.current_task():
                self._task = None
            reader.cancel()
            await asyncio.wait([reader])
            # Wake every stream so it sees `closing` (or simply goes on waiting).
            published, self._published = self._published, asyncio.Event()
            published.set()

    def _gap(self) -> float:
        figures = self.cache.latest
        compute_s = figures.compute_ms / 1000 if figures is not None else 0.0
        return max(MIN_GAP_S, GAP_PER_COMPUTE * compute_s)

    def _due(self) -> bool:
        frame = self.frame
        if frame is None or clock.now().replace(second=0, microsecond=0) != frame.minute:
            return True
        return self._poked.is_set() and time.monotonic() >= self._last_refresh + self._gap()

    async def _wait_until_due(self) -> None:
        until_minute = 60.0 - (clock.timestamp() % 60.0) + 0.01
        wait = min(until_minute, STOP_CHECK_S)
        if self._poked.is_set():
            # Pushed already: wait out the gap since the last refresh, nothing more.
            wait = min(wait, max(self._last_refresh + self._gap() - time.monotonic(), 0.0))
            await asyncio.sleep(wait)
            return
        with suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._poked.wait()

    async def _refresh(self) -> None:
        self._poked.clear()
        self._last_refresh = time.monotonic()
        try:
            await self.latest()
        except Exception:
            # The database is away: the walls keep their last frame (and say how old it is).
            log.exception("wall feed: could not refresh the figures")

    async def _follow_hub(self) -> None:
        channel = schedule_channel(await self.services.live_schedule_id())
        # Any message, and a resubscription (pushes may have been missed meanwhile): look again.
        await follow(self.services.hub, channel, self._poke, who="wall feed")

    def _poke(self, _message: Message) -> None:
        self._poked.set()
