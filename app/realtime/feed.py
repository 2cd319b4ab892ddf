"""The live feed of one open board, shared by the WebSocket, SSE and polling transports.

    page rendered at revision R
        │ client connects: since=R, its BoardView
        ▼
    subscribe to schedule:{id}   (first, so nothing committed later is missed)
    catch_up(R)                  change log → render_changes(touched tasks) or reload
        │
        ▼ hub messages           note(): merged into one pending batch (ids only)
    next_update()                one render for the whole batch; a gap in the
                                 revisions or a RESYNC → catch up from the log

Pushes are hints, the change log is the truth: a client is only ever told a
revision once everything up to it is in what it was sent. The transports
differ only in how they carry the HTML.

A render that fails (the database is away) costs that update, not the
connection: the feed keeps the revision it had sent, and tries again from the
change log after a pause (`RETRY_DELAYS_S`), so the client gets the changes
once the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Set as AbstractSet
from contextlib import asynccontextmanager
from typing import Protocol

from prometheus_client import Histogram

from app import tracing
from app.realtime.change_messages import (
    BULK_TASKS,
    Row,
    read,
    touched_rows,
    touched_tasks,
)
from app.realtime.feeds import Listeners, Update, follow
from app.realtime.fragments import Fragments
from app.realtime.hub import Message
from app.services.access import require
from app.services.board_view import BoardView
from app.services.context import Actor, Services
from app.services.schedule import changes_since
from app.services.write_path import schedule_channel

log = logging.getLogger(__name__)

# More touched tasks than this in one batch: render from the change log instead
# of remembering ids (keeps a slow client's pending state small).
MAX_PENDING_TASKS = 500
# One catch-up replays at most this many revisions; more means "reload".
CATCH_UP_LIMIT = 1000
# After a failed render: try again from the change log after this long (jittered,
# so a thousand boards of one instance do not all ask again at once).
RETRY_DELAYS_S = (1, 2, 4, 8, 15)
# At most one log line about failed renders per this many seconds, across feeds.
FAILURE_LOG_EVERY_S = 10.0
RELOAD_MESSAGE = "The plan changed too much to update in place."


# Not a row: marks the render of tasks that ran late, by the check's number (`running_late`).
LATE_TICK = "running-late"


class RenderChanges(Protocol):
    """The board's renderer (app/web/board_render.py): OOB fragments for `task_ids` in
    `view`, and the load strips of the `rows` the changes touched."""

    def __call__(
        self,
        services: Services,
        actor: Actor,
        view: BoardView,
        task_ids: AbstractSet[int],
        revision: int,
        rows: frozenset[Row] = frozenset(),
    ) -> Awaitable[str]: ...


class RenderAhead(Protocol):
    """Start (or join) the render `RenderChanges` would make for the same question,
    without waiting for it (shared_render.py)."""

    def __call__(
        self,
        services: Services,
        actor: Actor,
        view: BoardView,
        task_ids: AbstractSet[int],
        revision: int,
        rows: frozenset[Row] = frozenset(),
    ) -> asyncio.Future[str]: ...


class RenderRefresh(Protocol):
    """The board's whole-view renderer (`#board-main` and `#board-revision` as OOB fragments)."""

    def __call__(
        self, services: Services, actor: Actor, view: BoardView, revision: int | None = None
    ) -> Awaitable[str]: ...


_failure_logged_at = float("-inf")

# Commit on any instance → this board's update rendered here, by the clocks of both
# (one host or NTP): what a scheduler waits to see a colleague's move.
FANOUT_DELAY = Histogram(
    "takt_fanout_delay_seconds",
    "From a change's commit to its update rendered for an open board",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def retry_delay(failures: int = 0) -> float:
    """How long a live feed waits after `failures + 1` failed renders in a row (jittered)."""
    delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)]
    return delay * random.uniform(0.75, 1.25)


def render_failed(exc: Exception) -> None:
    """Log a live render that failed (at most every few seconds: a thousand feeds fail at once)."""
    global _failure_logged_at
    now = time.monotonic()
    if now - _failure_logged_at >= FAILURE_LOG_EVERY_S:
        _failure_logged_at = now
        log.warning("live feed: render failed; retrying from the change log", exc_info=exc)


