"""Who is on the board, and which bar someone is dragging, across app instances.

Each instance knows its own viewers (one per open socket or stream, one per
user that polled lately) and publishes the whole list on `presence:{schedule}`:
at once when it changes, and every `beat_s` as a heartbeat. The others keep
each instance's last list until `ttl_s` passes without a heartbeat, so the
viewers of a crashed instance fade away by themselves. Whole lists rather than
join/leave events: Redis is at-most-once, and a lost list is repaired by the
next heartbeat where a lost "leave" would leave a ghost for good.

Everything a connection does here is synchronous (publishing happens in the
background): a connection's cleanup runs while it is being cancelled, and
must not await.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.realtime.hub import Hub, Message

log = logging.getLogger(__name__)

BEAT_S = 10.0
TTL_S = 30.0


# The others on a board as the page shows them: (viewers, the user it is for) -> HTML.
RenderPresence = Callable[[Sequence["Viewer"], "int | None"], str]


def presence_channel(schedule_id: int) -> str:
    return f"presence:{schedule_id}"


@dataclass(frozen=True, slots=True)
class Viewer:
    key: str  # one per connection (or per polling user): "<instance>:<n>"
    user_id: int
    name: str
    dragging: int | None = None

    def as_message(self) -> dict[str, Any]:
        return {"key": self.key, "user_id": self.user_id, "name": self.name, "drag": self.dragging}

    @classmethod
    def from_message(cls, raw: Any) -> Viewer | None:
        if not isinstance(raw, dict):
            return None
        key, user_id, name, drag = (raw.get(k) for k in ("key", "user_id", "name", "drag"))
        if not isinstance(key, str) or not isinstance(user_id, int) or not isinstance(name, str):
            return None
        return cls(key, user_id, name[:200], drag if isinstance(drag, int) else None)


@dataclass
class _Board:
    """One schedule's presence as this instance sees it."""

    local: dict[str, Viewer] = field(default_factory=dict)
    # Polling viewers have no connection to end: they expire (monotonic deadline).
    local_expiry: dict[str, float] = field(default_factory=dict)
    remote: dict[str, tuple[float, tuple[Viewer, ...]]] = field(default_factory=dict)
    listeners: set[Callable[[], None]] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    publish_due: bool = False
    # Bumped on every change; with `shown` it lets all of a board's connections
    # share one rendering of the list (N boards, N renders of N viewers each, else).
    version: int = 0
    shown: dict[int | None, tuple[int, float, str]] = field(default_factory=dict)