class Feed:
    """One connection's view of the change stream (not shared between connections)."""

    def __init__(
        self,
        *,
        services: Services,
        actor: Actor,
        view: BoardView,
        render: RenderChanges,
        refresh: RenderRefresh | None = None,
        revision: int,
        extras: Callable[[], str | None] | None = None,
        fragments: Fragments | None = None,
        ahead: RenderAhead | None = None,
        listeners: Listeners | None = None,
        prepare: Callable[[BoardView], None] | None = None,
    ) -> None:
        # Operators are refused here; their own channel comes with the "My tasks" screen.
        require(actor, "plan.read")
        self.services = services
        self.actor = actor
        self.view = view
        self.render = render
        self.refresh = refresh
        # Everything up to this revision has been sent (or was on the page).
        self.revision = revision
        # Wakes the sender: hub messages, presence changes, a new view.
        self.wake = asyncio.Event()
        self.extras = extras
        # The reload notice and the commit stamp, from the pages; none: neither is sent.
        self.fragments = fragments
        # A change the board is in step with is rendered as it arrives, and the sender
        # woken when it is ready (`_wake_when_rendered`); none: woken at once.
        self.ahead = ahead
        # The instance's one subscription per channel; none: a subscription of its own.
        self.listeners = listeners
        # Readies a view's window on this instance (in the background) for its first change.
        self.prepare = prepare
        self._extras_due = False
        # Frozen: a board's first pending change shares the message's own sets
        # (change_messages.read), which every board of the instance hashes alike.
        self._ids: frozenset[int] = frozenset()
        self._rows: frozenset[Row] = frozenset()
        self._revisions: set[int] = set()
        self._catch_up = False
        self._structural = False
        self._resume: tuple[int, BoardView] | None = None
        # When the newest pending revision was committed (epoch ms), if the hub said,
        # and the trace it was made in (app/tracing.py), if it carried one.
        self._committed_at: tuple[int, float] | None = None
        self._trace: tuple[int, dict[str, str]] | None = None
        self._failures = 0
        self._retry: asyncio.TimerHandle | None = None
        # The render started as a change arrived (`_wake_when_rendered`): the change it is
        # for, and `_noted` then; an update made ready from it when it finished.
        self._noted = 0
        self._ahead: tuple[int, int, asyncio.Future[str]] | None = None
        self._ready: Update | None = None
        # The sender is working through what is pending (`next_updates`).
        self._busy = False
        # Sends an update at once while the connection's sender is idle; False: it is
        # not (transport.py sets it for a WebSocket, eager.py).
        self.push: Callable[[str], bool] | None = None
        # Tasks of the plan that have just run past their booked end (`running_late`).
        self._late: set[int] = set()
        self._late_tick = 0

    # --- what arrives --------------------------------------------------------------------------

    def _reload_notice(self) -> str:
        return "" if self.fragments is None else self.fragments.reload_notice(RELOAD_MESSAGE)

    def note(self, message: Message) -> None:
        """Merge a hub message into the pending batch (no I/O: called for every message)."""
        self._noted += 1
        revision = message.get("revision")
        if message.get("kind") == "resync" or not isinstance(revision, int):
            self._catch_up = True
        elif revision > self.revision:
            ids, rows, committed_at, carried = read(message)
            self._revisions.add(revision)
            if committed_at is not None and (
                self._committed_at is None or revision > self._committed_at[0]
            ):
                self._committed_at = (revision, committed_at)
            if carried and (self._trace is None or revision > self._trace[0]):
                self._trace = (revision, carried)
            if ids is None:
                self._structural = True
            else:
                self._ids = self._ids | ids if self._ids else ids
                self._rows = self._rows | rows if self._rows else rows
            if len(self._ids) > MAX_PENDING_TASKS or len(self._revisions) > MAX_PENDING_TASKS:
                self._catch_up = True
        if not self._wake_when_rendered():
            self.wake.set()

    def _wake_when_rendered(self) -> bool:
        """If what is pending is a plain change the board is in step with, start (or
        join) its render now and wake the sender once it is ready: with a thousand
        boards on one view, each then wakes once, to send, instead of waking to ask
        and waking again when the one shared render is done."""
        if self.ahead is None or self._late or self._failures or self._busy:
            return False
        if tracing.enabled():
            return False  # traced, each board's push is a span of the change's trace
        if self._ahead is not None:
            # A render ahead is under way: its end wakes the sender, which renders all
            # that came meanwhile as one (renders must not pile up under many writes).
            return True
        plain = self._plain_change()
        if plain is None:
            return False
        ids, newest, rows = plain
        rendering = self.ahead(self.services, self.actor, self.view, ids, newest, rows)
        self._ahead = (newest, self._noted, rendering)
        rendering.add_done_callback(self._rendered)
        return True

    def _rendered(self, rendering: asyncio.Future[str]) -> None:
        """The render started for this board is ready: if nothing arrived meanwhile and
        the sender is waiting, the update is made here, for the sender just to send."""
        ahead = self._ahead
        if ahead is None or ahead[2] is not rendering:
            return
        self._ahead = None
        if (
            ahead[1] == self._noted
            and not self._busy
            and self._ready is None
            and not rendering.cancelled()
            and rendering.exception() is None
        ):
            newest = ahead[0]
            committed = self._committed_at
            committed_at = committed[1] if committed and committed[0] == newest else None
            self._forget()
            update = self._update(rendering.result(), newest, committed_at)
            if self.push is not None and not self._extras_due and self.push(update.html):
                return  # sent: nothing is left for the sender
            self._ready = update
        # Otherwise (failed, or more arrived): the sender renders (again) and handles it.
        self.wake.set()

    def _plain_change(self) -> tuple[frozenset[int], int, frozenset[Row]] | None:
        """The tasks, newest revision and rows to render, if what is pending is just
        changes following on from what was sent; None for anything else."""
        if self._resume is not None or self._catch_up or self._structural:
            return None
        revisions = [r for r in self._revisions if r > self.revision]
        if not revisions or len(self._ids) > BULK_TASKS:
            return None
        newest = max(revisions)
        if newest - self.revision != len(revisions):
            return None  # a gap: the sender looks at the change log
        return self._ids, newest, self._rows

    def resume(self, since: int, view: BoardView) -> None:
        """The client (re)states where it is: a new view, a re-rendered page."""
        self._noted += 1
        self._ready = None  # rendered for the view it had: it says where it is now
        self._resume = (since, view)
        self.wake.set()

    def running_late(self, task_ids: set[int], tick: int) -> None:
        """Tasks in progress have run past their booked end (time did it, not a change):
        re-send them, and the board's "Running late" list with them."""
        self._noted += 1
        self._late |= task_ids
        self._late_tick = tick
        self.wake.set()

    def extras_changed(self) -> None:
        """Something outside the change log to send (presence)."""
        self._extras_due = True
        self.wake.set()

    # --- what is sent ----------------------------------------------------------------------------

    async def next_updates(self) -> list[Update]:
        """Render everything pending as few updates as possible (empty: nothing to say)."""
        self.wake.clear()
        updates: list[Update] = []
        if self._ready is not None:
            updates.append(self._ready)
            self._ready = None
        self._busy = True
        try:
            change = await self._pending_change_or_retry()
        finally:
            self._busy = False
        if change is not None:
            updates.append(change)
        if self._extras_due and self.extras is not None:
            self._extras_due = False
            html = self.extras()
            if html:
                updates.append(Update(html))
        return updates

    async def catch_up(self, since: int) -> Update | None:
        """The changes after `since` from the change log, rendered for this view."""
        result = await changes_since(
            services=self.services, actor=self.actor, since=since, limit=CATCH_UP_LIMIT
        )
        if result.reload or len(result.changes) >= CATCH_UP_LIMIT:
            self.revision = result.revision
            return Update(self._reload_notice(), reload=True)
        if not result.changes:
            self.revision = since
            return None
        ids: set[int] = set()
        rows: set[Row] = set()
        newest: int = result.changes[-1]["revision"]
        for entry in result.changes:
            touched = touched_tasks(entry.get("entities"))
            if touched is None:
                return await self._refresh(newest)
            ids |= touched
            rows |= touched_rows(entry.get("entities"))
        if len(ids) > BULK_TASKS:
            return await self._refresh(newest)
        return await self._render(ids, newest, rows=rows)

    async def _pending_change_or_retry(self) -> Update | None:
        try:
            change = await self._pending_change()
        except Exception as exc:
            # Everything after `self.revision` is in the change log: catch up from there later.
            self._catch_up = True
            delay = retry_delay(self._failures)
            self._failures += 1
            if self._retry is not None:
                self._retry.cancel()
            self._retry = asyncio.get_running_loop().call_later(delay, self.wake.set)
            render_failed(exc)
            return None
        self._failures = 0
        return change

    async def _pending_change(self) -> Update | None:
        late, tick = set(self._late), self._late_tick
        change = await self._pending_revisions()
        if change is None and late:
            # No change to carry them (every render lists the tasks running late as of
            # now): the tasks alone, at the revision the board has. The tick in the rows
            # keeps this render apart from a change's of the same tasks and revision
            # (renders are shared by key, `shared_render.py`); the renderer ignores it.
            rows = frozenset({(LATE_TICK, tick)})
            html = await self.render(
                self.services, self.actor, self.view, late, self.revision, rows
            )
            change = Update(html, self.revision)
        self._late -= late  # kept on a failed render, to be sent with the retry
        return change

    async def _pending_revisions(self) -> Update | None:
        if self._resume is not None:
            since, self.view = self._resume
            self._resume = None
            self._forget()
            self.revision = since
            caught_up = await self.catch_up(since)
            if caught_up is None and self.prepare is not None:
                self.prepare(self.view)  # nothing rendered for it yet here
            return caught_up
        revisions = {r for r in self._revisions if r > self.revision}
        contiguous = revisions == set(range(self.revision + 1, self.revision + 1 + len(revisions)))
        catch_up, structural, ids, rows = self._catch_up, self._structural, self._ids, self._rows
        committed, traced = self._committed_at, self._trace
        self._forget()
        if catch_up or not contiguous:
            # A RESYNC, or a revision we never heard of (Redis is at-most-once).
            return await self.catch_up(self.revision)
        if not revisions:
            return None
        newest = max(revisions)
        committed_at = committed[1] if committed and committed[0] == newest else None
        carrier = traced[1] if traced and traced[0] == newest else {}
        with tracing.continued(
            "board push", carrier, attributes={"takt.revision": newest, "takt.tasks": len(ids)}
        ):
            if structural or len(ids) > BULK_TASKS:
                return await self._refresh(newest)
            return await self._render(ids, newest, committed_at, rows)

    async def _render(
        self,
        ids: AbstractSet[int],
        revision: int,
        committed_at: float | None = None,
        rows: AbstractSet[Row] | None = None,
    ) -> Update:
        touched = frozenset(rows or ())
        html = await self.render(self.services, self.actor, self.view, ids, revision, touched)
        return self._update(html, revision, committed_at)

    def _update(self, html: str, revision: int, committed_at: float | None) -> Update:
        """The rendered change at `revision`, stamped; the board is there once it is sent."""
        self.revision = revision
        if committed_at is not None:
            FANOUT_DELAY.observe(max(0.0, time.time() - committed_at / 1000))
            if self.fragments is not None:
                html = self.fragments.stamped(html, committed_at)
        return Update(html, revision)

    async def _refresh(self, revision: int) -> Update:
        """The whole view again (or, if the board cannot render one, a reload)."""
        if self.refresh is None:
            self.revision = revision
            return Update(self._reload_notice(), reload=True)
        html = await self.refresh(self.services, self.actor, self.view, revision)
        self.revision = revision
        return Update(html, revision)

    def _forget(self) -> None:
        self._ids = frozenset()
        self._rows = frozenset()
        self._revisions = set()
        self._catch_up = False
        self._structural = False
        self._committed_at = None
        self._trace = None

    # --- listening -------------------------------------------------------------------------------

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Feed hub messages into `note()` while the block runs.

        A plain task rather than a TaskGroup: the SSE stream yields inside this
        block, and a task group must not span a `yield`. The task owns the
        subscription, so cancelling it is all the cleanup there is.
        """
        channel = schedule_channel(await self.services.live_schedule_id())
        if self.listeners is not None:
            async with self.listeners.listening(channel, self.note):
                yield
            return
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._read(channel, subscribed))
        try:
            await subscribed.wait()
            yield
        finally:
            reader.cancel()
            # Raises at once if we are being cancelled ourselves; the reader then
            # finishes (unsubscribes) on its own.
            await asyncio.wait([reader])

    async def _read(self, channel: str, subscribed: asyncio.Event) -> None:
        await follow(self.services.hub, channel, self.note, who="live feed", subscribed=subscribed)