class Presence:
    def __init__(
        self,
        hub: Hub,
        *,
        beat_s: float = BEAT_S,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
        render: RenderPresence | None = None,
    ) -> None:
        self.hub = hub
        # `#presence` for one viewer, from the pages (realtime/fragments.py); none: empty.
        self._render: RenderPresence = render or (lambda viewers, me: "")
        self.instance = secrets.token_hex(6)
        self.beat_s = beat_s
        self.ttl_s = ttl_s
        self._clock = clock
        self._boards: dict[int, _Board] = {}
        self._numbers = itertools.count(1)
        self._background: set[asyncio.Task[None]] = set()

    # --- what connections do ---------------------------------------------------------------------

    @contextlib.contextmanager
    def seat(
        self, schedule_id: int, *, user_id: int, name: str, on_change: Callable[[], None]
    ) -> Iterator[Seat]:
        """Be on the board while the block runs; `on_change` hears of every change."""
        key = f"{self.instance}:{next(self._numbers)}"
        board = self._board(schedule_id)
        board.listeners.add(on_change)
        self._put(schedule_id, Viewer(key, user_id, name))
        try:
            yield Seat(self, schedule_id, key)
        finally:
            board.listeners.discard(on_change)
            self._remove(schedule_id, key)

    def visit(self, schedule_id: int, *, user_id: int, name: str) -> None:
        """A polling client was here; it stays on the board for `ttl_s` unless it polls again."""
        key = f"{self.instance}:poll:{user_id}"
        board = self._board(schedule_id)
        board.local_expiry[key] = self._clock() + self.ttl_s
        if key not in board.local:
            self._put(schedule_id, Viewer(key, user_id, name))

    def viewers(self, schedule_id: int) -> list[Viewer]:
        board = self._boards.get(schedule_id)
        if board is None:
            return []
        now = self._clock()
        remote = [v for expiry, vs in board.remote.values() if expiry > now for v in vs]
        return [*board.local.values(), *remote]

    def render(self, schedule_id: int, *, me: int | None) -> str:
        """`#presence` for user `me`: rendered once per change, not once per connection."""
        board = self._boards.get(schedule_id)
        if board is None:
            return self._render((), me)
        now = self._clock()
        cached = board.shown.get(me)
        if cached is not None and cached[0] == board.version and now < cached[1]:
            return cached[2]
        html = self._render(self.viewers(schedule_id), me)
        # A remote list that expires changes what is shown without a change event.
        expires = min((e for e, _ in board.remote.values() if e > now), default=math.inf)
        board.shown[me] = (board.version, expires, html)
        return html

    async def stop(self) -> None:
        for board in self._boards.values():
            for task in board.tasks:
                task.cancel()
        tasks = [t for b in self._boards.values() for t in b.tasks] + list(self._background)
        self._boards.clear()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- local state -----------------------------------------------------------------------------

    def _board(self, schedule_id: int) -> _Board:
        board = self._boards.get(schedule_id)
        if board is None:
            board = self._boards[schedule_id] = _Board()
            board.tasks = [
                asyncio.create_task(self._listen(schedule_id, board)),
                asyncio.create_task(self._beat(schedule_id, board)),
            ]
        return board

    def _put(self, schedule_id: int, viewer: Viewer) -> None:
        self._boards[schedule_id].local[viewer.key] = viewer
        self._changed(schedule_id, publish=True)

    def _remove(self, schedule_id: int, key: str) -> None:
        board = self._boards.get(schedule_id)
        if board is None or board.local.pop(key, None) is None:
            return
        board.local_expiry.pop(key, None)
        self._changed(schedule_id, publish=True)
        if not board.local:
            # Nobody of ours is left: stop following this board (the empty list
            # published above tells the other instances at once).
            for task in board.tasks:
                task.cancel()
            del self._boards[schedule_id]

    def drag(self, schedule_id: int, key: str, task_id: int | None) -> None:
        board = self._boards.get(schedule_id)
        viewer = board.local.get(key) if board else None
        if viewer is not None and viewer.dragging != task_id:
            self._put(schedule_id, replace(viewer, dragging=task_id))

    def _changed(self, schedule_id: int, *, publish: bool) -> None:
        board = self._boards.get(schedule_id)
        if board is None:
            return
        board.version += 1
        board.shown.clear()
        for listener in list(board.listeners):
            listener()
        if publish and not board.publish_due:
            board.publish_due = True
            self._in_background(self._publish(schedule_id, board))

    def _in_background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- across instances ------------------------------------------------------------------------

    async def _publish(self, schedule_id: int, board: _Board) -> None:
        board.publish_due = False
        message = {
            "kind": "presence",
            "instance": self.instance,
            "viewers": [v.as_message() for v in board.local.values()],
        }
        try:
            await self.hub.publish(presence_channel(schedule_id), message)
        except Exception:
            log.warning("presence: publish failed", exc_info=True)

    async def _listen(self, schedule_id: int, board: _Board) -> None:
        try:
            async with self.hub.subscribe(presence_channel(schedule_id)) as subscription:
                # Whoever is already here, tell us (instead of waiting for their next beat).
                await self._ask(schedule_id)
                async for message in subscription:
                    self._receive(schedule_id, board, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Without the channel we still see this instance's own viewers.
            log.exception("presence: subscription failed")

    async def _ask(self, schedule_id: int) -> None:
        with contextlib.suppress(Exception):
            hello = {"kind": "presence.hello", "instance": self.instance}
            await self.hub.publish(presence_channel(schedule_id), hello)

    def _receive(self, schedule_id: int, board: _Board, message: Message) -> None:
        kind, instance = message.get("kind"), message.get("instance")
        if kind == "resync":
            self._in_background(self._ask(schedule_id))
        elif instance == self.instance or not isinstance(instance, str):
            return
        elif kind == "presence.hello":
            self._in_background(self._publish(schedule_id, board))
        elif kind == "presence" and isinstance(message.get("viewers"), list):
            viewers = tuple(
                v for v in map(Viewer.from_message, message["viewers"]) if v is not None
            )
            before = board.remote.get(instance, (0.0, ()))[1]
            if viewers:
                board.remote[instance] = (self._clock() + self.ttl_s, viewers)
            else:
                board.remote.pop(instance, None)
            if viewers != before:
                self._changed(schedule_id, publish=False)

    async def _beat(self, schedule_id: int, board: _Board) -> None:
        while True:
            await asyncio.sleep(self.beat_s)
            await self._publish(schedule_id, board)
            now = self._clock()
            gone = [k for k, deadline in board.local_expiry.items() if deadline <= now]
            for key in gone:
                self._remove(schedule_id, key)
            stale = [i for i, (expiry, _) in board.remote.items() if expiry <= now]
            for instance in stale:
                del board.remote[instance]
            if stale:
                self._changed(schedule_id, publish=False)


@dataclass(frozen=True, slots=True)
class Seat:
    """One connection's place on the board."""

    presence: Presence
    schedule_id: int
    key: str

    def drag(self, task_id: int) -> None:
        self.presence.drag(self.schedule_id, self.key, task_id)

    def drag_end(self) -> None:
        self.presence.drag(self.schedule_id, self.key, None)

    def render(self, *, me: int | None) -> str:
        return self.presence.render(self.schedule_id, me=me)
